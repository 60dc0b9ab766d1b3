//! Tiny synthetic models and weights, as GGUF and Hugging Face, shared by the loading tests.

use std::collections::HashMap;

use barl_model::gguf::GgmlType;
use barl_model::hf::expected_tensors;
use barl_model::{Arch, ModelConfig, ModelError};
use candle_core::{Device, Tensor};
use half::{bf16, f16};

use super::*;

/// Byte-level vocabulary: the 256 byte characters (id = byte), then "ĠĠ", "hi",
/// and the control tokens "<|im_start|>", "<|im_end|>".
pub fn tiny_vocab() -> (Vec<String>, Vec<i32>, Vec<&'static str>) {
    let map = barl_model::tokenizer::byte_to_char_map();
    let mut tokens: Vec<String> = map.iter().map(|c| c.to_string()).collect();
    tokens.extend(["ĠĠ", "hi", "<|im_start|>", "<|im_end|>"].map(String::from));
    let mut types = vec![1; tokens.len()];
    types[258] = 3;
    types[259] = 3;
    (tokens, types, vec!["Ġ Ġ", "h i"])
}

/// Applies llama.cpp's converter permutation (`reshape(n_head, 2, hd/2, cols)
/// .swapaxes(1, 2)`) with candle ops, as the second implementation of the layout.
pub fn llama_cpp_permute(w: &Tensor, n_head: usize) -> Tensor {
    let dims = w.dims().to_vec();
    let rows = dims[0];
    let cols: usize = dims[1..].iter().product();
    w.reshape((n_head, 2, rows / n_head / 2, cols))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape(dims)
        .unwrap()
}

pub fn tiny_config(arch: Arch, tied: bool) -> ModelConfig {
    ModelConfig {
        arch,
        vocab_size: 260,
        hidden_size: 8,
        intermediate_size: 12,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        head_dim: 4,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 64,
        tie_word_embeddings: tied,
        attention_bias: arch == Arch::Qwen2,
        bos_token_id: Some(258),
        eos_token_ids: vec![259],
    }
}

/// Random weights in Hugging Face layout for `cfg`.
pub fn random_weights(cfg: &ModelConfig, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = Rng(seed);
    expected_tensors(cfg)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|_| rng.unit()).collect();
            (name, Tensor::from_vec(data, shape, &Device::Cpu).unwrap())
        })
        .collect()
}

pub fn gguf_name(hf: &str) -> String {
    let table = [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];
    if let Some((_, g)) = table.iter().find(|(h, _)| *h == hf) {
        return g.to_string();
    }
    let rest = hf.strip_prefix("model.layers.").unwrap();
    let (layer, rest) = rest.split_once('.').unwrap();
    let parts = [
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
        ("input_layernorm", "attn_norm"),
        ("post_attention_layernorm", "ffn_norm"),
    ];
    let (p, suffix) = rest.rsplit_once('.').unwrap();
    let g = parts.iter().find(|(h, _)| *h == p).unwrap().1;
    format!("blk.{layer}.{g}.{suffix}")
}

/// A GGUF file for `cfg` with f32 tensors, written the way llama.cpp's converter
/// writes them (q/k permuted for Llama).
pub fn tiny_gguf(cfg: &ModelConfig, weights: &HashMap<String, Tensor>) -> GgufBuilder {
    let arch = match cfg.arch {
        Arch::Llama => "llama",
        Arch::Qwen2 => "qwen2",
    };
    let (tokens, types, merges) = tiny_vocab();
    let toks: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let mut b = GgufBuilder::new()
        .kv("general.architecture", kv_str(arch))
        .kv("general.name", kv_str("tiny"));
    let sizes = [
        ("block_count", cfg.num_hidden_layers),
        ("context_length", cfg.max_position_embeddings),
        ("embedding_length", cfg.hidden_size),
        ("feed_forward_length", cfg.intermediate_size),
        ("attention.head_count", cfg.num_attention_heads),
        ("attention.head_count_kv", cfg.num_key_value_heads),
    ];
    for (key, n) in sizes {
        b = b.kv(&format!("{arch}.{key}"), kv_u32(n as u32));
    }
    let floats = [
        ("rope.freq_base", cfg.rope_theta),
        ("attention.layer_norm_rms_epsilon", cfg.rms_norm_eps),
    ];
    for (key, x) in floats {
        b = b.kv(&format!("{arch}.{key}"), kv_f32(x as f32));
    }
    b = b
        .kv("tokenizer.ggml.model", kv_str("gpt2"))
        .kv("tokenizer.ggml.pre", kv_str("smollm"))
        .kv("tokenizer.ggml.tokens", kv_str_array(&toks))
        .kv("tokenizer.ggml.token_type", kv_i32_array(&types))
        .kv("tokenizer.ggml.merges", kv_str_array(&merges))
        .kv("tokenizer.ggml.bos_token_id", kv_u32(258))
        .kv("tokenizer.ggml.eos_token_id", kv_u32(259))
        .kv(
            "tokenizer.chat_template",
            kv_str("{% for m in messages %}{{ m.content }}{% endfor %}"),
        );
    let mut names: Vec<&String> = weights.keys().collect();
    names.sort();
    for name in names {
        let mut w = weights[name].clone();
        if cfg.arch == Arch::Llama && name.contains("q_proj") {
            w = llama_cpp_permute(&w, cfg.num_attention_heads);
        } else if cfg.arch == Arch::Llama && name.contains("k_proj") {
            w = llama_cpp_permute(&w, cfg.num_key_value_heads);
        }
        let data = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        b = b.f32_tensor(&gguf_name(name), w.dims(), &data);
    }
    b
}

pub fn assert_weights_equal(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) {
    assert_eq!(a.len(), b.len());
    for (name, ta) in a {
        let tb = b.get(name).unwrap_or_else(|| panic!("missing {name}"));
        assert_eq!(ta.dims(), tb.dims(), "{name}");
        let (va, vb) = (
            ta.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            tb.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert!(
            va.iter().zip(&vb).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name} differs"
        );
    }
}

pub fn err_string(r: Result<impl std::fmt::Debug, ModelError>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Dequantization
// ---------------------------------------------------------------------------

/// Random block bytes with finite f16 scale fields for each type.
pub fn random_blocks(ty: GgmlType, n_blocks: usize, rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..n_blocks {
        let mut b = rng.bytes(ty.block_bytes());
        let mut put_f16 =
            |at: usize, v: f32| b[at..at + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
        match ty {
            GgmlType::F32 => b.copy_from_slice(&(rng.unit() * 3.0).to_le_bytes()),
            GgmlType::F16 => put_f16(0, rng.unit() * 3.0),
            GgmlType::BF16 => b.copy_from_slice(&bf16::from_f32(rng.unit() * 3.0).to_le_bytes()),
            GgmlType::Q8_0 | GgmlType::Q4_0 => put_f16(0, rng.unit() * 0.1),
            GgmlType::Q4_1 | GgmlType::Q4K => {
                put_f16(0, rng.unit() * 0.1);
                put_f16(2, rng.unit() * 0.1);
            }
            GgmlType::Q6K => put_f16(208, rng.unit() * 0.1),
        }
        out.extend(b);
    }
    out
}
