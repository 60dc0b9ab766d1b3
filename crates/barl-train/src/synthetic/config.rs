//! The settings of a synthetic run: the methods, the policy's shape, and
//! every training and evaluation option, validated with the option named.

use barl_core::LossAggMode;
use barl_model::TinyGptConfig;
use serde::{Deserialize, Serialize};

use super::task::{Prior, TaskConfig, TaskError};
use super::values::Credence;
use crate::optim::AdamWConfig;
use crate::TrainError;

barl_core::named_enum! {
    /// A method of the comparison.
    #[derive(Hash, PartialOrd, Ord)]
    pub enum Method ("method") {
        /// Markovian RL: outcome reward, group-normalised.
        Grpo = "grpo",
        /// BARL over all `V^L` strings.
        Barl = "barl",
        /// BARL over the `V` repeated strings.
        BarlPrior = "barl-prior",
    }
}

impl Method {
    /// Hypothesis set, for the BARL methods.
    pub fn prior(self) -> Option<Prior> {
        match self {
            Method::Grpo => None,
            Method::Barl => Some(Prior::None),
            Method::BarlPrior => Some(Prior::Repeated),
        }
    }
}

barl_core::named_enum! {
    /// The baseline BARL's token returns are whitened against.
    #[derive(Default)]
    pub enum BarlBaseline ("BARL baseline") {
        /// Mean and std over all tokens of the rollout batch (the reference).
        #[default]
        Batch = "batch",
        /// Mean and std over the tokens of the rollouts of the same prompt.
        Prompt = "prompt",
    }
}

barl_core::named_enum! {
    /// How a branch's world is drawn from the hypotheses its episode has not tried.
    #[derive(Default)]
    pub enum BranchWorld ("branch world") {
        /// Uniformly: the posterior when the prior is uniform.
        #[default]
        Uniform = "uniform",
        /// In proportion to the policy's credence before the attempt that
        /// succeeded: the posterior under the policy's own belief.
        Belief = "belief",
    }
}

/// Size of the policy network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelShape {
    /// Residual width.
    pub d_model: usize,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Attention heads.
    pub n_heads: usize,
    /// MLP hidden width.
    pub d_ff: usize,
    /// Output head tied to the symbols' input embeddings.
    pub tied_head: bool,
}

/// Everything one synthetic run needs besides method and seed. Missing keys
/// take their defaults when read from a file; unknown keys are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticConfig {
    /// The task.
    pub task: TaskConfig,
    /// The policy network.
    pub model: ModelShape,
    /// RL steps.
    pub steps: usize,
    /// Rollouts sampled per training prompt per step (the GRPO group size).
    pub n_samples_per_prompt: usize,
    /// Sampling temperature for training rollouts.
    pub temperature: f32,
    /// Optimiser.
    pub optim: AdamWConfig,
    /// PPO clip range (symmetric).
    pub clip_ratio: f64,
    /// Passes over each rollout batch.
    pub ppo_epochs: usize,
    /// Optimiser steps per pass (the batch is split into this many parts).
    pub mini_batches: usize,
    /// How token losses are averaged.
    pub loss_agg_mode: LossAggMode,
    /// Strength of BARL's belief update.
    pub beta: f32,
    /// Where BARL's credence `c_i(k)` comes from.
    pub credence: Credence,
    /// Discount per attempt in BARL's `Q_i` (1: a later match counts in full).
    pub q_discount: f32,
    /// Cost per attempt used in BARL's `Q_i` (0: attempts are free).
    pub attempt_cost: f32,
    /// Which token returns BARL's advantages are whitened against.
    pub barl_baseline: BarlBaseline,
    /// BARL only: per training prompt and step, this many successful rollouts
    /// are also continued in another hypothesis' world (see
    /// [`branch_picks`](super::rollout::branch_picks)); 0 trains on the true task's rollouts alone.
    pub branches: usize,
    /// Where a branch's world is drawn from among the untried hypotheses.
    pub branch_world: BranchWorld,
    /// GRPO divides by the group std (false: Dr.GRPO).
    pub grpo_norm_by_std: bool,
    /// Evaluate every this many steps (and at the start and the end).
    pub eval_every: usize,
    /// Sampled evaluation episodes per prompt.
    pub eval_episodes: usize,
}

impl Default for ModelShape {
    fn default() -> Self {
        Self {
            d_model: 64,
            n_layers: 2,
            n_heads: 4,
            d_ff: 128,
            tied_head: true,
        }
    }
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            task: TaskConfig::default(),
            model: ModelShape::default(),
            steps: 300,
            n_samples_per_prompt: 32,
            temperature: 1.0,
            optim: AdamWConfig::default(),
            clip_ratio: 0.2,
            ppo_epochs: 1,
            mini_batches: 1,
            loss_agg_mode: LossAggMode::SeqMeanTokenMean,
            beta: 1.0,
            credence: Credence::Policy,
            q_discount: 1.0,
            attempt_cost: 0.0,
            barl_baseline: BarlBaseline::Batch,
            branches: 0,
            branch_world: BranchWorld::Uniform,
            grpo_norm_by_std: true,
            eval_every: 10,
            eval_episodes: 128,
        }
    }
}

fn bad(option: &'static str, message: impl Into<String>) -> TrainError {
    TrainError::Task(TaskError {
        option,
        message: message.into(),
    })
}

impl SyntheticConfig {
    /// Checks every setting, naming the option at fault.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.task.validate()?;
        let m = &self.model;
        if m.d_model == 0 || m.n_layers == 0 || m.n_heads == 0 || m.d_ff == 0 {
            return Err(bad("d-model", "model sizes must be positive"));
        }
        if !m.d_model.is_multiple_of(m.n_heads) {
            return Err(bad(
                "n-heads",
                format!("{} does not divide d-model {}", m.n_heads, m.d_model),
            ));
        }
        if self.steps == 0 {
            return Err(bad("steps", "must be at least 1"));
        }
        if self.n_samples_per_prompt == 0 {
            return Err(bad("rollouts", "must be at least 1"));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(bad("temperature", "must be a positive number"));
        }
        if !(self.optim.lr > 0.0 && self.optim.lr.is_finite()) {
            return Err(bad("lr", "must be a positive number"));
        }
        if !(0.0..1.0).contains(&self.optim.beta1) || !(0.0..1.0).contains(&self.optim.beta2) {
            return Err(bad("adam-betas", "each must be in [0, 1)"));
        }
        if !(self.clip_ratio > 0.0 && self.clip_ratio.is_finite()) {
            return Err(bad("clip-ratio", "must be a positive number"));
        }
        if self.ppo_epochs == 0 {
            return Err(bad("ppo-epochs", "must be at least 1"));
        }
        if self.mini_batches == 0 {
            return Err(bad("mini-batches", "must be at least 1"));
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return Err(bad("beta", "must be a non-negative number"));
        }
        if !(0.0..=1.0).contains(&self.q_discount) {
            return Err(bad("q-discount", "must be in [0, 1]"));
        }
        if !(self.attempt_cost >= 0.0 && self.attempt_cost.is_finite()) {
            return Err(bad("attempt-cost", "must be a non-negative number"));
        }
        if self.eval_every == 0 {
            return Err(bad("eval-every", "must be at least 1"));
        }
        if self.eval_episodes == 0 {
            return Err(bad("eval-episodes", "must be at least 1"));
        }
        Ok(())
    }

    /// The policy network's shape for this task.
    pub(crate) fn model_config(&self) -> TinyGptConfig {
        TinyGptConfig {
            vocab_size: self.task.vocab_size(),
            n_outputs: self.task.alphabet_size,
            max_len: self.task.seq_len(),
            d_model: self.model.d_model,
            n_layers: self.model.n_layers,
            n_heads: self.model.n_heads,
            d_ff: self.model.d_ff,
            tied_head: self.model.tied_head,
        }
    }
}
