//! One line of a training run's `metrics.jsonl`, typed: the keys follow verl's
//! names (`critic/...`, `actor/...`, `response_length/...`, `timing_s/...`) so
//! runs compare side by side with verl's logs.

use std::collections::BTreeMap;

use serde::Serialize;

/// The `metrics.jsonl` keys readers look up (the report's plots and summary);
/// a test checks each one against what [`StepRecord`] writes.
pub mod keys {
    pub const SCORE_MEAN: &str = "critic/score/mean";
    pub const RESPONSE_LENGTH_MEAN: &str = "response_length/mean";
    pub const RESPONSE_LENGTH_CLIP_RATIO: &str = "response_length/clip_ratio";
    pub const ENTROPY: &str = "actor/entropy";
    pub const GRAD_NORM: &str = "actor/grad_norm";
    pub const PG_CLIPFRAC: &str = "actor/pg_clipfrac";
    pub const BAYES_VALUE_MEAN: &str = "barl/bayes_value/mean";
    pub const NUM_HYPOTHESES_MEAN: &str = "barl/num_hypotheses/mean";
    pub const TIME_GEN: &str = "timing_s/gen";
    pub const TIME_PROBE: &str = "timing_s/probe";
    pub const TIME_UPDATE: &str = "timing_s/update";
    pub const TIME_STEP: &str = "timing_s/step";
    pub const THROUGHPUT: &str = "perf/throughput";

    /// `val/<set>/acc`: the held-out accuracy key of evaluation set `set`.
    pub fn val_acc(set: &str) -> String {
        format!("val/{set}/acc")
    }

    /// The set of a `val/<set>/acc` key.
    pub fn val_set(key: &str) -> Option<&str> {
        key.strip_prefix("val/")?
            .strip_suffix("/acc")
            .filter(|s| !s.is_empty())
    }
}

/// A `metrics.jsonl` line: the RL step's statistics (absent on the initial
/// evaluation's line, step 0) and the held-out accuracies when evaluated.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StepRecord {
    /// RL steps completed when the line was written.
    pub step: usize,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub train: Option<StepStats>,
    /// `val/<set>/acc`: mean correctness of greedy answers on a held-out set.
    #[serde(flatten)]
    pub val: BTreeMap<String, f64>,
    /// Seconds the held-out evaluation took (not part of `timing_s/step`).
    #[serde(rename = "timing_s/eval", skip_serializing_if = "Option::is_none")]
    pub eval_seconds: Option<f64>,
    /// Collapse guards that fired on this step (printed, not logged).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// What one RL step measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StepStats {
    /// Mean outcome reward of the step's completions.
    #[serde(rename = "critic/score/mean")]
    pub score_mean: f64,
    #[serde(rename = "critic/advantages/mean")]
    pub advantages_mean: f64,
    #[serde(rename = "critic/advantages/max")]
    pub advantages_max: f32,
    #[serde(rename = "critic/advantages/min")]
    pub advantages_min: f32,
    /// Mean completion length in tokens.
    #[serde(rename = "response_length/mean")]
    pub response_length_mean: f64,
    /// Share of completions cut at `max_new_tokens`.
    #[serde(rename = "response_length/clip_ratio")]
    pub response_length_clip_ratio: f64,
    #[serde(rename = "actor/pg_loss")]
    pub pg_loss: f64,
    #[serde(rename = "actor/pg_clipfrac")]
    pub pg_clipfrac: f64,
    #[serde(rename = "actor/ppo_kl")]
    pub ppo_kl: f64,
    #[serde(rename = "actor/entropy")]
    pub entropy: f64,
    #[serde(rename = "actor/grad_norm")]
    pub grad_norm: f64,
    #[serde(rename = "actor/lr")]
    pub lr: f64,
    /// Optimizer steps skipped so far in the run (non-finite loss or gradient).
    #[serde(rename = "actor/skipped_steps")]
    pub skipped_steps: usize,
    /// KL estimate to the frozen reference (only with `kl_coef > 0`).
    #[serde(rename = "actor/kl", skip_serializing_if = "Option::is_none")]
    pub kl: Option<f64>,
    /// Progress/BARL: mean step value `V(k)` over all steps.
    #[serde(
        rename = "barl/bayes_value/mean",
        skip_serializing_if = "Option::is_none"
    )]
    pub bayes_value_mean: Option<f64>,
    /// Progress/BARL: mean hypotheses per prompt.
    #[serde(
        rename = "barl/num_hypotheses/mean",
        skip_serializing_if = "Option::is_none"
    )]
    pub num_hypotheses_mean: Option<f64>,
    /// Mean token entropy over `ln(vocab_size)`: 1 is a uniform policy.
    #[serde(rename = "health/entropy_ratio")]
    pub entropy_ratio: f64,
    /// Steps in a row, up to this one, whose rewards were all equal.
    #[serde(rename = "health/equal_reward_steps")]
    pub equal_reward_steps: usize,
    /// Training prompts cut to `max_prompt_len` (the whole run's count).
    #[serde(rename = "data/prompts_truncated")]
    pub prompts_truncated: usize,
    /// Training prompts left out for being too long.
    #[serde(rename = "data/prompts_skipped")]
    pub prompts_skipped: usize,
    /// `rollout.backend = "vllm"`: mean and max `|log p|` gap between the
    /// servers and barl's forward over the sampled tokens.
    #[serde(
        rename = "rollout/logprob_diff/mean",
        skip_serializing_if = "Option::is_none"
    )]
    pub logprob_diff_mean: Option<f64>,
    #[serde(
        rename = "rollout/logprob_diff/max",
        skip_serializing_if = "Option::is_none"
    )]
    pub logprob_diff_max: Option<f64>,
    /// `rollout.old_logprobs = "server-tis"`: the token mean of the truncated
    /// importance weight `min(pi_barl / pi_server, tis_cap)`.
    #[serde(
        rename = "rollout/tis_weight/mean",
        skip_serializing_if = "Option::is_none"
    )]
    pub tis_weight_mean: Option<f64>,
    #[serde(rename = "timing_s/gen")]
    pub gen_seconds: f64,
    #[serde(rename = "timing_s/probe")]
    pub probe_seconds: f64,
    #[serde(rename = "timing_s/update")]
    pub update_seconds: f64,
    /// Writing the weights and the servers' reload (vLLM backend).
    #[serde(rename = "timing_s/sync", skip_serializing_if = "Option::is_none")]
    pub sync_seconds: Option<f64>,
    /// The whole step, held-out evaluation excluded.
    #[serde(rename = "timing_s/step")]
    pub step_seconds: f64,
    /// Completion tokens per second of step time.
    #[serde(rename = "perf/throughput")]
    pub throughput: f64,
}

/// Arithmetic mean; 0 for an empty slice.
pub fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64
}

/// The collapse guards that fire for one step (`stats` with its
/// `entropy_ratio` and `equal_reward_steps` filled in), as warnings naming the
/// config key that sets each threshold.
pub fn collapse_warnings(
    stats: &StepStats,
    entropy_ratio_limit: f64,
    grad_norm_limit: f64,
    equal_reward_limit: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    if stats.entropy_ratio >= entropy_ratio_limit {
        out.push(format!(
            "token entropy is {:.3} of ln(vocab): the policy is close to uniform \
             (collapse_entropy_ratio = {entropy_ratio_limit})",
            stats.entropy_ratio
        ));
    }
    if stats.grad_norm.is_finite() && stats.grad_norm > grad_norm_limit {
        out.push(format!(
            "gradient norm {:.3e} exceeds collapse_grad_norm = {grad_norm_limit:e}",
            stats.grad_norm
        ));
    }
    if equal_reward_limit > 0 && stats.equal_reward_steps >= equal_reward_limit {
        out.push(format!(
            "every reward has been {} for {} steps in a row: no advantage, nothing learned \
             (collapse_equal_reward_steps = {equal_reward_limit})",
            stats.score_mean, stats.equal_reward_steps
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_use_verls_keys_and_leave_out_what_was_not_measured() {
        let initial = StepRecord {
            step: 0,
            val: BTreeMap::from([("val/arith/acc".to_string(), 0.25)]),
            ..StepRecord::default()
        };
        assert_eq!(
            serde_json::to_string(&initial).unwrap(),
            r#"{"step":0,"val/arith/acc":0.25}"#
        );
        let line = StepRecord {
            step: 3,
            train: Some(StepStats {
                score_mean: 0.5,
                kl: None,
                bayes_value_mean: Some(0.75),
                ..StepStats::default()
            }),
            ..StepRecord::default()
        };
        let v = serde_json::to_value(&line).unwrap();
        assert_eq!(v["step"], 3);
        assert_eq!(v["critic/score/mean"], 0.5);
        assert_eq!(v["barl/bayes_value/mean"], 0.75);
        assert!(v.get("actor/kl").is_none());
        assert!(v.get("timing_s/eval").is_none());
        assert_eq!(v.as_object().unwrap().len(), 24);
    }

    #[test]
    fn the_shared_keys_are_the_ones_written() {
        let line = StepRecord {
            step: 1,
            train: Some(StepStats {
                bayes_value_mean: Some(0.5),
                num_hypotheses_mean: Some(2.0),
                ..StepStats::default()
            }),
            val: BTreeMap::from([(keys::val_acc("gsm8k"), 0.5)]),
            ..StepRecord::default()
        };
        let v = serde_json::to_value(&line).unwrap();
        for k in [
            keys::SCORE_MEAN,
            keys::RESPONSE_LENGTH_MEAN,
            keys::RESPONSE_LENGTH_CLIP_RATIO,
            keys::ENTROPY,
            keys::GRAD_NORM,
            keys::PG_CLIPFRAC,
            keys::BAYES_VALUE_MEAN,
            keys::NUM_HYPOTHESES_MEAN,
            keys::TIME_GEN,
            keys::TIME_PROBE,
            keys::TIME_UPDATE,
            keys::TIME_STEP,
            keys::THROUGHPUT,
        ] {
            assert!(v.get(k).is_some(), "{k} is not written");
        }
        assert_eq!(v["val/gsm8k/acc"], 0.5);
        assert_eq!(keys::val_set("val/gsm8k/acc"), Some("gsm8k"));
        assert_eq!(keys::val_set("val//acc"), None);
        assert_eq!(keys::val_set("critic/score/mean"), None);
    }

    #[test]
    fn collapse_guards_fire_at_their_thresholds() {
        let healthy = StepStats {
            entropy_ratio: 0.3,
            grad_norm: 2.0,
            equal_reward_steps: 3,
            ..StepStats::default()
        };
        assert!(collapse_warnings(&healthy, 0.9, 1e4, 20).is_empty());
        // lr = 1e6 on a real model: entropy 10.798 = ln(49152), the uniform policy.
        let uniform = StepStats {
            entropy_ratio: 10.798 / (49152f64).ln(),
            ..healthy.clone()
        };
        let w = collapse_warnings(&uniform, 0.9, 1e4, 20);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("collapse_entropy_ratio"), "{w:?}");
        let exploding = StepStats {
            grad_norm: 3e5,
            equal_reward_steps: 20,
            ..healthy.clone()
        };
        let w = collapse_warnings(&exploding, 0.9, 1e4, 20);
        assert_eq!(w.len(), 2);
        assert!(
            w[0].contains("collapse_grad_norm") && w[1].contains("20 steps"),
            "{w:?}"
        );
        // 0 switches the equal-reward guard off; a NaN norm is the skip rule's job.
        let nan = StepStats {
            grad_norm: f64::NAN,
            ..exploding
        };
        assert!(collapse_warnings(&nan, 0.9, 1e4, 0).is_empty());
    }

    #[test]
    fn the_mean_of_nothing_is_zero() {
        assert_eq!(mean(&[]), 0.0);
        assert_eq!(mean(&[1.0, 2.0, 6.0]), 3.0);
    }
}
