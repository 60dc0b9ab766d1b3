//! The hyper-parameters of a Llama or Qwen2 model, in Hugging Face's names.
//!
//! Both loaders (a Hugging Face folder's `config.json`, a GGUF file's metadata)
//! produce a [`ModelConfig`]; the model files only ever read this struct.

use serde::{Deserialize, Serialize};

/// Which architecture file builds the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Llama 2/3, SmolLM2, TinyLlama (`LlamaForCausalLM`).
    Llama,
    /// Qwen2 / Qwen2.5 (`Qwen2ForCausalLM`): bias on q/k/v.
    Qwen2,
}

impl Arch {
    /// The Hugging Face `architectures[0]` / `model_type` pair.
    pub fn hf_names(self) -> (&'static str, &'static str) {
        match self {
            Arch::Llama => ("LlamaForCausalLM", "llama"),
            Arch::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
        }
    }
}

/// Llama 3 rotary scaling (`rope_scaling` with `rope_type = "llama3"`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Llama3RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

/// Everything a Llama or Qwen2 forward pass needs to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    /// Per-head width; `hidden_size / num_attention_heads` unless the config says otherwise.
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3RopeScaling>,
    pub max_position_embeddings: usize,
    /// The output head shares the embedding matrix (no `lm_head.weight` tensor).
    pub tie_word_embeddings: bool,
    /// Bias on the q/k/v projections (true for Qwen2).
    pub attention_bias: bool,
    pub bos_token_id: Option<u32>,
    /// Generation stops on any of these.
    pub eos_token_ids: Vec<u32>,
}

/// A model configuration the model code cannot run; the message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidConfig {
    #[error("{0} must be positive")]
    NotPositive(&'static str),
    #[error(
        "num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kv_heads})"
    )]
    HeadGroups { heads: usize, kv_heads: usize },
    #[error("head_dim ({0}) must be even for rotary embeddings")]
    OddHeadDim(usize),
    #[error("rope_theta must be positive")]
    RopeTheta,
}

impl ModelConfig {
    /// An error naming `who` unless the config's `arch` is `want` (a model
    /// built from another architecture's config would load the wrong tensors).
    pub fn expect_arch(&self, want: Arch, who: &str) -> Result<(), crate::ModelError> {
        if self.arch == want {
            return Ok(());
        }
        Err(crate::ModelError::Config(format!(
            "{who} given a {:?} config",
            self.arch
        )))
    }

    /// Checks the invariants the model code relies on.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let pos = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
        ];
        if let Some((name, _)) = pos.iter().find(|(_, v)| *v == 0) {
            return Err(InvalidConfig::NotPositive(name));
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return Err(InvalidConfig::HeadGroups {
                heads: self.num_attention_heads,
                kv_heads: self.num_key_value_heads,
            });
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(InvalidConfig::OddHeadDim(self.head_dim));
        }
        // Written so that NaN is rejected too.
        if self.rope_theta.is_nan() || self.rope_theta <= 0.0 {
            return Err(InvalidConfig::RopeTheta);
        }
        Ok(())
    }
}
