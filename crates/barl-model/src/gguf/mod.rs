//! A GGUF reader (format versions 2 and 3) and the loader that turns a llama.cpp
//! model file into Hugging Face–layout f32 weights.
//!
//! File layout (all integers little-endian):
//!
//! ```text
//! "GGUF"  u32 version  u64 n_tensors  u64 n_kv
//! n_kv      x  { string key, u32 value_type, value }
//! n_tensors x  { string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset }
//! padding to `general.alignment` (default 32)
//! tensor data; each tensor at data_start + offset
//! ```
//!
//! A string is `u64 len` then `len` UTF-8 bytes; an array is `u32 elem_type, u64 count`,
//! then the elements. `dims[0]` is the fastest-varying dimension, so a Hugging Face
//! `[out, in]` matrix is stored with `dims = [in, out]`.
//!
//! Every read is bounds-checked against the file length before anything is allocated,
//! so a truncated or corrupted file gives a [`ModelError::File`] naming the file and
//! the key or tensor, never a panic or a huge allocation.

mod dequant;
mod names;
mod reader;
mod types;

pub use dequant::{dequantize, DequantError};
pub use names::{hf_tensor_name, unpermute_qk, ShapeError};
pub use reader::{FormatError, GgufFile};
pub use types::{
    ggml_type_name, GgmlType, GgufArray, GgufTensorInfo, GgufValue, DEFAULT_ALIGNMENT,
};

use crate::config::{Arch, ModelConfig};
use crate::loaded::{check_weights, LoadedModel};
use crate::tokenizer::Tokenizer;
use crate::ModelError;
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// The model configuration a GGUF file's metadata describes.
pub fn config_from_gguf(g: &GgufFile) -> Result<ModelConfig, ModelError> {
    let arch_name = g
        .opt_str("general.architecture")?
        .ok_or_else(|| g.err("missing metadata key 'general.architecture'".to_string()))?;
    let arch = match arch_name {
        "llama" => Arch::Llama,
        "qwen2" => Arch::Qwen2,
        other => {
            return Err(g.err(format!(
                "unknown architecture '{other}' (metadata key 'general.architecture'; supported: llama, qwen2)"
            )))
        }
    };
    let key = |k: &str| format!("{arch_name}.{k}");
    let hidden_size = g.require_usize(&key("embedding_length"))?;
    let num_attention_heads = g.require_usize(&key("attention.head_count"))?;
    let num_key_value_heads = g
        .opt_usize(&key("attention.head_count_kv"))?
        .unwrap_or(num_attention_heads);
    let head_dim = match g.opt_usize(&key("attention.key_length"))? {
        Some(d) => d,
        None if num_attention_heads > 0 => hidden_size / num_attention_heads,
        None => 0,
    };
    if let Some(rot) = g.opt_usize(&key("rope.dimension_count"))? {
        if rot != head_dim {
            return Err(g.err(format!(
                "metadata key '{}' is {rot} but the head dimension is {head_dim}; partial rotary is not supported",
                key("rope.dimension_count")
            )));
        }
    }
    if let Some(t) = g.opt_str(&key("rope.scaling.type"))? {
        if t != "none" {
            return Err(g.err(format!(
                "metadata key '{}' is '{t}'; rope scaling from GGUF is not supported",
                key("rope.scaling.type")
            )));
        }
    }
    let vocab_size = match g.opt_usize(&key("vocab_size"))? {
        Some(v) => v,
        None => match g.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()) {
            Some(a) => a.len(),
            None => {
                return Err(g.err(format!(
                    "neither '{}' nor 'tokenizer.ggml.tokens' gives the vocabulary size",
                    key("vocab_size")
                )))
            }
        },
    };
    let mut eos_token_ids = Vec::new();
    for k in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"] {
        if let Some(id) = g.opt_usize(k)? {
            let id =
                u32::try_from(id).map_err(|_| g.err(format!("metadata key '{k}' out of range")))?;
            if !eos_token_ids.contains(&id) {
                eos_token_ids.push(id);
            }
        }
    }
    let bos_token_id = match g.opt_usize("tokenizer.ggml.bos_token_id")? {
        Some(id) => Some(u32::try_from(id).map_err(|_| {
            g.err("metadata key 'tokenizer.ggml.bos_token_id' out of range".to_string())
        })?),
        None => None,
    };
    let cfg = ModelConfig {
        arch,
        vocab_size,
        hidden_size,
        intermediate_size: g.require_usize(&key("feed_forward_length"))?,
        num_hidden_layers: g.require_usize(&key("block_count"))?,
        num_attention_heads,
        num_key_value_heads,
        head_dim,
        rms_norm_eps: g
            .opt_f64(&key("attention.layer_norm_rms_epsilon"))?
            .ok_or_else(|| {
                g.err(format!(
                    "missing metadata key '{}'",
                    key("attention.layer_norm_rms_epsilon")
                ))
            })?,
        rope_theta: g.opt_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0),
        rope_scaling: None,
        max_position_embeddings: g.require_usize(&key("context_length"))?,
        tie_word_embeddings: g.tensor_info("output.weight").is_none(),
        attention_bias: arch == Arch::Qwen2 || g.tensor_info("blk.0.attn_q.bias").is_some(),
        bos_token_id,
        eos_token_ids,
    };
    cfg.validate()
        .map_err(|m| g.err(format!("model configuration from metadata: {m}")))?;
    Ok(cfg)
}

/// Loads a Llama or Qwen2 GGUF file: configuration, f32 weights under Hugging Face
/// names and in Hugging Face layout, tokenizer and chat template.
pub fn load_gguf(path: &Path, device: &Device) -> Result<LoadedModel, ModelError> {
    let g = GgufFile::open(path)?;
    let config = config_from_gguf(&g)?;
    let mut weights = HashMap::with_capacity(g.tensors.len());
    for info in &g.tensors {
        let name = match hf_tensor_name(&info.name) {
            Some(n) => n,
            None if info.name == "rope_freqs.weight" => return Err(g.err(
                "tensor 'rope_freqs.weight' (Llama 3 rope scaling) is not supported from GGUF; \
                     load the Hugging Face folder instead"
                    .to_string(),
            )),
            None => return Err(g.err(format!("unknown tensor '{}'", info.name))),
        };
        let mut data = g.dequantize(info)?;
        let shape = info.shape();
        // llama.cpp permutes q/k rows only for Llama (Qwen2 uses the split-half rotary as is).
        let n_head = match (config.arch, info.name.rsplit_once('.').map(|(p, _)| p)) {
            (Arch::Llama, Some(p)) if p.ends_with(".attn_q") => Some(config.num_attention_heads),
            (Arch::Llama, Some(p)) if p.ends_with(".attn_k") => Some(config.num_key_value_heads),
            _ => None,
        };
        if let Some(n_head) = n_head {
            let rows = shape.first().copied().unwrap_or(1);
            let cols = shape.get(1).copied().unwrap_or(1);
            data = unpermute_qk(&data, rows, cols, n_head)
                .map_err(|m| g.err(format!("tensor '{}': {m}", info.name)))?;
        }
        let t = Tensor::from_vec(data, shape, device)?;
        weights.insert(name, t);
    }
    check_weights(&config, &weights).map_err(|m| g.err(m.to_string()))?;
    let tokenizer = Tokenizer::from_gguf(&g)?;
    let chat_template = g.opt_str("tokenizer.chat_template")?.map(str::to_string);
    Ok(LoadedModel {
        config,
        weights,
        tokenizer,
        chat_template,
    })
}

impl Tokenizer {
    /// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.*` keys).
    pub fn from_gguf(g: &GgufFile) -> Result<Self, ModelError> {
        Tokenizer::from_gguf_vocab(&g.vocab()?)
    }
}
