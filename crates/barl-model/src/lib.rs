//! Trainable causal transformers for barl.
//!
//! For now: [`tiny_gpt::TinyGpt`], the small GPT trained from scratch in the
//! synthetic experiment. Hugging Face Llama and Qwen2 follow, one file per
//! architecture, sharing the same conventions: the training path uses only ops
//! that have a backward in candle, and the KV cache is an explicit value.

pub mod config;
pub mod tiny_gpt;

// Loading and text: GGUF, Hugging Face folders, tokenizer, chat templates.
pub mod chat;
pub mod gguf;
pub mod hf;
pub mod tokenizer;

// Llama / Qwen2 models and what runs them.
pub mod layers;
pub mod llama;
pub mod qwen2;
pub mod sample;
pub mod score;

pub use config::{Arch, Llama3RopeScaling, ModelConfig};

pub use tiny_gpt::{log_softmax_last, softmax_last, KvCache, TinyGpt, TinyGptConfig};

/// What can go wrong building or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// An invalid model configuration or input shape.
    #[error("model configuration: {0}")]
    Config(String),
    /// An error from the tensor library.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
