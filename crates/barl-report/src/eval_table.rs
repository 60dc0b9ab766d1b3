//! The summary of a `barl eval` folder: each benchmark's line in `metrics.json`
//! (its metrics and the pass@k curve) and the table printed at the end.

use barl_math::evalfile::BenchmarkMetrics;
use serde::Serialize;

/// One benchmark's line in `metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BenchmarkReport {
    #[serde(flatten)]
    pub metrics: BenchmarkMetrics,
    /// pass@k for k = 1..n (unbiased estimator, mean over problems).
    pub pass_at_k: Vec<f64>,
}

impl BenchmarkReport {
    /// The metrics with their pass@k curve for `n` samples per problem.
    pub fn new(metrics: BenchmarkMetrics, n: usize) -> Result<Self, barl_core::CoreError> {
        let pass_at_k = barl_core::pass_at_k_curve(&metrics.counts, n)?;
        Ok(BenchmarkReport { metrics, pass_at_k })
    }
}

/// The table of `barl eval`: one row per benchmark (accuracy is mean@n).
pub fn render_table(reports: &[BenchmarkReport]) -> String {
    let mut t = format!(
        "{:<14} {:>8} {:>9} {:>8} {:>10} {:>11} {:>10} {:>11}\n",
        "benchmark", "problems", "acc", "maj@n", "pass@n", "mean tok", "trunc", "reflect/resp"
    );
    for r in reports {
        let m = &r.metrics;
        t.push_str(&format!(
            "{:<14} {:>8} {:>9.3} {:>8.3} {:>10.3} {:>11.1} {:>10.3} {:>11.2}\n",
            m.benchmark,
            m.problems,
            m.accuracy,
            m.maj_at_n,
            r.pass_at_k.last().copied().unwrap_or(0.0),
            m.mean_tokens,
            m.truncation_rate,
            m.reflection.mean_count
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use barl_math::evalfile::{compute_metrics, EvalRecord};
    use barl_math::reflect::{ReflectionCounter, DEFAULT_PHRASES};

    #[test]
    fn a_row_by_hand() {
        // Two problems, 2 samples each: 1 of 2 and 0 of 2 correct.
        let record = |id: &str, correct: [bool; 2]| EvalRecord {
            id: id.into(),
            benchmark: "gsm8k".into(),
            prompt: "p".into(),
            gold: "1".into(),
            responses: vec!["Wait, 1".into(), "2".into()],
            extracted: vec![Some("1".into()), Some("2".into())],
            correct: correct.to_vec(),
            tokens: vec![4, 8],
            truncated: vec![false, true],
        };
        let records = [record("a", [true, false]), record("b", [false, false])];
        let counter = ReflectionCounter::new(DEFAULT_PHRASES);
        let m = compute_metrics(&records, &counter, &|a, b| a == b).remove(0);
        let r = BenchmarkReport::new(m, 2).unwrap();
        // pass@1 = (1/2 + 0) / 2, pass@2 = (1 + 0) / 2.
        assert_eq!(r.pass_at_k, vec![0.25, 0.5]);
        let table = render_table(&[r]);
        let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
        // acc 0.25, maj@n 0.5 (a's two answers tie; the first, "1", is correct),
        // pass@2 0.5, mean tokens 6, half truncated, 2 "wait" in 4 responses.
        assert_eq!(
            row,
            ["gsm8k", "2", "0.250", "0.500", "0.500", "6.0", "0.500", "0.50"]
        );
    }
}
