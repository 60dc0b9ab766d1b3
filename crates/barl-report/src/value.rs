//! Statistics of the Bayesian value `V(k)` along responses (`barl analyze
//! value`): means over all, correct and incorrect responses, at the start, just
//! before the end, by relative position in 10 bins (step `k` of `K` in bin
//! `min(floor(10 k / K), 9)`, bin 0 when `K = 0`) and by absolute step.

use serde::Serialize;

/// One response's probe results.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseValues {
    pub id: String,
    pub response: usize,
    pub correct: bool,
    pub hypotheses: usize,
    /// `V(k)` for `k = 0..=K`.
    pub values: Vec<f32>,
    /// `p*(k)` for `k = 0..=K`.
    pub truth: Vec<f32>,
}

/// Number of relative-position bins.
const BINS: usize = 10;

/// Means over one group of responses (`None`: nothing to average).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupStats {
    pub responses: usize,
    pub mean_hypotheses: Option<f64>,
    pub mean_v: Option<f64>,
    pub mean_v0: Option<f64>,
    pub mean_v_before_end: Option<f64>,
    pub mean_p_truth_start: Option<f64>,
    pub mean_p_truth_end: Option<f64>,
    /// Mean `V` in bins of `k / K` (`[0, 0.1)`, ..., `[0.9, 1]`).
    pub v_by_position: Vec<Option<f64>>,
    /// Mean `V(k)` by absolute step `k`, and how many responses reach it.
    pub v_by_step: Vec<StepMean>,
}

/// Mean `V(k)` at one absolute step `k`.
#[derive(Debug, Clone, Serialize)]
pub struct StepMean {
    pub step: usize,
    pub mean_v: f64,
    pub responses: usize,
}

/// Running sums behind [`GroupStats`]: [`push`](Self::push) each response of
/// a group, then read [`stats`](Self::stats).
#[derive(Default)]
pub struct ValueSums {
    responses: usize,
    hyps: f64,
    v: (f64, usize),
    v0: (f64, usize),
    before_end: (f64, usize),
    p_start: (f64, usize),
    p_end: (f64, usize),
    bins: [(f64, usize); BINS],
    steps: Vec<(f64, usize)>,
}

fn add(s: &mut (f64, usize), x: f32) {
    s.0 += f64::from(x);
    s.1 += 1;
}

fn mean((sum, n): (f64, usize)) -> Option<f64> {
    (n > 0).then(|| sum / n as f64)
}

impl ValueSums {
    pub fn push(&mut self, r: &ResponseValues) {
        self.responses += 1;
        self.hyps += r.hypotheses as f64;
        let big_k = r.values.len().saturating_sub(1);
        for (k, &v) in r.values.iter().enumerate() {
            add(&mut self.v, v);
            // K = 0 (one step, the bare prompt) goes to bin 0.
            let bin = (k * BINS).checked_div(big_k).map_or(0, |b| b.min(BINS - 1));
            add(&mut self.bins[bin], v);
            if self.steps.len() <= k {
                self.steps.push((0.0, 0));
            }
            add(&mut self.steps[k], v);
        }
        if let Some(&v) = r.values.first() {
            add(&mut self.v0, v);
        }
        if big_k >= 1 {
            add(&mut self.before_end, r.values[big_k - 1]);
        }
        if let (Some(&a), Some(&b)) = (r.truth.first(), r.truth.last()) {
            add(&mut self.p_start, a);
            add(&mut self.p_end, b);
        }
    }

    pub fn stats(&self) -> GroupStats {
        GroupStats {
            responses: self.responses,
            mean_hypotheses: mean((self.hyps, self.responses)),
            mean_v: mean(self.v),
            mean_v0: mean(self.v0),
            mean_v_before_end: mean(self.before_end),
            mean_p_truth_start: mean(self.p_start),
            mean_p_truth_end: mean(self.p_end),
            v_by_position: self.bins.iter().map(|&b| mean(b)).collect(),
            v_by_step: self
                .steps
                .iter()
                .enumerate()
                .map(|(step, &(sum, n))| StepMean {
                    step,
                    mean_v: sum / n as f64,
                    responses: n,
                })
                .collect(),
        }
    }
}

/// One file's results.
#[derive(Debug, Clone, Serialize)]
pub struct FileValues {
    pub file: String,
    pub problems: usize,
    pub all: GroupStats,
    pub correct: GroupStats,
    pub incorrect: GroupStats,
    pub responses: Vec<ResponseValues>,
}

/// One file's table: one row per statistic, columns all / correct / incorrect.
pub fn render_table(f: &FileValues, step_size: usize, beta: f32) -> String {
    let groups = [&f.all, &f.correct, &f.incorrect];
    let num = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
    let mut rows: Vec<(String, Vec<String>)> = vec![
        (
            "responses".into(),
            groups.iter().map(|g| g.responses.to_string()).collect(),
        ),
        (
            "mean hypotheses".into(),
            groups
                .iter()
                .map(|g| g.mean_hypotheses.map_or("-".into(), |v| format!("{v:.2}")))
                .collect(),
        ),
    ];
    let mut stat = |label: &str, get: &dyn Fn(&GroupStats) -> Option<f64>| {
        rows.push((label.into(), groups.iter().map(|g| num(get(g))).collect()));
    };
    stat("mean V (all steps)", &|g| g.mean_v);
    stat("V(0)", &|g| g.mean_v0);
    stat("V(K-1)", &|g| g.mean_v_before_end);
    stat("p*(0)", &|g| g.mean_p_truth_start);
    stat("p*(K)", &|g| g.mean_p_truth_end);
    for b in 0..BINS {
        let label = format!(
            "V at k/K {:.1}-{:.1}",
            b as f64 / 10.0,
            (b + 1) as f64 / 10.0
        );
        stat(&label, &|g| g.v_by_position[b]);
    }
    let head = ["all", "correct", "incorrect"];
    let label_w = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let mut text = format!(
        "{} ({} problems; step size {}, beta {})\n{:label_w$}",
        f.file, f.problems, step_size, beta, ""
    );
    for h in head {
        text.push_str(&format!("  {h:>10}"));
    }
    text.push('\n');
    for (label, cells) in &rows {
        text.push_str(&format!("{label:label_w$}"));
        for c in cells {
            text.push_str(&format!("  {c:>10}"));
        }
        text.push('\n');
    }
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_means_and_bins_by_hand() {
        let row = |values: Vec<f32>, truth: Vec<f32>, hypotheses| ResponseValues {
            id: "p".into(),
            response: 0,
            correct: true,
            hypotheses,
            values,
            truth,
        };
        let mut acc = ValueSums::default();
        // K = 2: steps 0, 1, 2 fall in bins 0, 5, 9 (10k/K = 0, 5, 10 -> 9).
        acc.push(&row(vec![0.4, 0.2, 0.0], vec![0.1, 0.3, 0.9], 2));
        // K = 0: one step in bin 0, no V(K-1).
        acc.push(&row(vec![0.0], vec![0.5], 4));
        let s = acc.stats();
        assert_eq!(s.responses, 2);
        assert_eq!(s.mean_hypotheses, Some(3.0));
        // (0.4 + 0.2 + 0 + 0) / 4 = 0.15
        assert!((s.mean_v.unwrap() - 0.15).abs() < 1e-7);
        assert!((s.mean_v0.unwrap() - 0.2).abs() < 1e-7);
        assert!((s.mean_v_before_end.unwrap() - 0.2).abs() < 1e-7);
        assert!((s.mean_p_truth_start.unwrap() - 0.3).abs() < 1e-7);
        assert!((s.mean_p_truth_end.unwrap() - 0.7).abs() < 1e-7);
        assert!((s.v_by_position[0].unwrap() - 0.2).abs() < 1e-7);
        assert!((s.v_by_position[5].unwrap() - 0.2).abs() < 1e-7);
        assert_eq!(s.v_by_position[9], Some(0.0));
        assert_eq!(s.v_by_position[1], None);
        assert_eq!(s.v_by_step.len(), 3);
        assert_eq!(s.v_by_step[0].responses, 2);
        assert_eq!(s.v_by_step[2].responses, 1);
        // An empty group has no means.
        let e = ValueSums::default().stats();
        assert_eq!((e.responses, e.mean_v, e.mean_hypotheses), (0, None, None));
    }
}
