//! The `CausalLm` trait the sampler, scorers and trainers run on.

use super::kv_cache::KvCache;
use super::ops::Mode;
use crate::lora::LoraConfig;
use crate::{ModelConfig, ModelError};
use candle_core::{Device, Tensor, Var};
use std::collections::HashMap;

/// A causal language model the sampler and scorers can run.
pub trait CausalLm {
    /// The hyper-parameters.
    fn config(&self) -> &ModelConfig;

    /// The device the weights live on.
    fn device(&self) -> &Device;

    /// Final-normed hidden states `(B, T, hidden)` for `tokens` `(B, T)` (u32)
    /// that follow the columns held in `cache`, which is extended in place.
    /// Without a cache the batch must be right-padded (or unpadded). A cache
    /// may only be used with [`Mode::Infer`].
    fn hidden(
        &self,
        tokens: &Tensor,
        cache: Option<&mut KvCache>,
        mode: Mode,
    ) -> Result<Tensor, ModelError>;

    /// Output logits `(..., vocab)` for hidden states `(..., hidden)`.
    fn logits(&self, hidden: &Tensor, mode: Mode) -> Result<Tensor, ModelError>;

    /// Trainable variables under their Hugging Face names (an adapter's:
    /// PEFT's names), in a fixed order.
    fn named_vars(&self) -> &[(String, Var)];

    /// With a LoRA adapter: the model without it, on the same frozen weights
    /// (the KL reference; what the adapter merges into).
    fn base(&self) -> Option<&dyn CausalLm> {
        None
    }

    /// The settings of the model's LoRA adapter, if it has one.
    fn lora(&self) -> Option<&LoraConfig> {
        None
    }

    /// Sets the count of adapter-dropout masks drawn so far (each is a
    /// function of the seed and its number), so a resumed run draws the
    /// masks an uninterrupted one would.
    fn seek_dropout(&self, _calls: u64) {}

    /// Logits `(B, T, vocab)` at every position.
    fn forward(
        &self,
        tokens: &Tensor,
        cache: Option<&mut KvCache>,
        mode: Mode,
    ) -> Result<Tensor, ModelError> {
        let h = self.hidden(tokens, cache, mode)?;
        self.logits(&h, mode)
    }

    /// The trainable variables (for an optimiser), in [`CausalLm::named_vars`] order.
    fn vars(&self) -> Vec<Var> {
        self.named_vars().iter().map(|(_, v)| v.clone()).collect()
    }

    /// A snapshot of the trainable weights under their names (for saving): a
    /// whole model's, or an adapter's. A tied output head has no
    /// `lm_head.weight` entry.
    fn to_weights(&self) -> Result<HashMap<String, Tensor>, ModelError> {
        self.named_vars()
            .iter()
            .map(|(n, v)| Ok((n.clone(), v.as_tensor().detach().copy()?)))
            .collect()
    }

    /// The whole model's weights under Hugging Face names, an adapter merged
    /// in (`W + s B A`): what a full-weight server sync sends. The tensors
    /// share the variables' storage (no snapshot copy): write them out
    /// before the next update.
    fn merged_weights(&self) -> Result<HashMap<String, Tensor>, ModelError> {
        let views = |vars: &[(String, Var)]| -> HashMap<String, Tensor> {
            vars.iter()
                .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
                .collect()
        };
        let own = views(self.named_vars());
        match (self.base(), self.lora()) {
            (Some(base), Some(lora)) => {
                let mut w = views(base.named_vars());
                crate::lora::merge_adapter(self.config(), &mut w, lora, &own)?;
                Ok(w)
            }
            _ => Ok(own),
        }
    }
}

/// A model that runs as another one: a wrapper ([`crate::Qwen2`] around the
/// Llama decoder) or a choice of architectures ([`crate::AnyModel`]). Every
/// [`CausalLm`] method goes to [`Wraps::inner`].
pub trait Wraps {
    /// The model that does the work.
    fn inner(&self) -> &dyn CausalLm;
}

impl<W: Wraps> CausalLm for W {
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

    fn base(&self) -> Option<&dyn CausalLm> {
        self.inner().base()
    }

    fn lora(&self) -> Option<&LoraConfig> {
        self.inner().lora()
    }

    fn seek_dropout(&self, calls: u64) {
        self.inner().seek_dropout(calls)
    }
}
