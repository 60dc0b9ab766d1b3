//! [`AnyModel`]: the architecture a config names (Llama or Qwen2), what the
//! loaders' callers build and the engine runs.

use std::collections::HashMap;

use candle_core::{Device, Tensor, Var};

use crate::layers::{CausalLm, KvCache, Mode};
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

    fn inner(&self) -> &dyn CausalLm {
        match self {
            AnyModel::Llama(m) => m,
            AnyModel::Qwen2(m) => m,
        }
    }
}

impl CausalLm for AnyModel {
    fn config(&self) -> &ModelConfig {
        self.inner().config()
    }

    fn device(&self) -> &Device {
        self.inner().device()
    }

    fn hidden(
        &self,
        tokens: &Tensor,
        cache: Option<&mut KvCache>,
        mode: Mode,
    ) -> Result<Tensor, ModelError> {
        self.inner().hidden(tokens, cache, mode)
    }

    fn logits(&self, hidden: &Tensor, mode: Mode) -> Result<Tensor, ModelError> {
        self.inner().logits(hidden, mode)
    }

    fn named_vars(&self) -> &[(String, Var)] {
        self.inner().named_vars()
    }
}
