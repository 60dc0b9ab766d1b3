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

use super::read_noting_partial;
use anyhow::{Context, Result};
use barl_core::math_bayesian_values;
use barl_math::grader::grader_by_name;
use barl_report::value::{render_table, FileValues, ResponseValues, ValueSums};
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
    let grader = grader_by_name(&args.grader).map_err(|e| UsageError(e.to_string()))?;
    // Read every file first: a bad one fails before the model loads.
    let mut inputs = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let parsed = read_noting_partial(path)?;
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
        let (mut all, mut right, mut wrong) = (
            ValueSums::default(),
            ValueSums::default(),
            ValueSums::default(),
        );
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
        out.write_all(render_table(f, args.step_size, args.beta).as_bytes())?;
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
