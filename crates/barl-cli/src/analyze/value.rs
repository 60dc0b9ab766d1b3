//! `barl analyze value`: the Bayesian value `V(k)` (spec section 3) along the
//! responses of eval output files, under a given model.
//!
//! Per problem, the hypotheses come from its responses (spec section 4,
//! [`build_hypotheses`]); per response, the answer probe gives `p_i(k)` at every
//! step (spec section 5, [`probe_probs_shared`]) and
//! `V(k) = sum_i w_i(k) (p_i(K) - p_i(k))` ([`math_bayesian_values`]).
//! Statistics, for all responses and for correct / incorrect ones apart:
//!
//! - `mean V`: over every step `k = 0..=K` of every response (pooled);
//! - `V(0)`, and `V(K-1)`, the last step before the end (`V(K) = 0` always, as
//!   `Q_i(K) = 0`; responses with `K = 0` have no `V(K-1)`);
//! - `p*(0)`, `p*(K)`: the truth's probability at the start and at the end;
//! - `V` by relative position: step `k` of a response with `K` steps falls in bin
//!   `min(floor(10 k / K), 9)` (bin 0 when `K = 0`), pooled over steps;
//! - the mean number of hypotheses of a response's problem;
//! - in the JSON: the mean `V(k)` by absolute step `k` over the responses that
//!   reach it, and every response's `V` and `p*` rows.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use barl_core::math_bayesian_values;
use barl_math::evalfile::read_eval_file;
use barl_math::grader::grader_by_name;
use barl_train::math::hypotheses::build_hypotheses;
use barl_train::math::probe::{probe_ids, probe_probs_shared};
use clap::Args;
use serde::Serialize;

use crate::UsageError;
use barl_train::math::engine::Engine;

/// The reference's forcing suffix (spec section 5); `{` is appended.
pub const DEFAULT_PROBE_SUFFIX: &str =
    "\nBased on the above reasoning, the final answer is \\boxed";

/// Options of `barl analyze value`.
#[derive(Args, Debug)]
pub struct ValueArgs {
    /// Model that probes the answers (GGUF file or Hugging Face folder)
    #[arg(long)]
    pub model: PathBuf,
    /// Eval output files (JSONL, one line per problem)
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Response tokens per step
    #[arg(long, default_value_t = 128)]
    pub step_size: usize,
    /// Strength of the belief update
    #[arg(long, default_value_t = 1.0)]
    pub beta: f32,
    /// Forcing suffix appended after each step (then `{` and the hypothesis)
    #[arg(long, default_value = DEFAULT_PROBE_SUFFIX)]
    pub probe_suffix: String,
    /// Longest hypothesis kept, in characters
    #[arg(long, default_value_t = 20)]
    pub max_hypothesis_len: usize,
    /// Most hypotheses per problem (the truth always stays)
    #[arg(long, default_value_t = 8)]
    pub max_hypotheses: usize,
    /// Grader that decides which candidate is the truth (standard or reference)
    #[arg(long, default_value = "standard")]
    pub grader: String,
    /// The eval prompts are raw text (eval --prompt-style raw:...): encode them
    /// with the tokenizer's own BOS, as eval did [chat-rendered text]
    #[arg(long)]
    pub raw_prompt: bool,
    /// Only the first N problems of each file
    #[arg(long)]
    pub limit: Option<usize>,
    /// Write the statistics (and per-response rows) as JSON to this file
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bar
    #[arg(long)]
    pub quiet: bool,
}

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

#[derive(Debug, Clone, Serialize)]
pub struct StepMean {
    pub step: usize,
    pub mean_v: f64,
    pub responses: usize,
}

/// Running sums behind [`GroupStats`].
#[derive(Default)]
struct Acc {
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

impl Acc {
    fn push(&mut self, r: &ResponseValues) {
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

    fn stats(&self) -> GroupStats {
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

#[derive(Debug, Serialize)]
struct ValueReport<'a> {
    model: String,
    step_size: usize,
    beta: f32,
    probe_suffix: &'a str,
    max_hypothesis_len: usize,
    max_hypotheses: usize,
    grader: &'a str,
    files: Vec<FileValues>,
}

fn check_args(args: &ValueArgs) -> Result<()> {
    let usage = |m: String| -> anyhow::Error { UsageError(m).into() };
    if args.step_size == 0 {
        return Err(usage("--step-size must be at least 1".into()));
    }
    if !(args.beta.is_finite() && args.beta >= 0.0) {
        return Err(usage(format!(
            "--beta must be finite and >= 0, got {}",
            args.beta
        )));
    }
    if args.limit == Some(0) {
        return Err(usage("--limit must be at least 1".into()));
    }
    grader_by_name(&args.grader).map_err(|e| usage(format!("--grader: {e}")))?;
    Ok(())
}

/// Runs `barl analyze value`.
pub fn value(args: &ValueArgs, out: &mut dyn Write) -> Result<()> {
    check_args(args)?;
    let grader = grader_by_name(&args.grader).map_err(UsageError)?;
    // Read every file first: a bad one fails before the model loads.
    let mut inputs = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let parsed = read_eval_file(path)?;
        if parsed.partial_tail {
            eprintln!(
                "note: {}: ignored a partial last line (interrupted run)",
                path.display()
            );
        }
        let mut records = parsed.records;
        if records.is_empty() {
            return Err(UsageError(format!("{}: no records", path.display())).into());
        }
        if let Some(limit) = args.limit {
            records.truncate(limit);
        }
        inputs.push((path, records));
    }
    let engine = Engine::load(&args.model)?;
    let total: usize = inputs
        .iter()
        .flat_map(|(_, rs)| rs.iter().map(|r| r.responses.len()))
        .sum();
    let bar = crate::progress::bar(args.quiet, "probing", total, "responses");
    let equal = |a: &str, b: &str| grader.grade(a, b).correct;

    let mut files = Vec::with_capacity(inputs.len());
    for (path, records) in &inputs {
        let (mut all, mut right, mut wrong) = (Acc::default(), Acc::default(), Acc::default());
        let mut rows = Vec::new();
        for rec in records {
            let at = || format!("{}: problem {}", path.display(), rec.id);
            let hyps = build_hypotheses(
                &rec.responses,
                &rec.gold,
                &equal,
                args.max_hypothesis_len,
                args.max_hypotheses,
            );
            let (suffix, hyp_ids) =
                probe_ids(&engine.tokenizer, &args.probe_suffix, &hyps.answers).with_context(at)?;
            let prompt = engine
                .encode(&rec.prompt, !args.raw_prompt)
                .with_context(at)?;
            if prompt.is_empty() {
                return Err(UsageError(format!("{}: empty prompt", at())).into());
            }
            let responses = rec
                .responses
                .iter()
                .map(|text| engine.tokenizer.encode(text, false))
                .collect::<Result<Vec<_>, _>>()
                .with_context(at)?;
            let refs: Vec<&[u32]> = responses.iter().map(Vec::as_slice).collect();
            // All responses of a problem are probed together (one batch per step).
            let all_probs = probe_probs_shared(
                &engine.model,
                &prompt,
                &refs,
                args.step_size,
                &suffix,
                &hyp_ids,
            )
            .with_context(at)?;
            for (i, (probs, &ok)) in all_probs.iter().zip(&rec.correct).enumerate() {
                let truth = probs[hyps.truth].clone();
                let values = math_bayesian_values(probs, &truth, args.beta)
                    .with_context(|| format!("{}, response {i}", at()))?;
                let row = ResponseValues {
                    id: rec.id.clone(),
                    response: i,
                    correct: ok,
                    hypotheses: hyps.answers.len(),
                    values,
                    truth,
                };
                all.push(&row);
                if ok {
                    right.push(&row);
                } else {
                    wrong.push(&row);
                }
                rows.push(row);
                bar.inc(1);
            }
        }
        files.push(FileValues {
            file: path.display().to_string(),
            problems: records.len(),
            all: all.stats(),
            correct: right.stats(),
            incorrect: wrong.stats(),
            responses: rows,
        });
    }
    bar.finish_and_clear();

    for f in &files {
        out.write_all(render_table(f, args).as_bytes())?;
    }
    if let Some(path) = &args.out {
        let report = ValueReport {
            model: args.model.display().to_string(),
            step_size: args.step_size,
            beta: args.beta,
            probe_suffix: &args.probe_suffix,
            max_hypothesis_len: args.max_hypothesis_len,
            max_hypotheses: args.max_hypotheses,
            grader: &args.grader,
            files,
        };
        let text = serde_json::to_string_pretty(&report).context("serialising the report")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// One file's table: one row per statistic, columns all / correct / incorrect.
fn render_table(f: &FileValues, args: &ValueArgs) -> String {
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
        f.file, f.problems, args.step_size, args.beta, ""
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
        let mut acc = Acc::default();
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
        let e = Acc::default().stats();
        assert_eq!((e.responses, e.mean_v, e.mean_hypotheses), (0, None, None));
    }
}
