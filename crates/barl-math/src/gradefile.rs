//! One line of a grading file (`barl grade`): a JSON object with the gold answer
//! and either an extracted answer or a full response, graded and written back
//! with `extracted`, `correct` and `reason` added.

use std::collections::BTreeMap;

use serde_json::value::{to_raw_value, RawValue};
use serde_json::Value;

use crate::extract::{extract_answer, ExtractOptions};
use crate::grader::{Grader, Verdict};

/// Which fields of a line hold what.
#[derive(Clone, Debug)]
pub struct LineKeys {
    /// The gold answer (a string or a number).
    pub gold: String,
    /// An already extracted answer, used when `response` is absent.
    pub pred: String,
    /// A full response; its answer is extracted first.
    pub response: String,
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
pub fn grade_line(
    text: &str,
    keys: &LineKeys,
    grader: &dyn Grader,
    opts: &ExtractOptions,
) -> Result<(Box<RawValue>, bool), LineError> {
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
    let extracted = if let Some(v) = obj.get(&keys.response) {
        let response = scalar_text(v).ok_or_else(|| wrong(&keys.response, "a string"))?;
        extract_answer(&response, opts)
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
        verdict.correct,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grader::StandardGrader;

    fn keys() -> LineKeys {
        LineKeys {
            gold: "gold".into(),
            pred: "pred".into(),
            response: "response".into(),
        }
    }

    fn grade(text: &str) -> Result<(Value, bool), LineError> {
        grade_line(text, &keys(), &StandardGrader, &ExtractOptions::default())
            .map(|(row, ok)| (serde_json::from_str(row.get()).unwrap(), ok))
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
        let (row, ok) =
            grade_line(line, &keys(), &StandardGrader, &ExtractOptions::default()).unwrap();
        assert!(!ok);
        assert!(
            row.get().contains(r#""gold":12345678901234567890123"#),
            "{}",
            row.get()
        );
        let big = format!(
            r#"{{"gold": 1e400, "pred": "1", "n": {}}}"#,
            "7".repeat(100_000)
        );
        let (row, ok) =
            grade_line(&big, &keys(), &StandardGrader, &ExtractOptions::default()).unwrap();
        assert!(!ok && row.get().contains(r#""gold":1e400"#));
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
}
