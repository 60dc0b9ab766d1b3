//! Loading and saving models: the GGUF reader (against candle's reader and
//! dequantizer as a second implementation, and hand-computed blocks), the q/k
//! un-permutation, the error paths for truncated or corrupted files, and the
//! real SmolLM2 checks (Hugging Face folders: `hf_folders.rs`). Tests on the real SmolLM2 GGUF need
//! `BARL_SMOLLM2` (see `loading_support::smollm2`).

mod loading_support;

use std::path::Path;

use barl_model::gguf::{
    dequantize, hf_tensor_name, unpermute_qk, GgmlType, GgufArray, GgufFile, GgufValue,
};
use barl_model::testing::max_abs_diff;
use barl_model::{load_gguf, load_hf_folder, Arch, ModelConfig};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use half::f16;
use loading_support::*;

// ---------------------------------------------------------------------------
// Synthetic models

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
fn convert_refuses_to_overwrite_its_input() {
    let dir = scratch_dir("convert-self");
    let cfg = tiny_config(Arch::Llama, true);
    let path = dir.join("tiny.gguf");
    tiny_gguf(&cfg, &random_weights(&cfg, 3)).write(&path);
    let e = barl_model::convert(&path, &path, candle_core::DType::F32).unwrap_err();
    assert!(
        e.to_string().contains("is the model being converted"),
        "{e}"
    );
    assert!(load_gguf(&path, &Device::Cpu).is_ok());
    let e = barl_model::convert(
        &dir.join("none.gguf"),
        &dir.join("out"),
        candle_core::DType::F32,
    )
    .unwrap_err();
    assert!(e.to_string().ends_with("none.gguf: does not exist"), "{e}");
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
    *b.kv_mut("llama.block_count") = kv_str("two");
    assert!(load_err(&dir, "type.gguf", &b.bytes())
        .contains("'llama.block_count' should be a non-negative integer"));

    // Unsupported quantization type (Q5_K = 13) on one tensor.
    let mut b = tiny_gguf(&cfg, &weights);
    let t = b.tensor_mut("blk.1.ffn_up.weight");
    t.2 = 13;
    let msg = load_err(&dir, "quant.gguf", &b.bytes());
    assert!(
        msg.contains("'blk.1.ffn_up.weight'") && msg.contains("Q5_K"),
        "{msg}"
    );
    // A row length that is not a whole number of blocks (Q8_0 needs 32).
    let mut b = tiny_gguf(&cfg, &weights);
    let t = b.tensor_mut("output_norm.weight");
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
    let t = b.tensor_mut("blk.0.attn_v.weight");
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
    *b.kv_mut("tokenizer.ggml.model") = kv_str("bert");
    assert!(
        load_err(&dir, "tokmodel.gguf", &b.bytes()).contains("'tokenizer.ggml.model' is 'bert'")
    );
    let mut b = tiny_gguf(&cfg, &weights);
    *b.kv_mut("tokenizer.ggml.pre") = kv_str("mystery");
    assert!(load_err(&dir, "tokpre.gguf", &b.bytes()).contains("'tokenizer.ggml.pre' is 'mystery'"));
}

// ---------------------------------------------------------------------------
// Hugging Face folders
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
fn smollm2_converted_to_an_hf_folder_round_trips() {
    let Some(path) = smollm2() else { return };
    let m = load_gguf(&path, &Device::Cpu).unwrap();
    let dir = scratch_dir("smollm2-hf");
    let out = dir.join("SmolLM2-135M-Instruct");
    let c = barl_model::convert(&path, &out, candle_core::DType::F32).unwrap();
    // 30 layers of 9 tensors, the embedding and the final norm (the head is
    // tied): 30 * (2 * 576^2 + 2 * 576 * 192 + 3 * 576 * 1536 + 2 * 576)
    // + 49152 * 576 + 576 parameters.
    assert_eq!((c.tensors, c.parameters), (272, 134_515_008));
    assert!(c.chat_template);
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
