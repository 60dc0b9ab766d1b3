//! `rollout.backend = "vllm"`: a step's rollouts sampled by vLLM servers,
//! with barl's own log-probs for the PPO ratio, and the weight sync after
//! each update.

use std::path::{Path, PathBuf};
use std::time::Duration;

use barl_model::CausalLm;

use super::config::{OldLogprobs, RolloutSync, TrainConfig};
use super::engine::Engine;
use super::step::{grade_completions, reference_logprobs, LogprobDiff, PromptItem, Rollouts};
use super::vllm::{VllmSampling, VllmServers};
use crate::TrainError;

/// The servers and the folder they reload the policy from.
pub struct RolloutServers {
    pub vllm: VllmServers,
    /// Absolute: the servers do not share barl's working directory.
    pub sync_dir: PathBuf,
    pub sync: RolloutSync,
    /// Adapters sent so far (each gets a fresh name).
    syncs: std::sync::atomic::AtomicU64,
}

impl RolloutServers {
    /// Connects to `cfg.rollout.urls`; the weights go to `rollout.sync_dir`,
    /// or `run_dir/rollout-weights` when it is empty.
    pub fn connect(cfg: &TrainConfig, run_dir: &Path) -> Result<Self, TrainError> {
        let ro = &cfg.rollout;
        let vllm =
            VllmServers::connect(&ro.urls, Duration::from_secs_f64(ro.timeout_s), ro.retries)?;
        let dir = if ro.sync_dir.as_os_str().is_empty() {
            run_dir.join("rollout-weights")
        } else {
            ro.sync_dir.clone()
        };
        let sync_dir = std::path::absolute(&dir).map_err(|source| TrainError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self {
            vllm,
            sync_dir,
            sync: ro.sync,
            syncs: Default::default(),
        })
    }

    /// Writes the policy to `sync_dir` and has every server take it: the
    /// weights as a Hugging Face folder, reloaded (`rollout.sync =
    /// "reload"`; a LoRA policy merged first), or the adapter alone, loaded
    /// under a fresh name (`"lora"`).
    pub fn sync(&self, engine: &Engine) -> Result<(), TrainError> {
        let model = &engine.model;
        if self.sync == RolloutSync::Lora {
            let lora = model.lora().ok_or_else(|| {
                TrainError::Setting("rollout.sync = \"lora\" needs lora.rank >= 1".into())
            })?;
            let n = self
                .syncs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = self.sync_dir.join("adapter");
            barl_model::save_adapter(
                &dir,
                lora,
                &model.to_weights()?,
                &engine.path.to_string_lossy(),
            )?;
            return Ok(self.vllm.load_lora(&format!("barl-{n}"), &dir)?);
        }
        // Nothing updates the variables while they are written, so the
        // merged view needs no snapshot copy.
        let weights = model.merged_weights()?;
        barl_model::save_hf_folder(
            &self.sync_dir,
            engine.model.config(),
            &weights,
            &engine.tokenizer,
            engine.chat_template.as_deref(),
        )?;
        Ok(self.vllm.reload_weights(&self.sync_dir)?)
    }

    /// [`super::step::rollout`] through the servers: prompt `i` of the step
    /// draws with seed `seed + first_stream + i`. With `rollout.old_logprobs
    /// = "recompute"`, `old_logp` is barl's own forward of the sampled tokens
    /// (so the PPO ratio is exact) and the servers' log-probs are only
    /// compared with it; with `"server-tis"` they stay in `old_logp` for the
    /// update's importance weights, and the gap is measured there (`None` here).
    pub fn rollout(
        &self,
        engine: &Engine,
        prompts: &[PromptItem],
        cfg: &TrainConfig,
        first_stream: u64,
        grade: &dyn Fn(&str, &str) -> bool,
    ) -> Result<(Rollouts, Option<LogprobDiff>), TrainError> {
        let ids: Vec<&[u32]> = prompts.iter().map(|p| p.ids.as_slice()).collect();
        let sampling = VllmSampling {
            n: cfg.n_samples_per_prompt,
            max_tokens: cfg.max_response_len,
            temperature: cfg.temperature,
            top_p: cfg.top_p,
            stop_token_ids: engine.stop_tokens(),
            seed: cfg.seed.wrapping_add(first_stream),
        };
        let completions = self
            .vllm
            .sample(&ids, &sampling)?
            .into_iter()
            .flatten()
            .collect();
        let mut r = grade_completions(&engine.tokenizer, prompts, completions, cfg, grade)?;
        if cfg.rollout.old_logprobs == OldLogprobs::ServerTis {
            return Ok((r, None));
        }
        let mine = reference_logprobs(&engine.model, &r, cfg.micro_batch_size)?;
        let diff = logprob_diff(&r.old_logp, &mine);
        r.old_logp = mine;
        Ok((r, Some(diff)))
    }
}

/// Mean and max of `|a - b|` over all tokens (0 for none).
pub fn logprob_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> LogprobDiff {
    let d: Vec<f64> = a
        .iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs() as f64))
        .collect();
    LogprobDiff {
        mean: d.iter().sum::<f64>() / d.len().max(1) as f64,
        max: d.iter().copied().fold(0.0, f64::max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprob_diff_by_hand() {
        let a = vec![vec![-1.0, -2.0], vec![-0.5]];
        let b = vec![vec![-1.5, -2.0], vec![-0.25]];
        // |0.5| + 0 + |0.25| over 3 tokens.
        assert_eq!(
            logprob_diff(&a, &b),
            LogprobDiff {
                mean: 0.25,
                max: 0.5
            }
        );
        assert_eq!(
            logprob_diff(&[], &[]),
            LogprobDiff {
                mean: 0.0,
                max: 0.0
            }
        );
    }
}
