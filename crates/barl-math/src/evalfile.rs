//! The output of `barl eval`: one JSON line per problem ([`EvalRecord`]), its
//! reader and writer (with resume), and the metrics per benchmark.
//!
//! Resume: the writer writes each record as one `write` of the line and its
//! newline, then flushes, so an interrupted run leaves at most one partial last
//! line. [`read_eval_file`] ignores such a line (a final line with no newline
//! that does not parse, invalid UTF-8 included) and [`EvalWriter::resume`] cuts it
//! off before appending. A bad line anywhere else is an error naming file:line.
//!
//! pass@k needs `barl-core`, so it is computed by the caller from the
//! per-problem `(n, c)` counts in [`BenchmarkMetrics::counts`].

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{DataError, RecordError};
use crate::reflect::{ReflectionCounter, ReflectionStats};

/// One problem's samples, verdicts and token counts. The five lists are
/// parallel: entry `i` of each describes response `i`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub id: String,
    pub benchmark: String,
    /// The prompt as given to the model (rendered text).
    pub prompt: String,
    pub gold: String,
    pub responses: Vec<String>,
    /// The extracted final answer of each response (`None`: nothing found).
    pub extracted: Vec<Option<String>>,
    pub correct: Vec<bool>,
    /// Generated tokens per response.
    pub tokens: Vec<usize>,
    /// Whether the response hit the token limit.
    pub truncated: Vec<bool>,
}

impl EvalRecord {
    /// Checks that the parallel lists have one entry per response.
    pub fn validate(&self) -> Result<(), RecordError> {
        let n = self.responses.len();
        let lens = [
            ("extracted", self.extracted.len()),
            ("correct", self.correct.len()),
            ("tokens", self.tokens.len()),
            ("truncated", self.truncated.len()),
        ];
        for (field, len) in lens {
            if len != n {
                return Err(RecordError::Lengths {
                    field,
                    len,
                    responses: n,
                });
            }
        }
        Ok(())
    }

    /// `(n, c)`: samples and correct samples, the inputs of the pass@k estimator.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.correct.len(),
            self.correct.iter().filter(|&&c| c).count(),
        )
    }
}

/// The complete records of an eval file.
#[derive(Debug, Clone, Default)]
pub struct EvalFile {
    pub records: Vec<EvalRecord>,
    /// True when a partial (unterminated, unparsable) last line was ignored.
    pub partial_tail: bool,
    /// Length in bytes of the part of the file that holds complete records.
    pub complete_len: u64,
}

/// Reads an eval output file (see the module docs for what is tolerated).
pub fn read_eval_file(path: &Path) -> Result<EvalFile, DataError> {
    let bytes = std::fs::read(path).map_err(|error| DataError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    parse_eval_bytes(path, &bytes)
}

fn parse_eval_bytes(path: &Path, bytes: &[u8]) -> Result<EvalFile, DataError> {
    let mut out = EvalFile::default();
    let mut start = 0usize;
    let mut line_no = 0usize;
    while start < bytes.len() {
        line_no += 1;
        let (end, terminated) = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => (start + i, true),
            None => (bytes.len(), false),
        };
        let raw = &bytes[start..end];
        let next = if terminated { end + 1 } else { end };
        if raw.iter().all(u8::is_ascii_whitespace) {
            // Blank lines are harmless; keep them inside the complete part.
            start = next;
            out.complete_len = next as u64;
            continue;
        }
        match parse_record(raw) {
            Ok(rec) => {
                out.records.push(rec);
                out.complete_len = next as u64;
            }
            // The last line was cut off mid-write: drop it.
            Err(_) if !terminated => {
                out.partial_tail = true;
                break;
            }
            Err(e) => {
                return Err(DataError::Line {
                    path: path.to_path_buf(),
                    line: line_no,
                    msg: e.to_string(),
                })
            }
        }
        start = next;
    }
    Ok(out)
}

fn parse_record(raw: &[u8]) -> Result<EvalRecord, RecordError> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let text = std::str::from_utf8(raw).map_err(|e| RecordError::InvalidUtf8 {
        byte: e.valid_up_to(),
    })?;
    let rec: EvalRecord =
        serde_json::from_str(text).map_err(|e| RecordError::NotAnEvalRecord(e.to_string()))?;
    rec.validate()?;
    Ok(rec)
}

/// Appends records to an eval file, one flushed line each.
pub struct EvalWriter {
    file: File,
    path: PathBuf,
}

impl EvalWriter {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> Result<Self, DataError> {
        let file = File::create(path).map_err(|error| DataError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Opens `path` to continue an interrupted run: returns the complete
    /// records already there, after cutting off a partial last line (and
    /// ending the file with a newline). A missing file starts empty.
    pub fn resume(path: &Path) -> Result<(Self, Vec<EvalRecord>), DataError> {
        let io = |error| DataError::Io {
            path: path.to_path_buf(),
            error,
        };
        if !path.exists() {
            return Ok((Self::create(path)?, Vec::new()));
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let parsed = parse_eval_bytes(path, &bytes)?;
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(parsed.complete_len))
            .map_err(io)?;
        let mut file = OpenOptions::new().append(true).open(path).map_err(io)?;
        let keep = &bytes[..parsed.complete_len as usize];
        // A last record written by hand without its newline: add it.
        if !keep.is_empty() && !keep.ends_with(b"\n") {
            file.write_all(b"\n").map_err(io)?;
        }
        Ok((
            Self {
                file,
                path: path.to_path_buf(),
            },
            parsed.records,
        ))
    }

    /// Writes one record as a line and flushes it.
    pub fn write(&mut self, record: &EvalRecord) -> Result<(), DataError> {
        let mut line = serde_json::to_string(record).map_err(|e| DataError::File {
            path: self.path.clone(),
            msg: format!("cannot serialise record `{}`: {e}", record.id),
        })?;
        line.push('\n');
        let io = |error| DataError::Io {
            path: self.path.clone(),
            error,
        };
        self.file.write_all(line.as_bytes()).map_err(io)?;
        self.file.flush().map_err(io)
    }
}

// ---------------------------------------------------------------------------
// Metrics

/// Exact string equality, the default grouping for majority voting.
pub fn exact_equal(a: &str, b: &str) -> bool {
    a == b
}

/// Majority vote over extracted answers: the index of the response whose
/// answer wins, or `None` when no response has one.
///
/// Answers are grouped in first-seen order: each answer joins the first group
/// whose first member it `equal`s (so a non-transitive `equal` is applied
/// against group representatives only). The largest group wins; ties go to
/// the group seen first. The winner is that group's first member.
pub fn majority_vote(
    extracted: &[Option<String>],
    equal: &dyn Fn(&str, &str) -> bool,
) -> Option<usize> {
    // (representative index, size)
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for (i, ans) in extracted.iter().enumerate() {
        let Some(ans) = ans else { continue };
        let found = groups
            .iter_mut()
            .find(|(rep, _)| extracted[*rep].as_deref().is_some_and(|r| equal(r, ans)));
        match found {
            Some(g) => g.1 += 1,
            None => groups.push((i, 1)),
        }
    }
    let mut best: Option<(usize, usize)> = None;
    for g in groups {
        // Strictly larger only, so the earliest group keeps a tie.
        if best.is_none_or(|b| g.1 > b.1) {
            best = Some(g);
        }
    }
    best.map(|(rep, _)| rep)
}

/// Median of `values` (mean of the two middle ones for an even count);
/// `None` when empty.
pub fn median(values: &[usize]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m] as f64
    } else {
        (v[m - 1] as f64 + v[m] as f64) / 2.0
    })
}

fn mean(values: &[usize]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<usize>() as f64 / values.len() as f64)
}

/// Metrics of one benchmark in an eval file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkMetrics {
    pub benchmark: String,
    /// Problems (records), including any with no responses.
    pub problems: usize,
    /// Responses over all problems.
    pub responses: usize,
    /// mean@n: the mean over problems (with >= 1 response) of `c / n`.
    pub accuracy: f64,
    /// maj@n: the fraction of problems (with >= 1 response) whose majority
    /// answer ([`majority_vote`]) was judged correct; no answer counts as wrong.
    pub maj_at_n: f64,
    /// Response tokens over all responses.
    pub mean_tokens: f64,
    pub median_tokens: f64,
    /// Response tokens over correct responses (`None` when none is correct).
    pub mean_tokens_correct: Option<f64>,
    pub median_tokens_correct: Option<f64>,
    /// Fraction of responses that hit the token limit.
    pub truncation_rate: f64,
    pub reflection: ReflectionStats,
    /// Per problem `(n, c)` in file order, for pass@k.
    pub counts: Vec<(usize, usize)>,
}

/// Metrics per benchmark, in order of first appearance in `records`.
pub fn compute_metrics(
    records: &[EvalRecord],
    counter: &ReflectionCounter,
    equal: &dyn Fn(&str, &str) -> bool,
) -> Vec<BenchmarkMetrics> {
    let mut names: Vec<&str> = Vec::new();
    for r in records {
        if !names.contains(&r.benchmark.as_str()) {
            names.push(&r.benchmark);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let group: Vec<&EvalRecord> = records.iter().filter(|r| r.benchmark == name).collect();
            metrics_of(name, &group, counter, equal)
        })
        .collect()
}

/// Metrics of one set of records (all taken as one benchmark).
pub fn metrics_of(
    benchmark: &str,
    records: &[&EvalRecord],
    counter: &ReflectionCounter,
    equal: &dyn Fn(&str, &str) -> bool,
) -> BenchmarkMetrics {
    let ratio = |a: f64, b: usize| if b == 0 { 0.0 } else { a / b as f64 };
    let mut acc_sum = 0.0;
    let mut maj_hits = 0usize;
    let mut scored = 0usize;
    let mut tokens = Vec::new();
    let mut tokens_correct = Vec::new();
    let mut truncated = 0usize;
    let mut counts = Vec::with_capacity(records.len());
    for r in records {
        let (n, c) = r.counts();
        counts.push((n, c));
        if n > 0 {
            scored += 1;
            acc_sum += c as f64 / n as f64;
            if let Some(i) = majority_vote(&r.extracted, equal) {
                maj_hits += usize::from(r.correct.get(i).copied().unwrap_or(false));
            }
        }
        for (i, &t) in r.tokens.iter().enumerate() {
            tokens.push(t);
            if r.correct.get(i).copied().unwrap_or(false) {
                tokens_correct.push(t);
            }
        }
        truncated += r.truncated.iter().filter(|&&t| t).count();
    }
    let pairs = records.iter().flat_map(|r| {
        r.responses
            .iter()
            .zip(&r.correct)
            .map(|(text, &ok)| (text.as_str(), ok))
    });
    let reflection = counter.stats(pairs);
    BenchmarkMetrics {
        benchmark: benchmark.to_string(),
        problems: records.len(),
        responses: tokens.len(),
        accuracy: ratio(acc_sum, scored),
        maj_at_n: ratio(maj_hits as f64, scored),
        mean_tokens: mean(&tokens).unwrap_or(0.0),
        median_tokens: median(&tokens).unwrap_or(0.0),
        mean_tokens_correct: mean(&tokens_correct),
        median_tokens_correct: median(&tokens_correct),
        truncation_rate: ratio(truncated as f64, tokens.len()),
        reflection,
        counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(xs: &[&str]) -> Vec<Option<String>> {
        xs.iter()
            .map(|x| (!x.is_empty()).then(|| x.to_string()))
            .collect()
    }

    #[test]
    fn majority_vote_by_hand() {
        // "2" x2, "3" x2 -> tie, "3" seen first (index 0).
        assert_eq!(
            majority_vote(&some(&["3", "2", "2", "3"]), &exact_equal),
            Some(0)
        );
        // "5" x3 beats "7" x1; winner is the first "5" (index 1). Empty = no answer.
        assert_eq!(
            majority_vote(&some(&["7", "5", "", "5", "5"]), &exact_equal),
            Some(1)
        );
        assert_eq!(majority_vote(&some(&["", ""]), &exact_equal), None);
        // With a looser equality "0.5" and "1/2" group together: 2 vs 1 for "1".
        let eq = |a: &str, b: &str| {
            let v = |s: &str| match s {
                "1/2" => 0.5,
                other => other.parse::<f64>().unwrap_or(f64::NAN),
            };
            v(a) == v(b)
        };
        assert_eq!(majority_vote(&some(&["1", "0.5", "1/2"]), &eq), Some(1));
        assert_eq!(
            majority_vote(&some(&["1", "0.5", "1/2"]), &exact_equal),
            Some(0)
        );
    }

    #[test]
    fn median_by_hand() {
        assert_eq!(median(&[5, 1, 3]), Some(3.0));
        // sorted 1 2 8 10 -> (2 + 8) / 2 = 5.
        assert_eq!(median(&[10, 2, 8, 1]), Some(5.0));
        assert_eq!(median(&[]), None);
    }
}
