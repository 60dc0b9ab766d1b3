//! A grading file (`barl grade`): each line a JSON object with the gold answer
//! and either an extracted answer or a full response, graded and written back
//! with `extracted`, `correct` and `reason` added. A line that cannot be graded
//! gets an error row in its place (or, when strict, stops the file), so output
//! rows line up with input lines.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde_json::value::{to_raw_value, RawValue};
use serde_json::Value;

use crate::extract::{extract_answer, ExtractOptions};
use crate::grader::{Grader, Verdict, TIMED_OUT};

/// Which fields of a line hold what (by default `barl grade`'s names: `gold`,
/// `pred`, `response`, `truncated`).
#[derive(Clone, Debug)]
pub struct LineKeys {
    /// The gold answer (a string or a number).
    pub gold: String,
    /// An already extracted answer, used when `response` is absent.
    pub pred: String,
    /// A full response; its answer is extracted first.
    pub response: String,
    /// An optional boolean: the response was cut off at the length limit, so it
    /// gets no last-number or bare-span credit ([`ExtractOptions::for_response`]);
    /// `None` reads no such key (every response gets the fallbacks).
    pub truncated: Option<String>,
}

impl Default for LineKeys {
    fn default() -> Self {
        Self {
            gold: "gold".into(),
            pred: "pred".into(),
            response: "response".into(),
            truncated: Some("truncated".into()),
        }
    }
}

/// Why a line could not be graded; each names the key at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LineError {
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("expected a JSON object")]
    NotAnObject,
    #[error("missing key '{0}'")]
    MissingGold(String),
    #[error("missing key '{pred}' (or '{response}')")]
    MissingAnswer { pred: String, response: String },
    #[error("key '{key}' must be {expected}")]
    WrongType { key: String, expected: &'static str },
}

/// A line's fields as written: numbers keep their text (`27.0`, a 23-digit
/// integer, `1e400`), so neither the verdict nor the output goes through f64.
type RawObject = BTreeMap<String, Box<RawValue>>;

/// Grades one line: returns the object with `extracted`, `correct` and
/// `reason` added (every other field written back as it was), and the verdict.
/// The gold answer is written back as given; the grader decides how to read it.
pub fn grade_line(
    text: &str,
    keys: &LineKeys,
    grader: &dyn Grader,
    opts: &ExtractOptions,
) -> Result<(Box<RawValue>, Verdict), LineError> {
    if !text.trim_start().starts_with('{') {
        // Still say what is wrong with text that is not JSON at all.
        return match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Err(e) => Err(LineError::Json(e.to_string())),
            Ok(_) => Err(LineError::NotAnObject),
        };
    }
    let mut obj: RawObject =
        serde_json::from_str(text).map_err(|e| LineError::Json(e.to_string()))?;
    let wrong = |key: &str, expected| LineError::WrongType {
        key: key.to_string(),
        expected,
    };
    let gold = match obj.get(&keys.gold) {
        Some(v) => scalar_text(v).ok_or_else(|| wrong(&keys.gold, "a string or a number"))?,
        None => return Err(LineError::MissingGold(keys.gold.clone())),
    };
    let truncated = match keys
        .truncated
        .as_ref()
        .and_then(|k| obj.get(k).map(|v| (k, v)))
    {
        Some((k, v)) => match v.get() {
            "true" => true,
            "false" | "null" => false,
            _ => return Err(wrong(k, "a boolean")),
        },
        None => false,
    };
    let extracted = if let Some(v) = obj.get(&keys.response) {
        let response = scalar_text(v).ok_or_else(|| wrong(&keys.response, "a string"))?;
        extract_answer(&response, &opts.for_response(truncated, false))
    } else if let Some(v) = obj.get(&keys.pred) {
        Some(scalar_text(v).ok_or_else(|| wrong(&keys.pred, "a string or a number"))?)
    } else {
        return Err(LineError::MissingAnswer {
            pred: keys.pred.clone(),
            response: keys.response.clone(),
        });
    };
    let verdict = match &extracted {
        Some(pred) => grader.grade(pred, &gold),
        None => Verdict {
            correct: false,
            reason: "no answer extracted",
        },
    };
    let raw = |v: Value| to_raw_value(&v).map_err(|e| LineError::Json(e.to_string()));
    obj.insert(
        "extracted".into(),
        raw(extracted.map_or(Value::Null, Value::String))?,
    );
    obj.insert("correct".into(), raw(Value::Bool(verdict.correct))?);
    obj.insert("reason".into(), raw(Value::String(verdict.reason.into()))?);
    Ok((
        to_raw_value(&obj).map_err(|e| LineError::Json(e.to_string()))?,
        verdict,
    ))
}

/// A string field as is, a number as written in the file (AMC's `27.0`).
fn scalar_text(v: &RawValue) -> Option<String> {
    let text = v.get();
    match text.as_bytes().first()? {
        b'"' => serde_json::from_str::<String>(text).ok(),
        b'-' | b'0'..=b'9' => Some(text.to_string()),
        _ => None,
    }
}

/// Counts of one graded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GradeSummary {
    /// Lines graded.
    pub count: usize,
    pub correct: usize,
    /// Lines that could not be graded (each has an error row in the output).
    pub errors: usize,
    /// Verdicts that ran past the grader's time limit (counted as not equal).
    pub timed_out: usize,
}

/// Why a file stopped.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A line that cannot be graded, under `strict` (`file:line: why`).
    #[error("{at}: {why}")]
    Line { at: String, why: String },
    #[error("reading {at}: {source}")]
    Read { at: String, source: std::io::Error },
    #[error("writing output: {0}")]
    Write(#[from] std::io::Error),
}

/// Grades every line of `input` (named `name` in messages) into `out`, one row
/// per line: the graded object, or `{"line": N, "error": why}` for a line that
/// cannot be graded (blank, not UTF-8, bad JSON, a missing key), unless
/// `strict`, which stops there. A byte-order mark before the first line and
/// `\r\n` endings are accepted.
pub fn grade_lines(
    input: impl BufRead,
    name: &str,
    out: &mut impl Write,
    keys: &LineKeys,
    grader: &dyn Grader,
    opts: &ExtractOptions,
    strict: bool,
) -> Result<GradeSummary, FileError> {
    let mut summary = GradeSummary::default();
    for (i, line) in input.split(b'\n').enumerate() {
        let at = || format!("{name}:{}", i + 1);
        let line = line.map_err(|source| FileError::Read { at: at(), source })?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        let line = if i == 0 {
            line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
        } else {
            line
        };
        let row = match graded_row(line, keys, grader, opts) {
            Ok((row, verdict)) => {
                summary.count += 1;
                summary.correct += usize::from(verdict.correct);
                summary.timed_out += usize::from(verdict.reason == TIMED_OUT);
                row
            }
            Err(why) if strict => return Err(FileError::Line { at: at(), why }),
            Err(why) => {
                summary.errors += 1;
                let row = serde_json::json!({ "line": i + 1, "error": why });
                to_raw_value(&row).map_err(std::io::Error::other)?
            }
        };
        // The row as graded: numbers keep the text they were written with.
        out.write_all(row.get().as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(summary)
}

/// One input line graded: the output row and the verdict, or why the line
/// cannot be graded (one line of text, naming the key at fault).
fn graded_row(
    line: &[u8],
    keys: &LineKeys,
    grader: &dyn Grader,
    opts: &ExtractOptions,
) -> Result<(Box<RawValue>, Verdict), String> {
    let text = std::str::from_utf8(line).map_err(|e| format!("not valid UTF-8 ({e})"))?;
    if text.trim().is_empty() {
        return Err("blank line".into());
    }
    grade_line(text, keys, grader, opts).map_err(|e| match lone_surrogate(text) {
        Some(escape) => {
            format!("invalid JSON: {escape} is a lone UTF-16 surrogate (not a character)")
        }
        None => e.to_string(),
    })
}

/// The first `\uD800`-`\uDFFF` escape of `text` that is not half of a
/// surrogate pair (serde_json calls these an "unexpected end of hex escape").
fn lone_surrogate(text: &str) -> Option<String> {
    let hex = |s: &str| u16::from_str_radix(s, 16).ok();
    let b = text.as_bytes();
    let mut i = 0;
    while i + 6 <= b.len() {
        if b[i] == b'\\' && b[i + 1] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == b'\\' && b[i + 1] == b'u' {
            let Some(u) = text.get(i + 2..i + 6).and_then(hex) else {
                i += 1;
                continue;
            };
            if (0xD800..0xDC00).contains(&u) {
                let low = text
                    .get(i + 6..i + 12)
                    .filter(|s| s.starts_with("\\u"))
                    .and_then(|s| hex(&s[2..]));
                if !low.is_some_and(|l| (0xDC00..0xE000).contains(&l)) {
                    return Some(text[i..i + 6].to_string());
                }
                i += 12;
                continue;
            }
            if (0xDC00..0xE000).contains(&u) {
                return Some(text[i..i + 6].to_string());
            }
            i += 6;
            continue;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grader::StandardGrader;

    fn keys() -> LineKeys {
        LineKeys::default()
    }

    fn grade(text: &str) -> Result<(Value, bool), LineError> {
        grade_line(
            text,
            &keys(),
            &StandardGrader::default(),
            &ExtractOptions::default(),
        )
        .map(|(row, v)| (serde_json::from_str(row.get()).unwrap(), v.correct))
    }

    #[test]
    fn truncated_responses_get_no_last_number_credit() {
        let cut = r#"{"gold": "72", "response": "so 48 + 24 = 72 and then", "truncated": true}"#;
        let (v, ok) = grade(cut).unwrap();
        assert!(!ok);
        assert_eq!(v["reason"], "no answer extracted");
        let whole = cut.replace("true", "false");
        assert!(grade(&whole).unwrap().1);
        let boxed = r#"{"gold": "72", "response": "\\boxed{72}, and", "truncated": true}"#;
        assert!(grade(boxed).unwrap().1);
        assert_eq!(
            grade(&cut.replace("true", "\"yes\""))
                .unwrap_err()
                .to_string(),
            "key 'truncated' must be a boolean"
        );
        // Without a truncation key every response gets the fallback.
        let credit = LineKeys {
            truncated: None,
            ..keys()
        };
        let opts = ExtractOptions::default();
        let grader = StandardGrader::default();
        assert!(grade_line(cut, &credit, &grader, &opts).unwrap().1.correct);
    }

    #[test]
    fn responses_are_extracted_and_numbers_kept_as_written() {
        let (v, ok) = grade(r#"{"gold": 27.0, "response": "so \\boxed{27}"}"#).unwrap();
        assert!(ok);
        assert_eq!(v["extracted"], "27");
        let (v, ok) = grade(r#"{"gold": "1/2", "pred": "0.6"}"#).unwrap();
        assert!(!ok);
        assert_eq!(v["correct"], false);
        let (v, _) = grade(r#"{"gold": "3", "response": "no number here"}"#).unwrap();
        assert_eq!(v["reason"], "no answer extracted");
    }

    #[test]
    fn numbers_keep_their_text() {
        // Through f64 these two would be the same number.
        let line = r#"{"gold": 12345678901234567890123, "pred": "12345678901234567890124"}"#;
        let (row, v) = grade_line(
            line,
            &keys(),
            &StandardGrader::default(),
            &ExtractOptions::default(),
        )
        .unwrap();
        assert!(!v.correct);
        assert!(
            row.get().contains(r#""gold":12345678901234567890123"#),
            "{}",
            row.get()
        );
        let big = format!(
            r#"{{"gold": 1e400, "pred": "1", "n": {}}}"#,
            "7".repeat(100_000)
        );
        let (row, v) = grade_line(
            &big,
            &keys(),
            &StandardGrader::default(),
            &ExtractOptions::default(),
        )
        .unwrap();
        assert!(!v.correct && row.get().contains(r#""gold":1e400"#));
        assert!(row.get().contains(&"7".repeat(100_000)));
    }

    #[test]
    fn each_bad_line_names_the_key() {
        assert!(matches!(grade("{"), Err(LineError::Json(_))));
        assert_eq!(grade("[1]"), Err(LineError::NotAnObject));
        assert_eq!(
            grade(r#"{"pred": "1"}"#).unwrap_err().to_string(),
            "missing key 'gold'"
        );
        assert_eq!(
            grade(r#"{"gold": "1"}"#).unwrap_err().to_string(),
            "missing key 'pred' (or 'response')"
        );
        assert_eq!(
            grade(r#"{"gold": [1], "pred": "1"}"#)
                .unwrap_err()
                .to_string(),
            "key 'gold' must be a string or a number"
        );
        assert_eq!(
            grade(r#"{"gold": "1", "response": [5]}"#)
                .unwrap_err()
                .to_string(),
            "key 'response' must be a string"
        );
    }

    fn grade_bytes(bytes: &[u8]) -> (GradeSummary, Vec<Value>) {
        let mut out = Vec::new();
        let opts = ExtractOptions::default();
        let s = grade_lines(
            bytes,
            "in",
            &mut out,
            &keys(),
            &StandardGrader::default(),
            &opts,
            false,
        )
        .expect("grades");
        let rows = String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        (s, rows)
    }

    #[test]
    fn grades_pred_and_response_lines() {
        let (s, rows) = grade_bytes(
            concat!(
                r#"{"gold": "\\frac12", "pred": "0.5"}"#,
                "\n\n",
                r#"{"gold": 27.0, "response": "so the answer is \\boxed{27}."}"#,
                "\n",
                r#"{"gold": "(1,2)", "pred": "(2,1)"}"#,
                "\n",
                r#"{"gold": "3", "response": "no number here"}"#,
                "\n",
            )
            .as_bytes(),
        );
        assert_eq!((s.count, s.correct, s.errors), (4, 2, 1));
        // One row per input line: the blank line 2 gets an error row.
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0]["correct"], Value::Bool(true));
        assert_eq!(
            rows[1],
            serde_json::json!({"line": 2, "error": "blank line"})
        );
        assert_eq!(rows[2]["extracted"], Value::String("27".into()));
        assert_eq!(rows[2]["correct"], Value::Bool(true));
        assert_eq!(rows[3]["correct"], Value::Bool(false));
        assert_eq!(rows[4]["extracted"], Value::Null);
        assert_eq!(
            rows[4]["reason"],
            Value::String("no answer extracted".into())
        );
    }

    #[test]
    fn bad_lines_get_error_rows_and_the_rest_is_graded() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec(); // a byte-order mark
        bytes.extend_from_slice(br#"{"gold": "1", "pred": "1"}"#);
        bytes.extend_from_slice(b"\n{\"gold\": \"1\"\n"); // truncated JSON
        bytes.extend_from_slice(b"{\"gold\": \"\xff\"}\n"); // invalid UTF-8
        bytes.extend_from_slice(br#"{"gold": null, "pred": "1"}"#);
        bytes.extend_from_slice(b"\n");
        bytes.extend_from_slice(br#"{"gold": "\ud800", "pred": "1"}"#);
        bytes.extend_from_slice(b"\n");
        bytes.extend_from_slice(br#"{"gold": "2", "pred": "2"}"#);
        bytes.extend_from_slice(b"\r\n");
        let (s, rows) = grade_bytes(&bytes);
        assert_eq!((s.count, s.correct, s.errors), (2, 2, 4));
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[0]["correct"], Value::Bool(true));
        assert_eq!(rows[5]["correct"], Value::Bool(true));
        let error = |k: usize| rows[k]["error"].as_str().unwrap_or("").to_string();
        assert!(error(1).starts_with("invalid JSON"), "{}", error(1));
        assert!(error(2).contains("UTF-8"), "{}", error(2));
        assert!(error(3).contains("'gold'"), "{}", error(3));
        assert_eq!(
            error(4),
            "invalid JSON: \\ud800 is a lone UTF-16 surrogate (not a character)"
        );
        assert_eq!(rows[4]["line"], 5);
        // Strict stops at the first bad line, naming it.
        let mut out = Vec::new();
        let opts = ExtractOptions::default();
        let err = grade_lines(
            &bytes[..],
            "in",
            &mut out,
            &keys(),
            &StandardGrader::default(),
            &opts,
            true,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("in:2: invalid JSON"), "{err}");
        // A valid pair and an escaped backslash are not lone surrogates.
        assert_eq!(lone_surrogate(r#"{"a": "\ud83d\ude00"}"#), None);
        assert_eq!(lone_surrogate(r#"{"a": "\\ud800"}"#), None);
        assert_eq!(
            lone_surrogate(r#"{"a": "\udc00"}"#).as_deref(),
            Some("\\udc00")
        );
    }
}
