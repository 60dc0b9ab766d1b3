//! Trainable causal transformers for barl.
//!
//! - Hugging Face Llama ([`llama`]) and Qwen2 ([`qwen2`]), one file per
//!   architecture over shared blocks ([`layers`]); [`AnyModel`] ([`any_model`]) picks one from the
//!   config. [`Mode::Train`] uses only ops with a backward (on the CPU, fused
//!   kernels whose backward is checked against the written-out maths);
//!   [`Mode::Infer`] may use faster kernels; both agree to 1e-4.
//! - Loading: GGUF ([`gguf`], dequantized to f32, q/k un-permuted) and Hugging
//!   Face folders ([`hf`], also saving; [`convert`] writes any loaded model as
//!   one); the tokenizer ([`tokenizer`]) and chat
//!   templates ([`chat`]).
//! - LoRA adapters in PEFT's layout ([`lora`]): trained on frozen base
//!   weights, saved, loaded and merged.
//! - Running: batched sampling with a KV cache ([`sample`]), per-token log-probs
//!   with or without gradients and prefix scoring for BARL's probes ([`score`]).
//! - [`tiny_gpt::TinyGpt`], the small GPT of the synthetic experiment.

pub mod config;
pub mod tiny_gpt;

// Loading and text: GGUF, Hugging Face folders, tokenizer, chat templates.
pub mod any_model;
pub mod chat;
pub mod convert;
pub mod gguf;
pub mod hf;
pub mod hf_config;
pub mod loaded;
pub mod tokenizer;

// Llama / Qwen2 models and what runs them.
mod decode;
mod kernels;
pub mod layers;
pub mod llama;
pub mod lora;
pub mod qwen2;
pub mod sample;
pub mod score;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use chat::{render_chat, ChatMessage};
pub use config::{Arch, InvalidConfig, Llama3RopeScaling, ModelConfig};
pub use convert::{convert, load_model, Converted};
pub use gguf::load_gguf;
pub use hf::{load_hf_folder, save_hf_folder};
pub use loaded::{check_weights, LoadedModel, WeightMismatch};
pub use tokenizer::Tokenizer;

pub use any_model::AnyModel;
pub use layers::{expected_tensors, random_weights, tune_allocator, CausalLm, Mode};
pub use llama::Llama;
pub use lora::{load_adapter, save_adapter, Adapter, LoraConfig};
pub use qwen2::Qwen2;
pub use sample::{sample, Completion, FinishReason, LogProbKind, SampleConfig};
pub use score::{score, score_no_grad, PrefixScorer, TokenScores};
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
    /// A model, tokenizer or config file that cannot be read; names the file and the key or tensor.
    #[error("{}: {msg}", file.display())]
    File {
        file: std::path::PathBuf,
        msg: String,
    },
    /// Tokenizer construction, encoding or decoding failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A chat template failed to parse or render.
    #[error("chat template: {0}")]
    Template(String),
}
