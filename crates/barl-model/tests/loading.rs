//! Loading and saving models: the GGUF reader (against candle's reader and
//! dequantizer as a second implementation, and hand-computed blocks), the q/k
//! un-permutation, Hugging Face folders (round trip, layout, errors), and the error
//! paths for truncated or corrupted files. Tests on the real SmolLM2 GGUF need
//! `BARL_SMOLLM2` (see `loading_support::smollm2`).

mod loading_support;

use std::collections::HashMap;
use std::path::Path;

use barl_model::gguf::{
    dequantize, hf_tensor_name, unpermute_qk, GgmlType, GgufArray, GgufFile, GgufValue,
};
use barl_model::hf::{expected_tensors, save_hf_folder_as};
use barl_model::testing::max_abs_diff;
use barl_model::{
    load_gguf, load_hf_folder, save_hf_folder, Arch, Llama3RopeScaling, ModelConfig, ModelError,
};
use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use half::{bf16, f16};
use loading_support::*;

// ---------------------------------------------------------------------------
// Synthetic models
// ---------------------------------------------------------------------------

/// Byte-level vocabulary: the 256 byte characters (id = byte), then "ĠĠ", "hi",
/// and the control tokens "<|im_start|>", "<|im_end|>".
fn tiny_vocab() -> (Vec<String>, Vec<i32>, Vec<&'static str>) {
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
fn llama_cpp_permute(w: &Tensor, n_head: usize) -> Tensor {
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

fn tiny_config(arch: Arch, tied: bool) -> ModelConfig {
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
fn random_weights(cfg: &ModelConfig, seed: u64) -> HashMap<String, Tensor> {
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

fn gguf_name(hf: &str) -> String {
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
fn tiny_gguf(cfg: &ModelConfig, weights: &HashMap<String, Tensor>) -> GgufBuilder {
    let arch = match cfg.arch {
        Arch::Llama => "llama",
        Arch::Qwen2 => "qwen2",
    };
    let (tokens, types, merges) = tiny_vocab();
    let toks: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let mut b = GgufBuilder::new()
        .kv("general.architecture", kv_str(arch))
        .kv("general.name", kv_str("tiny"))
        .kv(
            &format!("{arch}.block_count"),
            kv_u32(cfg.num_hidden_layers as u32),
        )
        .kv(
            &format!("{arch}.context_length"),
            kv_u32(cfg.max_position_embeddings as u32),
        )
        .kv(
            &format!("{arch}.embedding_length"),
            kv_u32(cfg.hidden_size as u32),
        )
        .kv(
            &format!("{arch}.feed_forward_length"),
            kv_u32(cfg.intermediate_size as u32),
        )
        .kv(
            &format!("{arch}.attention.head_count"),
            kv_u32(cfg.num_attention_heads as u32),
        )
        .kv(
            &format!("{arch}.attention.head_count_kv"),
            kv_u32(cfg.num_key_value_heads as u32),
        )
        .kv(
            &format!("{arch}.rope.freq_base"),
            kv_f32(cfg.rope_theta as f32),
        )
        .kv(
            &format!("{arch}.attention.layer_norm_rms_epsilon"),
            kv_f32(cfg.rms_norm_eps as f32),
        )
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

fn assert_weights_equal(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) {
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

fn err_string(r: Result<impl std::fmt::Debug, ModelError>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Dequantization
// ---------------------------------------------------------------------------

/// Random block bytes with finite f16 scale fields for each type.
fn random_blocks(ty: GgmlType, n_blocks: usize, rng: &mut Rng) -> Vec<u8> {
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

#[test]
fn gguf_dequantize_matches_candle_for_every_type() {
    let dir = scratch_dir("dequant");
    let mut rng = Rng(7);
    let dims = [512u64, 3]; // 3 rows of 512: a whole number of blocks for every type
    let n = 512 * 3;
    let mut b = GgufBuilder::new().kv("general.architecture", kv_str("llama"));
    for ty in GgmlType::ALL {
        let data = random_blocks(ty, n / ty.block_elems(), &mut rng);
        b = b.tensor(&format!("t.{ty:?}"), &dims, ty.id(), data);
    }
    let path = dir.join("types.gguf");
    b.write(&path);

    let ours = GgufFile::open(&path).unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    let theirs = gguf_file::Content::read(&mut f).unwrap();
    for ty in GgmlType::ALL {
        let name = format!("t.{ty:?}");
        let a = ours.dequantize(ours.tensor_info(&name).unwrap()).unwrap();
        let q = theirs.tensor(&mut f, &name, &Device::Cpu).unwrap();
        assert_eq!(q.shape().dims(), &[3, 512], "{name}");
        let c = q
            .dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(a.len(), c.len());
        let max_diff = a
            .iter()
            .zip(&c)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        let scale = c.iter().map(|x| x.abs()).fold(0f32, f32::max);
        assert!(scale > 0.0, "{name}: all zero data tests nothing");
        assert!(
            max_diff <= 1e-6 * scale,
            "{name}: max diff {max_diff} (scale {scale})"
        );
    }
}

#[test]
fn gguf_dequantize_hand_computed_blocks() {
    let h = |v: f32| f16::from_f32(v).to_le_bytes();
    // Q8_0: d = 0.5, q = [-4, 3, 0, ...] -> [-2, 1.5, 0, ...].
    let mut b = h(0.5).to_vec();
    let mut qs = [0u8; 32];
    qs[0] = (-4i8) as u8;
    qs[1] = 3;
    b.extend(qs);
    let x = dequantize(GgmlType::Q8_0, &b, 32).unwrap();
    assert_eq!((x[0], x[1], x[2]), (-2.0, 1.5, 0.0));

    // Q4_0: d = 0.5, byte 0 = 0x3A: x[0] = (0xA - 8) * 0.5 = 1, x[16] = (3 - 8) * 0.5 = -2.5.
    let mut b = h(0.5).to_vec();
    let mut qs = [0x88u8; 16]; // nibble 8 -> 0
    qs[0] = 0x3A;
    b.extend(qs);
    let x = dequantize(GgmlType::Q4_0, &b, 32).unwrap();
    assert_eq!((x[0], x[16], x[1], x[17]), (1.0, -2.5, 0.0, 0.0));

    // Q4_1: d = 2, m = -1, byte 0 = 0x51: x[0] = 2 * 1 - 1 = 1, x[16] = 2 * 5 - 1 = 9.
    let mut b = h(2.0).to_vec();
    b.extend(h(-1.0));
    let mut qs = [0u8; 16];
    qs[0] = 0x51;
    b.extend(qs);
    let x = dequantize(GgmlType::Q4_1, &b, 32).unwrap();
    assert_eq!((x[0], x[16], x[1]), (1.0, 9.0, -1.0));

    // Q4_K: d = 1, dmin = 0.5. scales[0] = 2 | 1 << 6 (sub-block 0 scale 2; its top bits
    // feed sub-block 4), scales[4] = 3 (min of sub-block 0), scales[1] = 1, scales[5] = 0,
    // scales[8] = 0x23: sub-block 4 scale = 3 | 1 << 4 = 19, min = 2 | (3 >> 6) << 4 = 2.
    // qs[0] = 0x15: x[0] = 1 * 2 * 5 - 0.5 * 3 = 8.5, x[32] = 1 * 1 * 1 - 0 = 1.
    // qs[64] = 0x07 (group 2, low nibble -> sub-block 4): x[128] = 19 * 7 - 0.5 * 2 = 132.
    let mut b = h(1.0).to_vec();
    b.extend(h(0.5));
    let mut scales = [0u8; 12];
    scales[0] = 2 | (1 << 6);
    scales[4] = 3;
    scales[1] = 1;
    scales[8] = 0x23;
    b.extend(scales);
    let mut qs = [0u8; 128];
    qs[0] = 0x15;
    qs[64] = 0x07;
    b.extend(qs);
    let x = dequantize(GgmlType::Q4K, &b, 256).unwrap();
    assert_eq!((x[0], x[32], x[128]), (8.5, 1.0, 132.0));

    // Q6_K: d = 0.5, ql[0] = 0x21, ql[32] = 0x0F, qh[0] = 0b11_10_01_00,
    // scales[0] = 2, scales[2] = -1, scales[4] = 3, scales[6] = 1:
    // x[0]  = 0.5 * 2 * ((1 | 0 << 4) - 32) = -31
    // x[32] = 0.5 * -1 * ((15 | 1 << 4) - 32) = 0.5
    // x[64] = 0.5 * 3 * ((2 | 2 << 4) - 32) = 3
    // x[96] = 0.5 * 1 * ((0 | 3 << 4) - 32) = 8
    let mut ql = [0u8; 128];
    ql[0] = 0x21;
    ql[32] = 0x0F;
    let mut qh = [0u8; 64];
    qh[0] = 0b11_10_01_00;
    let mut sc = [0u8; 16];
    sc[0] = 2;
    sc[2] = (-1i8) as u8;
    sc[4] = 3;
    sc[6] = 1;
    let mut b = ql.to_vec();
    b.extend(qh);
    b.extend(sc);
    b.extend(h(0.5));
    let x = dequantize(GgmlType::Q6K, &b, 256).unwrap();
    assert_eq!((x[0], x[32], x[64], x[96]), (-31.0, 0.5, 3.0, 8.0));

    // Wrong length is an error, not a panic.
    assert!(dequantize(GgmlType::Q6K, &b[..100], 256).is_err());
}

// ---------------------------------------------------------------------------
// Names and layout
// ---------------------------------------------------------------------------

#[test]
fn gguf_unpermute_inverts_llama_cpp_permutation() {
    // One head of 4 rows: HF rows [0, 1, 2, 3] are stored as [0, 2, 1, 3].
    assert_eq!(
        unpermute_qk(&[0.0, 2.0, 1.0, 3.0], 4, 1, 1).unwrap(),
        vec![0.0, 1.0, 2.0, 3.0]
    );
    // Random 3 heads x 8 rows x 5 columns against the converter's formula.
    let mut rng = Rng(3);
    let data: Vec<f32> = (0..24 * 5).map(|_| rng.unit()).collect();
    let w = Tensor::from_vec(data.clone(), (24, 5), &Device::Cpu).unwrap();
    let permuted = llama_cpp_permute(&w, 3)
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_ne!(permuted, data);
    assert_eq!(unpermute_qk(&permuted, 24, 5, 3).unwrap(), data);
    assert!(unpermute_qk(&permuted, 24, 5, 5).is_err());
}

#[test]
fn gguf_tensor_names_map_to_hf() {
    let cases = [
        ("token_embd.weight", Some("model.embed_tokens.weight")),
        ("output_norm.weight", Some("model.norm.weight")),
        ("output.weight", Some("lm_head.weight")),
        (
            "blk.0.attn_q.weight",
            Some("model.layers.0.self_attn.q_proj.weight"),
        ),
        (
            "blk.12.attn_k.bias",
            Some("model.layers.12.self_attn.k_proj.bias"),
        ),
        (
            "blk.3.attn_v.weight",
            Some("model.layers.3.self_attn.v_proj.weight"),
        ),
        (
            "blk.3.attn_output.weight",
            Some("model.layers.3.self_attn.o_proj.weight"),
        ),
        (
            "blk.1.ffn_gate.weight",
            Some("model.layers.1.mlp.gate_proj.weight"),
        ),
        (
            "blk.1.ffn_up.weight",
            Some("model.layers.1.mlp.up_proj.weight"),
        ),
        (
            "blk.1.ffn_down.weight",
            Some("model.layers.1.mlp.down_proj.weight"),
        ),
        (
            "blk.29.attn_norm.weight",
            Some("model.layers.29.input_layernorm.weight"),
        ),
        (
            "blk.29.ffn_norm.weight",
            Some("model.layers.29.post_attention_layernorm.weight"),
        ),
        ("blk.x.attn_q.weight", None),
        ("blk.0.attn_qkv.weight", None),
        ("rope_freqs.weight", None),
    ];
    for (g, hf) in cases {
        assert_eq!(hf_tensor_name(g).as_deref(), hf, "{g}");
    }
}

// ---------------------------------------------------------------------------
// Whole synthetic models
// ---------------------------------------------------------------------------

#[test]
fn gguf_tiny_llama_loads_config_weights_tokenizer() {
    let dir = scratch_dir("tiny-llama");
    for tied in [true, false] {
        let cfg = tiny_config(Arch::Llama, tied);
        let weights = random_weights(&cfg, 11);
        let path = dir.join(format!("tiny-{tied}.gguf"));
        tiny_gguf(&cfg, &weights).write(&path);
        let m = load_gguf(&path, &Device::Cpu).unwrap();
        // f32 metadata: eps and theta come back as the f32 nearest to what was written.
        let mut want = cfg.clone();
        want.rms_norm_eps = f64::from(1e-5f32);
        assert_eq!(m.config, want);
        // q/k come back in Hugging Face layout, i.e. equal to the un-permuted originals.
        assert_weights_equal(&m.weights, &weights);
        // "hi" is one merged token (257); control tokens match whole.
        assert_eq!(
            m.tokenizer.encode("<|im_start|>hi", false).unwrap(),
            vec![258, 257]
        );
        assert_eq!(
            m.chat_template.as_deref(),
            Some("{% for m in messages %}{{ m.content }}{% endfor %}")
        );
    }
}

#[test]
fn gguf_tiny_qwen2_keeps_rows_and_biases() {
    let dir = scratch_dir("tiny-qwen2");
    let cfg = tiny_config(Arch::Qwen2, false);
    let weights = random_weights(&cfg, 12);
    assert!(weights.contains_key("model.layers.1.self_attn.k_proj.bias"));
    let path = dir.join("tiny.gguf");
    tiny_gguf(&cfg, &weights).write(&path);
    let m = load_gguf(&path, &Device::Cpu).unwrap();
    assert_eq!(m.config.arch, Arch::Qwen2);
    assert!(m.config.attention_bias);
    assert_weights_equal(&m.weights, &weights);
}

#[test]
fn gguf_metadata_reader_reads_every_value_type() {
    let dir = scratch_dir("kv-types");
    let mut nested = 9u32.to_le_bytes().to_vec(); // array of 2 arrays of u16
    nested.extend(2u64.to_le_bytes());
    for vals in [[1u16, 2], [3, 4]] {
        nested.extend(2u32.to_le_bytes());
        nested.extend(2u64.to_le_bytes());
        for v in vals {
            nested.extend(v.to_le_bytes());
        }
    }
    let b = GgufBuilder::new()
        .kv("u8", Kv(0, vec![200]))
        .kv("i8", Kv(1, vec![0xFF]))
        .kv("u16", Kv(2, 60000u16.to_le_bytes().to_vec()))
        .kv("i16", Kv(3, (-3i16).to_le_bytes().to_vec()))
        .kv("u32", kv_u32(4_000_000_000))
        .kv("i32", Kv(5, (-5i32).to_le_bytes().to_vec()))
        .kv("f32", kv_f32(0.25))
        .kv("bool", kv_bool(true))
        .kv("str", kv_str("héllo"))
        .kv("u64", Kv(10, u64::MAX.to_le_bytes().to_vec()))
        .kv("i64", Kv(11, (-7i64).to_le_bytes().to_vec()))
        .kv("f64", Kv(12, 1.5f64.to_le_bytes().to_vec()))
        .kv("strs", kv_str_array(&["a", "", "ü"]))
        .kv("nested", Kv(9, nested))
        .kv("general.alignment", kv_u32(64));
    let mut b = b
        .f32_tensor("a", &[2], &[1.0, 2.0])
        .f32_tensor("b", &[3], &[3.0, 4.0, 5.0]);
    b.alignment = 64;
    b.version = 2;
    let path = dir.join("kv.gguf");
    b.write(&path);
    let g = GgufFile::open(&path).unwrap();
    assert_eq!(g.version, 2);
    assert_eq!(g.alignment, 64);
    let expect = [
        ("u8", GgufValue::U8(200)),
        ("i8", GgufValue::I8(-1)),
        ("u16", GgufValue::U16(60000)),
        ("i16", GgufValue::I16(-3)),
        ("u32", GgufValue::U32(4_000_000_000)),
        ("i32", GgufValue::I32(-5)),
        ("f32", GgufValue::F32(0.25)),
        ("bool", GgufValue::Bool(true)),
        ("str", GgufValue::Str("héllo".into())),
        ("u64", GgufValue::U64(u64::MAX)),
        ("i64", GgufValue::I64(-7)),
        ("f64", GgufValue::F64(1.5)),
        (
            "strs",
            GgufValue::Array(GgufArray::Str(vec!["a".into(), "".into(), "ü".into()])),
        ),
        (
            "nested",
            GgufValue::Array(GgufArray::Array(vec![
                GgufArray::U16(vec![1, 2]),
                GgufArray::U16(vec![3, 4]),
            ])),
        ),
    ];
    for (k, v) in expect {
        assert_eq!(g.get(k), Some(&v), "{k}");
    }
    // Tensor "b" starts at the next multiple of 64 after "a"'s 8 bytes.
    assert_eq!(g.tensor_info("b").unwrap().offset, 64);
    assert_eq!(
        g.dequantize(g.tensor_info("b").unwrap()).unwrap(),
        vec![3.0, 4.0, 5.0]
    );
    assert_eq!(g.data_start % 64, 0);
}

// ---------------------------------------------------------------------------
// Errors: truncated and corrupted GGUF files
// ---------------------------------------------------------------------------

#[test]
fn gguf_truncated_at_every_byte_is_an_error() {
    let dir = scratch_dir("trunc");
    let cfg = tiny_config(Arch::Llama, true);
    let bytes = tiny_gguf(&cfg, &random_weights(&cfg, 5)).bytes();
    let path = dir.join("cut.gguf");
    // Every cut point of the header and metadata, then every 7th byte of the data.
    let header_end = GgufFile::open(&{
        std::fs::write(&path, &bytes).unwrap();
        path.clone()
    })
    .unwrap()
    .data_start as usize;
    assert!(load_gguf(&path, &Device::Cpu).is_ok());
    let cuts: Vec<usize> = (0..header_end)
        .chain((header_end..bytes.len()).step_by(7))
        .collect();
    for cut in cuts {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let msg = err_string(load_gguf(&path, &Device::Cpu));
        assert!(msg.contains("cut.gguf"), "cut {cut}: {msg}");
        if cut >= header_end {
            // Cut inside the data: the message names a tensor.
            assert!(msg.contains("truncated: tensor '"), "cut {cut}: {msg}");
        }
    }
    // A cut inside a metadata value names its key.
    let key_at = bytes
        .windows(20)
        .position(|w| w == b"tokenizer.ggml.token")
        .unwrap();
    std::fs::write(&path, &bytes[..key_at + 40]).unwrap();
    let msg = err_string(GgufFile::open(&path).map(|_| ()));
    assert!(
        msg.contains("metadata key 'tokenizer.ggml.tokens'"),
        "{msg}"
    );
}

/// Writes `bytes` and returns the error message of loading them.
fn load_err(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let msg = err_string(load_gguf(&path, &Device::Cpu));
    assert!(msg.contains(name), "message does not name the file: {msg}");
    msg
}

#[test]
fn gguf_corruptions_are_errors_naming_file_and_key() {
    let dir = scratch_dir("corrupt");
    let cfg = tiny_config(Arch::Llama, true);
    let weights = random_weights(&cfg, 6);
    let good = tiny_gguf(&cfg, &weights);
    let bytes = good.bytes();

    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert!(load_err(&dir, "magic.gguf", &bad).contains("bad magic"));
    assert!(load_err(&dir, "empty.gguf", &[]).contains("not a GGUF file"));
    for v in [1u32, 4, 0x0300_0000] {
        let mut bad = bytes.clone();
        bad[4..8].copy_from_slice(&v.to_le_bytes());
        assert!(
            load_err(&dir, "version.gguf", &bad).contains(&format!("unsupported GGUF version {v}"))
        );
    }
    // A tensor count far beyond what the file can hold: an error, not an allocation.
    let mut bad = bytes.clone();
    bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(load_err(&dir, "count.gguf", &bad).contains("tensor count"));
    let mut bad = bytes.clone();
    bad[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(load_err(&dir, "kvcount.gguf", &bad).contains("metadata count"));

    // A huge array length inside tokenizer.ggml.tokens.
    let key = b"tokenizer.ggml.tokens";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4 + 4;
    let mut bad = bytes.clone();
    bad[at..at + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    let msg = load_err(&dir, "arraylen.gguf", &bad);
    assert!(
        msg.contains("tokenizer.ggml.tokens") && msg.contains("corrupted"),
        "{msg}"
    );
    // An unknown value type on general.architecture.
    let key = b"general.architecture";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    let mut bad = bytes.clone();
    bad[at..at + 4].copy_from_slice(&99u32.to_le_bytes());
    let msg = load_err(&dir, "vtype.gguf", &bad);
    assert!(
        msg.contains("general.architecture") && msg.contains("unknown value type 99"),
        "{msg}"
    );

    // Unknown architecture.
    let mut b = tiny_gguf(&cfg, &weights);
    b.kvs[0].1 = kv_str("gptneox");
    let msg = load_err(&dir, "arch.gguf", &b.bytes());
    assert!(
        msg.contains("unknown architecture 'gptneox'") && msg.contains("general.architecture"),
        "{msg}"
    );
    // A missing hyper-parameter.
    let mut b = tiny_gguf(&cfg, &weights);
    b.kvs.retain(|(k, _)| k != "llama.feed_forward_length");
    assert!(load_err(&dir, "nokey.gguf", &b.bytes())
        .contains("missing metadata key 'llama.feed_forward_length'"));
    // A mistyped one.
    let mut b = tiny_gguf(&cfg, &weights);
    b.kvs
        .iter_mut()
        .find(|(k, _)| k == "llama.block_count")
        .unwrap()
        .1 = kv_str("two");
    assert!(load_err(&dir, "type.gguf", &b.bytes())
        .contains("'llama.block_count' should be a non-negative integer"));

    // Unsupported quantization type (Q5_K = 13) on one tensor.
    let mut b = tiny_gguf(&cfg, &weights);
    let t = b
        .tensors
        .iter_mut()
        .find(|t| t.0 == "blk.1.ffn_up.weight")
        .unwrap();
    t.2 = 13;
    let msg = load_err(&dir, "quant.gguf", &b.bytes());
    assert!(
        msg.contains("'blk.1.ffn_up.weight'") && msg.contains("Q5_K"),
        "{msg}"
    );
    // A row length that is not a whole number of blocks (Q8_0 needs 32).
    let mut b = tiny_gguf(&cfg, &weights);
    let t = b
        .tensors
        .iter_mut()
        .find(|t| t.0 == "output_norm.weight")
        .unwrap();
    t.2 = 8;
    let msg = load_err(&dir, "block.gguf", &b.bytes());
    assert!(
        msg.contains("'output_norm.weight'") && msg.contains("block size"),
        "{msg}"
    );
    // Too many dimensions.
    let mut b = tiny_gguf(&cfg, &weights);
    b.tensors[0].1 = vec![1; 9];
    assert!(load_err(&dir, "dims.gguf", &b.bytes()).contains("9 dimensions"));
    // A tensor whose shape disagrees with the configuration.
    let mut b = tiny_gguf(&cfg, &weights);
    let t = b
        .tensors
        .iter_mut()
        .find(|t| t.0 == "blk.0.attn_v.weight")
        .unwrap();
    t.1 = vec![4, 8];
    t.3.truncate(4 * 8 * 4);
    let msg = load_err(&dir, "shape.gguf", &b.bytes());
    assert!(
        msg.contains("'model.layers.0.self_attn.v_proj.weight' has shape [8, 4]"),
        "{msg}"
    );
    // A missing tensor.
    let mut b = tiny_gguf(&cfg, &weights);
    b.tensors.retain(|t| t.0 != "blk.1.attn_norm.weight");
    assert!(load_err(&dir, "missing.gguf", &b.bytes())
        .contains("missing tensor 'model.layers.1.input_layernorm.weight'"));
    // An unknown tensor.
    let b = tiny_gguf(&cfg, &weights).f32_tensor("blk.0.mystery.weight", &[2], &[0.0, 0.0]);
    assert!(load_err(&dir, "unknown.gguf", &b.bytes())
        .contains("unknown tensor 'blk.0.mystery.weight'"));
    // Alignment that is not a power of two.
    let b = tiny_gguf(&cfg, &weights).kv("general.alignment", kv_u32(24));
    assert!(load_err(&dir, "align.gguf", &b.bytes()).contains("general.alignment"));
    // Unsupported tokenizer model and pre-tokenizer.
    let mut b = tiny_gguf(&cfg, &weights);
    b.kvs
        .iter_mut()
        .find(|(k, _)| k == "tokenizer.ggml.model")
        .unwrap()
        .1 = kv_str("bert");
    assert!(
        load_err(&dir, "tokmodel.gguf", &b.bytes()).contains("'tokenizer.ggml.model' is 'bert'")
    );
    let mut b = tiny_gguf(&cfg, &weights);
    b.kvs
        .iter_mut()
        .find(|(k, _)| k == "tokenizer.ggml.pre")
        .unwrap()
        .1 = kv_str("mystery");
    assert!(load_err(&dir, "tokpre.gguf", &b.bytes()).contains("'tokenizer.ggml.pre' is 'mystery'"));
}

// ---------------------------------------------------------------------------
// Hugging Face folders
// ---------------------------------------------------------------------------

fn tiny_tokenizer() -> barl_model::Tokenizer {
    let dir = scratch_dir("tok-src");
    let cfg = tiny_config(Arch::Llama, true);
    let path = dir.join("t.gguf");
    tiny_gguf(&cfg, &random_weights(&cfg, 1)).write(&path);
    load_gguf(&path, &Device::Cpu).unwrap().tokenizer
}

#[test]
fn hf_save_load_round_trip_is_bit_exact() {
    let dir = scratch_dir("hf-roundtrip");
    let tok = tiny_tokenizer();
    let mut llama3 = tiny_config(Arch::Llama, false);
    llama3.rope_scaling = Some(Llama3RopeScaling {
        factor: 32.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192,
    });
    // An f32-rounded eps, as GGUF metadata gives it, must survive JSON.
    llama3.rms_norm_eps = f64::from(1e-5f32);
    llama3.eos_token_ids = vec![259, 258];
    let mut no_bos = tiny_config(Arch::Qwen2, true);
    no_bos.bos_token_id = None;
    for (i, cfg) in [
        tiny_config(Arch::Llama, true),
        llama3,
        tiny_config(Arch::Qwen2, false),
        no_bos,
    ]
    .iter()
    .enumerate()
    {
        let weights = random_weights(cfg, 100 + i as u64);
        let out = dir.join(format!("m{i}"));
        let template = "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}";
        save_hf_folder(&out, cfg, &weights, &tok, Some(template)).unwrap();
        let m = load_hf_folder(&out, &Device::Cpu).unwrap();
        assert_eq!(&m.config, cfg, "config {i}");
        assert_weights_equal(&m.weights, &weights);
        assert_eq!(m.chat_template.as_deref(), Some(template));
        for text in ["<|im_start|>hi  there 123\n", "ünïcödé 🙂"] {
            assert_eq!(
                m.tokenizer.encode(text, true).unwrap(),
                tok.encode(text, true).unwrap()
            );
        }
        assert_eq!(m.tokenizer.bos_token_id(), Some(258));
        assert_eq!(m.tokenizer.eos_token_id(), Some(259));
        // Saving again over the same folder replaces it.
        save_hf_folder(&out, cfg, &weights, &tok, None).unwrap();
        assert_eq!(
            load_hf_folder(&out, &Device::Cpu).unwrap().chat_template,
            None
        );
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "temporary folders left behind");
    }
}

#[test]
fn hf_bf16_save_rounds_each_weight_once() {
    let dir = scratch_dir("hf-bf16");
    let cfg = tiny_config(Arch::Llama, true);
    let weights = random_weights(&cfg, 9);
    save_hf_folder_as(
        &dir.join("m"),
        &cfg,
        &weights,
        &tiny_tokenizer(),
        None,
        DType::BF16,
    )
    .unwrap();
    let m = load_hf_folder(&dir.join("m"), &Device::Cpu).unwrap();
    for (name, t) in &weights {
        let want: Vec<f32> = t
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|&x| bf16::from_f32(x).to_f32())
            .collect();
        assert_eq!(
            m.weights[name]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            want,
            "{name}"
        );
    }
    let cfg_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("m/config.json")).unwrap()).unwrap();
    assert_eq!(cfg_json["torch_dtype"], "bfloat16");
}

/// Reads a safetensors header independently: `u64 n`, then n bytes of JSON.
fn safetensors_header(path: &Path) -> serde_json::Map<String, serde_json::Value> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + n]).unwrap()
}

#[test]
fn hf_saved_folder_has_transformers_layout() {
    let dir = scratch_dir("hf-layout");
    // Qwen2, untied: every tensor kind including biases and lm_head.
    let cfg = tiny_config(Arch::Qwen2, false);
    save_hf_folder(
        &dir.join("q"),
        &cfg,
        &random_weights(&cfg, 2),
        &tiny_tokenizer(),
        None,
    )
    .unwrap();
    let header = safetensors_header(&dir.join("q/model.safetensors"));
    // Written out by hand from transformers' Qwen2ForCausalLM state dict (hidden 8,
    // 2 heads x 4, 1 kv head, intermediate 12, vocab 260).
    let mut want: Vec<(String, Vec<usize>)> = vec![
        ("lm_head.weight".into(), vec![260, 8]),
        ("model.embed_tokens.weight".into(), vec![260, 8]),
        ("model.norm.weight".into(), vec![8]),
    ];
    for l in 0..2 {
        for (n, s) in [
            ("input_layernorm.weight", vec![8]),
            ("mlp.down_proj.weight", vec![8, 12]),
            ("mlp.gate_proj.weight", vec![12, 8]),
            ("mlp.up_proj.weight", vec![12, 8]),
            ("post_attention_layernorm.weight", vec![8]),
            ("self_attn.k_proj.bias", vec![4]),
            ("self_attn.k_proj.weight", vec![4, 8]),
            ("self_attn.o_proj.weight", vec![8, 8]),
            ("self_attn.q_proj.bias", vec![8]),
            ("self_attn.q_proj.weight", vec![8, 8]),
            ("self_attn.v_proj.bias", vec![4]),
            ("self_attn.v_proj.weight", vec![4, 8]),
        ] {
            want.push((format!("model.layers.{l}.{n}"), s));
        }
    }
    assert_eq!(header["__metadata__"]["format"], "pt");
    let got: usize = header.keys().filter(|k| *k != "__metadata__").count();
    assert_eq!(got, want.len());
    for (name, shape) in &want {
        let e = header.get(name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(e["dtype"], "F32", "{name}");
        let s: Vec<usize> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(&s, shape, "{name}");
    }

    let read = |p: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(p)).unwrap()).unwrap()
    };
    let c = read("q/config.json");
    let expect = serde_json::json!({
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 8,
        "intermediate_size": 12, "num_attention_heads": 2, "num_hidden_layers": 2,
        "num_key_value_heads": 1, "head_dim": 4, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "vocab_size": 260, "tie_word_embeddings": false, "max_position_embeddings": 64,
        "torch_dtype": "float32", "bos_token_id": 258, "eos_token_id": 259, "hidden_act": "silu",
        "use_sliding_window": false,
    });
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&c[k], v, "config.json key {k}");
    }
    let g = read("q/generation_config.json");
    assert_eq!(
        (g["bos_token_id"].clone(), g["eos_token_id"].clone()),
        (serde_json::json!(258), serde_json::json!(259))
    );
    let tc = read("q/tokenizer_config.json");
    assert_eq!(tc["bos_token"], "<|im_start|>");
    assert_eq!(tc["eos_token"], "<|im_end|>");
    assert_eq!(tc["tokenizer_class"], "PreTrainedTokenizerFast");
    let tj = read("q/tokenizer.json");
    assert_eq!(tj["model"]["type"], "BPE");
    assert_eq!(tj["model"]["vocab"]["hi"], 257);

    // Llama, tied: no lm_head; Llama keys.
    let cfg = tiny_config(Arch::Llama, true);
    save_hf_folder(
        &dir.join("l"),
        &cfg,
        &random_weights(&cfg, 2),
        &tiny_tokenizer(),
        None,
    )
    .unwrap();
    let header = safetensors_header(&dir.join("l/model.safetensors"));
    assert!(!header.contains_key("lm_head.weight"));
    assert!(!header.contains_key("model.layers.0.self_attn.q_proj.bias"));
    assert_eq!(header.len() - 1, 2 + 2 * 9);
    let c = read("l/config.json");
    assert_eq!(c["architectures"], serde_json::json!(["LlamaForCausalLM"]));
    assert_eq!(c["model_type"], "llama");
    assert_eq!(c["tie_word_embeddings"], true);
    assert_eq!(c["attention_bias"], false);
    assert_eq!(c["rope_scaling"], serde_json::Value::Null);
}

#[test]
fn hf_sharded_folder_loads() {
    let dir = scratch_dir("hf-sharded");
    let cfg = tiny_config(Arch::Llama, false);
    let weights = random_weights(&cfg, 4);
    let m = dir.join("m");
    save_hf_folder(&m, &cfg, &weights, &tiny_tokenizer(), None).unwrap();
    // Split model.safetensors into two shards with an index, as transformers does.
    let whole = std::fs::read(m.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&whole).unwrap();
    let mut names = st.names();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut map = serde_json::Map::new();
    for (i, part) in [a, b].iter().enumerate() {
        let file = format!("model-{:05}-of-00002.safetensors", i + 1);
        let views: Vec<(&str, safetensors::tensor::TensorView)> =
            part.iter().map(|n| (*n, st.tensor(n).unwrap())).collect();
        safetensors::serialize_to_file(views, None, &m.join(&file)).unwrap();
        for n in part.iter() {
            map.insert(n.to_string(), serde_json::json!(file));
        }
    }
    std::fs::remove_file(m.join("model.safetensors")).unwrap();
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(m.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let loaded = load_hf_folder(&m, &Device::Cpu).unwrap();
    assert_weights_equal(&loaded.weights, &weights);

    // A tensor listed in the index under the wrong shard: names the tensor and the shard.
    let moved = b[0].to_string();
    map.insert(
        moved.clone(),
        serde_json::json!("model-00001-of-00002.safetensors"),
    );
    let index = serde_json::json!({"weight_map": map});
    std::fs::write(m.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let msg = err_string(load_hf_folder(&m, &Device::Cpu));
    assert!(
        msg.contains("model-00001-of-00002.safetensors") && msg.contains(&format!("'{moved}'")),
        "{msg}"
    );
}

#[test]
fn hf_errors_name_file_and_key() {
    let dir = scratch_dir("hf-errors");
    let cfg = tiny_config(Arch::Llama, true);
    let weights = random_weights(&cfg, 8);
    let tok = tiny_tokenizer();
    let fresh = |name: &str| {
        let p = dir.join(name);
        save_hf_folder(&p, &cfg, &weights, &tok, None).unwrap();
        p
    };
    let edit_config = |p: &Path, f: &dyn Fn(&mut serde_json::Value)| {
        let mut c: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p.join("config.json")).unwrap()).unwrap();
        f(&mut c);
        std::fs::write(p.join("config.json"), c.to_string()).unwrap();
    };

    // Missing tensor: rewrite model.safetensors without one.
    let p = fresh("missing");
    let mut w = weights.clone();
    w.remove("model.layers.1.mlp.up_proj.weight");
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = w
        .iter()
        .map(|(n, t)| {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (
                n.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                t.dims().to_vec(),
            )
        })
        .collect();
    let views: Vec<(&str, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(n, b, s)| {
            (
                n.as_str(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &p.join("model.safetensors")).unwrap();
    let msg = err_string(load_hf_folder(&p, &Device::Cpu));
    assert!(
        msg.contains("model.safetensors")
            && msg.contains("missing tensor 'model.layers.1.mlp.up_proj.weight'"),
        "{msg}"
    );

    // Bad config keys.
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "badtype",
            Box::new(|c| c["hidden_size"] = serde_json::json!("eight")),
            "key 'hidden_size': invalid type: string \"eight\", expected usize",
        ),
        (
            "nokey",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("num_hidden_layers");
            }),
            "missing key 'num_hidden_layers'",
        ),
        (
            "arch",
            Box::new(|c| c["model_type"] = serde_json::json!("gpt2")),
            "unknown architecture 'gpt2'",
        ),
        (
            "eos",
            Box::new(|c| c["eos_token_id"] = serde_json::json!(["x"])),
            "key 'eos_token_id'",
        ),
        (
            "rope",
            Box::new(|c| {
                c["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 4.0})
            }),
            "'rope_scaling.rope_type' is 'yarn'",
        ),
        (
            "llama3",
            Box::new(|c| {
                c["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 4.0})
            }),
            "missing key 'rope_scaling.low_freq_factor'",
        ),
        (
            "heads",
            Box::new(|c| c["num_key_value_heads"] = serde_json::json!(3)),
            "num_key_value_heads",
        ),
        (
            "shape",
            Box::new(|c| c["intermediate_size"] = serde_json::json!(10)),
            "'model.layers.0.mlp.gate_proj.weight' has shape [12, 8], expected [10, 8]",
        ),
    ];
    for (name, edit, want) in cases {
        let p = fresh(name);
        edit_config(&p, &*edit);
        let msg = err_string(load_hf_folder(&p, &Device::Cpu));
        let file = if name == "shape" {
            "model.safetensors"
        } else {
            "config.json"
        };
        assert!(msg.contains(file) && msg.contains(want), "{name}: {msg}");
    }

    // Missing and broken files.
    let p = fresh("noconfig");
    std::fs::remove_file(p.join("config.json")).unwrap();
    assert!(err_string(load_hf_folder(&p, &Device::Cpu)).contains("config.json: cannot read"));
    let p = fresh("badjson");
    std::fs::write(p.join("config.json"), "{ not json").unwrap();
    assert!(err_string(load_hf_folder(&p, &Device::Cpu)).contains("config.json: invalid JSON"));
    let p = fresh("badst");
    std::fs::write(
        p.join("model.safetensors"),
        b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage",
    )
    .unwrap();
    assert!(err_string(load_hf_folder(&p, &Device::Cpu))
        .contains("model.safetensors: not a valid safetensors file"));
    let p = fresh("notok");
    std::fs::remove_file(p.join("tokenizer.json")).unwrap();
    assert!(err_string(load_hf_folder(&p, &Device::Cpu)).contains("tokenizer.json: cannot read"));
    let p = fresh("badtc");
    std::fs::write(
        p.join("tokenizer_config.json"),
        r#"{"eos_token": "<|nope|>"}"#,
    )
    .unwrap();
    let msg = err_string(load_hf_folder(&p, &Device::Cpu));
    assert!(
        msg.contains("tokenizer_config.json") && msg.contains("key 'eos_token'"),
        "{msg}"
    );
    let p = fresh("gen");
    std::fs::write(p.join("generation_config.json"), r#"{"eos_token_id": -1}"#).unwrap();
    let msg = err_string(load_hf_folder(&p, &Device::Cpu));
    assert!(
        msg.contains("generation_config.json") && msg.contains("'eos_token_id'"),
        "{msg}"
    );
    assert!(err_string(load_hf_folder(&dir.join("nowhere"), &Device::Cpu)).contains("config.json"));
}

#[test]
fn hf_config_reads_transformers_v5_rope_parameters_and_defaults() {
    // transformers >= 5 writes rope_theta inside rope_parameters; head_dim and
    // num_key_value_heads may be absent (defaults: hidden / heads, heads).
    let json = r#"{"model_type": "llama", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 256,
        "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0},
        "eos_token_id": [5, 6], "bos_token_id": 1, "tie_word_embeddings": true}"#;
    let c = ModelConfig::from_hf_json(json).unwrap();
    assert_eq!(
        (c.head_dim, c.num_key_value_heads, c.rope_theta),
        (16, 4, 500000.0)
    );
    assert_eq!(
        (c.eos_token_ids.clone(), c.bos_token_id, c.rms_norm_eps),
        (vec![5, 6], Some(1), 1e-6)
    );
    assert!(c.tie_word_embeddings && !c.attention_bias && c.rope_scaling.is_none());
}

// ---------------------------------------------------------------------------
// The real SmolLM2-135M-Instruct GGUF
// ---------------------------------------------------------------------------

#[test]
fn smollm2_config_and_every_tensor_match_candle() {
    let Some(path) = smollm2() else { return };
    let m = load_gguf(&path, &Device::Cpu).unwrap();
    // SmolLM2-135M's published config.json.
    let want = ModelConfig {
        arch: Arch::Llama,
        vocab_size: 49152,
        hidden_size: 576,
        intermediate_size: 1536,
        num_hidden_layers: 30,
        num_attention_heads: 9,
        num_key_value_heads: 3,
        head_dim: 64,
        rms_norm_eps: f64::from(1e-5f32),
        rope_theta: 100_000.0,
        rope_scaling: None,
        max_position_embeddings: 8192,
        tie_word_embeddings: true,
        attention_bias: false,
        bos_token_id: Some(1),
        eos_token_ids: vec![2],
    };
    assert_eq!(m.config, want);
    assert_eq!(m.weights.len(), 2 + 30 * 9);

    let mut f = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut f).unwrap();
    let mut compared = 0;
    for name in content.tensor_infos.keys() {
        let hf = hf_tensor_name(name).unwrap();
        let theirs = content
            .tensor(&mut f, name, &Device::Cpu)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap();
        let mut ours = m.weights[&hf].clone();
        if name.ends_with("attn_q.weight") {
            ours = llama_cpp_permute(&ours, 9);
        } else if name.ends_with("attn_k.weight") {
            ours = llama_cpp_permute(&ours, 3);
        }
        assert_eq!(ours.dims(), theirs.dims(), "{name}");
        let diff = max_abs_diff(&ours, &theirs);
        assert_eq!(diff, 0.0, "{name}");
        compared += 1;
    }
    assert_eq!(compared, 272);
    assert!(m.chat_template.as_deref().unwrap().contains("<|im_start|>"));
}

#[test]
fn smollm2_truncated_copies_are_errors() {
    let Some(path) = smollm2() else { return };
    let bytes = std::fs::read(&path).unwrap();
    let g = GgufFile::open(&path).unwrap();
    let dir = scratch_dir("smollm2-cut");
    let cut_path = dir.join("smollm2-cut.gguf");
    let last = g.tensors.iter().max_by_key(|t| t.offset).unwrap();
    let cases: Vec<(usize, String)> = vec![
        (3, "not a GGUF file".into()),
        (20, "truncated or corrupted: the tensor count is 272".into()),
        (1000, "the tensor count is 272".into()),
        (10_000, "metadata key 'tokenizer.ggml.tokens'".into()),
        (400_000, "metadata key 'tokenizer.ggml.tokens'".into()),
        (1_500_000, "metadata key 'tokenizer.ggml.merges'".into()),
        (g.data_start as usize + 10, "truncated: tensor '".into()),
        (bytes.len() / 2, "truncated: tensor '".into()),
        (
            bytes.len() - 1,
            format!("truncated: tensor '{}'", last.name),
        ),
    ];
    for (cut, want) in cases {
        std::fs::write(&cut_path, &bytes[..cut]).unwrap();
        let msg = err_string(load_gguf(&cut_path, &Device::Cpu));
        assert!(
            msg.contains("smollm2-cut.gguf") && msg.contains(&want),
            "cut {cut}: {msg}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn smollm2_saved_as_hf_folder_round_trips() {
    let Some(path) = smollm2() else { return };
    let m = load_gguf(&path, &Device::Cpu).unwrap();
    let dir = scratch_dir("smollm2-hf");
    let out = dir.join("SmolLM2-135M-Instruct");
    save_hf_folder(
        &out,
        &m.config,
        &m.weights,
        &m.tokenizer,
        m.chat_template.as_deref(),
    )
    .unwrap();
    let back = load_hf_folder(&out, &Device::Cpu).unwrap();
    assert_eq!(back.config, m.config);
    assert_weights_equal(&back.weights, &m.weights);
    assert_eq!(back.chat_template, m.chat_template);
    for text in [
        "What is 12 + 30?",
        "<|im_start|>user\nx  12 ünï 🙂<|im_end|>\n",
    ] {
        assert_eq!(
            back.tokenizer.encode(text, true).unwrap(),
            m.tokenizer.encode(text, true).unwrap()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gguf_describe_lists_keys_and_tensor_types() {
    let dir = scratch_dir("describe");
    let cfg = tiny_config(Arch::Llama, true);
    let path = dir.join("d.gguf");
    let mut b = tiny_gguf(&cfg, &random_weights(&cfg, 3));
    // One Q8_0 tensor among the f32 ones: 32 elements = one 34-byte block.
    b = b.tensor("extra.weight", &[32], 8, vec![0; 34]);
    b.write(&path);
    let text = GgufFile::open(&path).unwrap().describe();
    // 2 general.* + 8 llama.* + 7 tokenizer.ggml.* + the chat template = 18 keys.
    assert!(
        text.contains("GGUF v3, 18 metadata keys, 21 tensors"),
        "{text}"
    );
    assert!(
        text.contains("  general.architecture = \"llama\"\n"),
        "{text}"
    );
    assert!(text.contains("  llama.block_count = 2\n"), "{text}");
    assert!(
        text.contains("  tokenizer.ggml.tokens = [260 x string]\n"),
        "{text}"
    );
    // 2 + 2 layers x 9 = 20 f32 tensors (tied: no output.weight), 1 Q8_0.
    assert!(
        text.contains("  tensor types: F32 x 20, Q8_0 x 1\n"),
        "{text}"
    );
}
