//! `barl grade`: grade a JSONL file of (gold, prediction or response) pairs.
//!
//! Each input line is a JSON object with the gold answer and either an already
//! extracted answer or a full response (the answer is then extracted first). Each
//! output line is the input object plus `extracted`, `correct` and `reason`. A
//! summary goes to stderr: count, correct, accuracy and pairs per second.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use barl_math::extract::ExtractOptions;
use barl_math::gradefile::{grade_line, LineKeys};
use barl_math::grader::{grader_by_name, Grader};
use clap::Args;

use crate::UsageError;

/// Options of `barl grade`.
#[derive(Args, Debug, Clone)]
pub struct GradeArgs {
    /// Input JSONL file, or `-` for standard input
    pub input: PathBuf,
    /// Output JSONL file [standard output]
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Grader: standard (Qwen2.5-Math toolkit / Math-Verify conventions) or
    /// reference (Hendrycks MATH normalisation and exact match)
    #[arg(long, default_value = "standard")]
    pub grader: String,
    /// Field holding the gold answer (a string or a number)
    #[arg(long, default_value = "gold")]
    pub gold_key: String,
    /// Field holding an already extracted answer (used when the response field is absent)
    #[arg(long, default_value = "pred")]
    pub pred_key: String,
    /// Field holding a full model response; when present, the answer is extracted from it
    #[arg(long, default_value = "response")]
    pub response_key: String,
    /// Extraction rules to switch off, comma-separated: boxed, answer-is, hashes,
    /// minerva, last-number
    #[arg(long, value_delimiter = ',')]
    pub no_extract: Vec<String>,
    /// Stop at the first line that cannot be graded (default: write an error row
    /// for it and go on)
    #[arg(long)]
    pub strict: bool,
    /// Do not print the summary
    #[arg(long)]
    pub quiet: bool,
}

/// Counts of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradeSummary {
    pub count: usize,
    pub correct: usize,
    /// Lines that could not be graded (each has an error row in the output).
    pub errors: usize,
    pub seconds: f64,
}

/// Runs `barl grade`.
pub fn run(args: &GradeArgs) -> Result<()> {
    let summary = grade_file(args)?;
    if !args.quiet {
        let accuracy = summary.correct as f64 / summary.count.max(1) as f64;
        let rate = summary.count as f64 / summary.seconds.max(1e-9);
        eprintln!(
            "graded {} pairs with '{}': {} correct, accuracy {accuracy:.4}, {rate:.0} pairs/s",
            summary.count, args.grader, summary.correct
        );
        if summary.errors > 0 {
            eprintln!(
                "{} line(s) could not be graded: their output rows hold `error` (--strict stops at the first)",
                summary.errors
            );
        }
    }
    Ok(())
}

fn usage(msg: String) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg))
}

fn extract_options(disabled: &[String]) -> Result<ExtractOptions> {
    let mut opts = ExtractOptions::default();
    for name in disabled {
        match name.trim() {
            "boxed" => opts.boxed = false,
            "answer-is" => opts.final_answer_is = false,
            "hashes" => opts.hashes = false,
            "minerva" => opts.minerva = false,
            "last-number" => opts.last_number = false,
            other => {
                return Err(usage(format!(
                    "--no-extract: unknown rule '{other}' (expected boxed, answer-is, hashes, minerva, last-number)"
                )))
            }
        }
    }
    Ok(opts)
}

/// Grades every line of the input and writes the output; the summary is returned.
pub fn grade_file(args: &GradeArgs) -> Result<GradeSummary> {
    let grader = grader_by_name(&args.grader).map_err(|e| usage(format!("--grader: {e}")))?;
    let opts = extract_options(&args.no_extract)?;
    let name = args.input.display().to_string();
    let reader: Box<dyn Read> = if name == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(
            File::open(&args.input).map_err(|e| usage(format!("cannot open input {name}: {e}")))?,
        )
    };
    let writer: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            File::create(path).map_err(|e| usage(format!("--output {}: {e}", path.display())))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let mut out = BufWriter::new(writer);
    let keys = LineKeys {
        gold: args.gold_key.clone(),
        pred: args.pred_key.clone(),
        response: args.response_key.clone(),
    };
    let start = Instant::now();
    let mut summary = GradeSummary {
        count: 0,
        correct: 0,
        errors: 0,
        seconds: 0.0,
    };
    for (i, line) in BufReader::new(reader).split(b'\n').enumerate() {
        let where_ = format!("{name}:{}", i + 1);
        let line = line.with_context(|| format!("reading {where_}"))?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        // A byte-order mark before the first line is not part of the JSON.
        let line = if i == 0 {
            line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
        } else {
            line
        };
        let row = match graded_row(line, &keys, grader.as_ref(), &opts) {
            Ok((row, correct)) => {
                summary.count += 1;
                summary.correct += usize::from(correct);
                row
            }
            Err(msg) if args.strict => return Err(usage(format!("{where_}: {msg}"))),
            Err(msg) => {
                summary.errors += 1;
                let row = serde_json::json!({ "line": i + 1, "error": msg });
                serde_json::value::to_raw_value(&row).context("writing output")?
            }
        };
        // The row as graded: numbers keep the text they were written with.
        out.write_all(row.get().as_bytes())
            .context("writing output")?;
        out.write_all(b"\n").context("writing output")?;
    }
    out.flush().context("writing output")?;
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// One input line graded: the output row and the verdict, or why the line
/// cannot be graded (one line of text, naming the key at fault).
fn graded_row(
    line: &[u8],
    keys: &LineKeys,
    grader: &dyn Grader,
    opts: &ExtractOptions,
) -> std::result::Result<(Box<serde_json::value::RawValue>, bool), String> {
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
    use serde_json::Value;

    fn args(input: PathBuf, output: PathBuf) -> GradeArgs {
        GradeArgs {
            input,
            output: Some(output),
            grader: "standard".into(),
            gold_key: "gold".into(),
            pred_key: "pred".into(),
            response_key: "response".into(),
            no_extract: vec![],
            strict: true,
            quiet: true,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("barl-grade-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn grades_pred_and_response_lines() {
        let dir = scratch("ok");
        let input = dir.join("in.jsonl");
        std::fs::write(
            &input,
            concat!(
                r#"{"gold": "\\frac12", "pred": "0.5"}"#,
                "\n\n",
                r#"{"gold": 27.0, "response": "so the answer is \\boxed{27}."}"#,
                "\n",
                r#"{"gold": "(1,2)", "pred": "(2,1)"}"#,
                "\n",
                r#"{"gold": "3", "response": "no number here"}"#,
                "\n",
            ),
        )
        .expect("write input");
        let mut a = args(input, dir.join("out.jsonl"));
        a.strict = false;
        let s = grade_file(&a).expect("grades");
        assert_eq!((s.count, s.correct, s.errors), (4, 2, 1));
        let rows = read_rows(&dir.join("out.jsonl"));
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

    fn read_rows(path: &std::path::Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .expect("output")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    }

    #[test]
    fn bad_lines_get_error_rows_and_the_rest_is_graded() {
        let dir = scratch("keep-going");
        let input = dir.join("in.jsonl");
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
        std::fs::write(&input, bytes).expect("write input");
        let mut a = args(input, dir.join("out.jsonl"));
        a.strict = false;
        let s = grade_file(&a).expect("grades");
        assert_eq!((s.count, s.correct, s.errors), (2, 2, 4));
        let rows = read_rows(&dir.join("out.jsonl"));
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
        // A valid pair and an escaped backslash are not lone surrogates.
        assert_eq!(lone_surrogate(r#"{"a": "\ud83d\ude00"}"#), None);
        assert_eq!(lone_surrogate(r#"{"a": "\\ud800"}"#), None);
        assert_eq!(
            lone_surrogate(r#"{"a": "\udc00"}"#).as_deref(),
            Some("\\udc00")
        );
    }

    fn usage_message(err: anyhow::Error) -> String {
        match err.downcast_ref::<UsageError>() {
            Some(UsageError(msg)) => msg.clone(),
            None => panic!("not a usage error: {err:#}"),
        }
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let dir = scratch("utf8");
        let input = dir.join("bad.jsonl");
        let mut bytes = br#"{"gold": "1", "pred": "1"}"#.to_vec();
        bytes.extend_from_slice(b"\n{\"gold\": \"1\", \"pred\": \"\xff\xfe\"}\n");
        std::fs::write(&input, bytes).expect("write input");
        let err = grade_file(&args(input.clone(), dir.join("out.jsonl"))).unwrap_err();
        let msg = usage_message(err);
        assert!(
            msg.contains(&format!("{}:2", input.display())) && msg.contains("UTF-8"),
            "{msg}"
        );
    }

    #[test]
    fn bad_lines_name_file_line_and_key() {
        let dir = scratch("bad");
        let cases = [
            ("{\"gold\": \"1\"", "invalid JSON"),
            ("[1, 2]", "expected a JSON object"),
            ("{\"pred\": \"1\"}", "missing key 'gold'"),
            ("{\"gold\": \"1\"}", "missing key 'pred' (or 'response')"),
            ("{\"gold\": [1], \"pred\": \"1\"}", "key 'gold' must be"),
        ];
        for (k, (line, want)) in cases.iter().enumerate() {
            let input = dir.join(format!("case{k}.jsonl"));
            std::fs::write(
                &input,
                format!("{{\"gold\": \"1\", \"pred\": \"1\"}}\n{line}\n"),
            )
            .expect("write input");
            let msg =
                usage_message(grade_file(&args(input.clone(), dir.join("o.jsonl"))).unwrap_err());
            assert!(
                msg.starts_with(&format!("{}:2: ", input.display())),
                "{msg}"
            );
            assert!(msg.contains(want), "{msg} lacks {want}");
        }
        let mut a = args(dir.join("case0.jsonl"), dir.join("o.jsonl"));
        a.grader = "sympy".into();
        assert!(usage_message(grade_file(&a).unwrap_err()).contains("--grader"));
        let mut a = args(dir.join("missing.jsonl"), dir.join("o.jsonl"));
        assert!(usage_message(grade_file(&a).unwrap_err()).contains("missing.jsonl"));
        a.input = dir.join("case0.jsonl");
        a.no_extract = vec!["boxes".into()];
        assert!(usage_message(grade_file(&a).unwrap_err()).contains("--no-extract"));
    }

    #[test]
    fn disabled_extraction_rule() {
        let dir = scratch("noextract");
        let input = dir.join("in.jsonl");
        std::fs::write(
            &input,
            "{\"gold\": \"5\", \"response\": \"\\\\boxed{4} but 5\"}\n",
        )
        .expect("write input");
        let mut a = args(input, dir.join("out.jsonl"));
        assert_eq!(grade_file(&a).expect("grades").correct, 0);
        a.no_extract = vec!["boxed".into()];
        assert_eq!(grade_file(&a).expect("grades").correct, 1);
    }
}
