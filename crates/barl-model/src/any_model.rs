//! [`AnyModel`]: the architecture a config names (Llama or Qwen2), what the
//! loaders' callers build and the engine runs.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::layers::{CausalLm, Wraps};
use crate::llama::Llama;
use crate::qwen2::Qwen2;
use crate::{Arch, ModelConfig, ModelError};

/// Either architecture, chosen by the config's `arch` (what loaders return).
pub enum AnyModel {
    Llama(Llama),
    Qwen2(Qwen2),
}

impl AnyModel {
    /// Builds the architecture named by `cfg.arch` from Hugging Face-named tensors.
    pub fn from_weights(
        cfg: &ModelConfig,
        weights: &HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        Ok(match cfg.arch {
            Arch::Llama => AnyModel::Llama(Llama::from_weights(cfg, weights, device)?),
            Arch::Qwen2 => AnyModel::Qwen2(Qwen2::from_weights(cfg, weights, device)?),
        })
    }
}

impl AnyModel {
    /// The Llama decoder both architectures run on (Qwen2's adds only biases).
    pub fn decoder_mut(&mut self) -> &mut Llama {
        match self {
            AnyModel::Llama(m) => m,
            AnyModel::Qwen2(m) => m.decoder_mut(),
        }
    }

    /// The model with its decoder replaced by `f(decoder)`, e.g.
    /// `|d| d.with_adapter(..)` (see [`Llama::with_adapter`]).
    pub fn map_decoder(
        self,
        f: impl FnOnce(Llama) -> Result<Llama, ModelError>,
    ) -> Result<Self, ModelError> {
        Ok(match self {
            AnyModel::Llama(m) => AnyModel::Llama(f(m)?),
            AnyModel::Qwen2(m) => AnyModel::Qwen2(m.map_decoder(f)?),
        })
    }
}

impl Wraps for AnyModel {
    fn inner(&self) -> &dyn CausalLm {
        match self {
            AnyModel::Llama(m) => m,
            AnyModel::Qwen2(m) => m,
        }
    }
}
