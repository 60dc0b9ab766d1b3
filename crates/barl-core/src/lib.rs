//! Core algorithms of barl, a Rust implementation of Bayes-Adaptive RL (BARL,
//! arXiv 2505.20561) for LLM reasoning.
//!
//! Everything here is a pure function: plain slices in, plain values out, and
//! candle tensors only where a loss must be differentiable. The crate knows
//! nothing of models, tokenizers, files or text, so each formula can be tested
//! against hand-computed numbers in isolation.
//!
//! The pieces, in the order a training step uses them:
//!
//! - [`barl`]: the Bayes-adaptive value `V(k)` of each step of a completion
//!   ([`bayesian_values`], its math form [`math_bayesian_values`] and the
//!   truth-only [`progress_values`]).
//! - [`advantage`]: token steps, per-token returns `q_t = R + V(k)` and batch
//!   whitening for BARL/Progress; [`AdvEstimator`] picks the method.
//! - [`grpo`]: the group-normalised advantages of the GRPO baseline.
//! - [`ppo`]: PPO-clip, loss aggregation and KL penalties on candle tensors.
//! - [`passk`]: the unbiased pass@k estimator for evaluation.
//!
//! Bad shapes and arguments are reported as [`CoreError`] (or as candle errors
//! for the tensor functions); nothing panics on bad input, and zero denominators
//! have documented, NaN-free results.

pub mod advantage;
pub mod barl;
pub mod error;
pub mod grpo;
pub mod names;
pub mod passk;
pub mod ppo;

pub use advantage::{
    broadcast_to_tokens, chunk_step_of_tokens, normalize_over_batch, num_chunk_steps,
    token_advantages, token_returns, AdvEstimator, AdvantageBatch, AdvantageOptions, Whiten,
};
pub use barl::{bayesian_values, math_bayesian_values, progress_values};
pub use error::{CoreError, Result};
pub use grpo::group_normalized_advantages;
pub use passk::{pass_at_k, pass_at_k_curve};
// Serde for the impls `named_enum!` writes in other crates.
pub use ppo::{aggregate_loss, kl_penalty, ppo_clip_loss, KlEstimator, LossAggMode, PpoLoss};
#[doc(hidden)]
pub use serde as __serde;

/// Assertions the unit tests share.
#[cfg(test)]
pub(crate) mod test_util {
    /// Element-wise `|got - want| <= tol`, same length.
    pub fn assert_close(got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= tol, "got {got:?}, want {want:?}");
        }
    }
}
