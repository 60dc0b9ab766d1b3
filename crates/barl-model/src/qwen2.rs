//! The Qwen2 / Qwen2.5 architecture (`Qwen2ForCausalLM`).
//!
//! Qwen2 is the Llama decoder (see [`crate::llama`]) with one difference that
//! matters here: the q, k and v projections carry a bias
//! (`model.layers.{i}.self_attn.{q,k,v}_proj.bias`). Qwen2's sliding-window
//! attention is off in the released configs (`use_sliding_window: false`) and
//! is not implemented. The output head is tied in the small models
//! (Qwen2.5-0.5B/1.5B) and untied in the large ones; both work.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::layers::{CausalLm, Wraps};
use crate::llama::Llama;
use crate::{Arch, ModelConfig, ModelError};

/// A Qwen2-family causal language model.
pub struct Qwen2 {
    inner: Llama,
}

impl Qwen2 {
    /// Builds the model from Hugging Face-named tensors; the q/k/v biases are
    /// required. The config's `arch` must be [`Arch::Qwen2`].
    pub fn from_weights(
        cfg: &ModelConfig,
        weights: &HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        cfg.expect_arch(Arch::Qwen2, "Qwen2::from_weights")?;
        // `expected_tensors` adds the q/k/v biases for the Qwen2 arch.
        Ok(Self {
            inner: Llama::build(cfg, weights, device)?,
        })
    }
}

impl Qwen2 {
    /// The Llama decoder it runs on.
    pub fn decoder_mut(&mut self) -> &mut Llama {
        &mut self.inner
    }

    /// The model with its decoder replaced by `f(decoder)` (see
    /// [`crate::AnyModel::map_decoder`]).
    pub fn map_decoder(
        self,
        f: impl FnOnce(Llama) -> Result<Llama, ModelError>,
    ) -> Result<Self, ModelError> {
        Ok(Self {
            inner: f(self.inner)?,
        })
    }
}

impl Wraps for Qwen2 {
    fn inner(&self) -> &dyn CausalLm {
        &self.inner
    }
}
