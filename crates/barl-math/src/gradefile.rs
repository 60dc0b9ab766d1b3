//! One line of a grading file (`barl grade`): a JSON object with the gold answer
//! and either an extracted answer or a full response, graded and written back
//! with `extracted`, `correct` and `reason` added.

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

/// Grades one line: returns the object with `extracted`, `correct` and
/// `reason` added, and the verdict.
pub fn grade_line(
    text: &str,
    keys: &LineKeys,
    grader: &dyn Grader,
    opts: &ExtractOptions,
) -> Result<(Value, bool), LineError> {
    let mut value: Value =
        serde_json::from_str(text).map_err(|e| LineError::Json(e.to_string()))?;
    let obj = value.as_object_mut().ok_or(LineError::NotAnObject)?;
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
    obj.insert(
        "extracted".into(),
        extracted.map_or(Value::Null, Value::String),
    );
    obj.insert("correct".into(), Value::Bool(verdict.correct));
    obj.insert("reason".into(), Value::String(verdict.reason.into()));
    Ok((value, verdict.correct))
}

/// A string field as is, a number as written in the file (AMC's `27.0`).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
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
