//! Building blocks shared by the Llama and Qwen2 files: RMS norm, linear
//! layers, rotary embeddings (with Llama 3 scaling), grouped-query attention,
//! the KV cache, and the [`CausalLm`] trait the sampler and scorers run on.
//!
//! Every op comes in two forms chosen by [`Mode`]:
//! - [`Mode::Train`] records the autograd graph through the weights (tracked
//!   [`Var`]s) and uses only ops with a backward. candle's fused `rms_norm`,
//!   `rope` and `softmax_last_dim` have none, so on the CPU the training path
//!   uses the crate's own fused kernels, which do (`kernels::grad_ops`: masked
//!   softmax, RMS norm, rotary, SwiGLU, log-softmax, entropy, each with its
//!   closed-form backward, tested against the written-out forms); elsewhere
//!   it uses the written-out forms themselves;
//! - [`Mode::Infer`] runs on detached weights, so no graph is kept alive, and
//!   may use forward-only kernels: candle's `rms_norm`/`rope`/`softmax`, and
//!   `few_rows`, a matmul for the handful of rows of a decode step.
//!
//! Both paths agree to float round-off (tests: 1e-4 on logits).
//!
//! Padding convention: batches without a cache are right-padded (attention is
//! causal, so real positions never see the padding after them); batches run
//! through a [`KvCache`] may be left-padded, and the cache records each row's
//! padding so that masks and rotary positions skip it.

mod attention;
mod causal_lm;
mod kv_cache;
mod memory;
mod ops;
mod rotary;
mod weights;

pub(crate) use attention::{attention, attention_mask, positions, Mask};
pub use causal_lm::{CausalLm, Wraps};
pub use kv_cache::KvCache;
pub(crate) use memory::advise_huge_pages;
pub use memory::tune_allocator;
pub use ops::Mode;
pub(crate) use ops::{entropy, log_softmax, rms_norm, swiglu, Dropout, Linear, LoraPair};
pub(crate) use rotary::apply_rotary;
pub use rotary::Rotary;
pub(crate) use weights::take_vars;
pub use weights::{expected_tensors, random_weights};

#[cfg(test)]
mod tests;
