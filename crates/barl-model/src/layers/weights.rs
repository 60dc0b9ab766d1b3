//! The Hugging Face tensor list of a Llama/Qwen2 shape, random initial weights, and turning weights into trainable variables.

use crate::{Arch, ModelConfig, ModelError};
use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// The Hugging Face tensors a Llama/Qwen2 model of this shape has, with their
/// shapes, in the fixed order of [`CausalLm::named_vars`]. q/k/v carry a bias
/// for Qwen2 and for Llama configs with `attention_bias`.
pub fn expected_tensors(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let h = cfg.hidden_size;
    let q = cfg.num_attention_heads * cfg.head_dim;
    let kv = cfg.num_key_value_heads * cfg.head_dim;
    let bias = has_qkv_bias(cfg);
    let mut out = vec![(
        "model.embed_tokens.weight".to_string(),
        vec![cfg.vocab_size, h],
    )];
    for i in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{i}");
        out.push((format!("{p}.input_layernorm.weight"), vec![h]));
        for (name, n) in [("q_proj", q), ("k_proj", kv), ("v_proj", kv)] {
            out.push((format!("{p}.self_attn.{name}.weight"), vec![n, h]));
            if bias {
                out.push((format!("{p}.self_attn.{name}.bias"), vec![n]));
            }
        }
        out.push((format!("{p}.self_attn.o_proj.weight"), vec![h, q]));
        out.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
        out.push((
            format!("{p}.mlp.gate_proj.weight"),
            vec![cfg.intermediate_size, h],
        ));
        out.push((
            format!("{p}.mlp.up_proj.weight"),
            vec![cfg.intermediate_size, h],
        ));
        out.push((
            format!("{p}.mlp.down_proj.weight"),
            vec![h, cfg.intermediate_size],
        ));
    }
    out.push(("model.norm.weight".to_string(), vec![h]));
    if !cfg.tie_word_embeddings {
        out.push(("lm_head.weight".to_string(), vec![cfg.vocab_size, h]));
    }
    out
}

/// Whether q/k/v projections carry a bias.
pub(crate) fn has_qkv_bias(cfg: &ModelConfig) -> bool {
    cfg.arch == Arch::Qwen2 || cfg.attention_bias
}

/// Random weights for a model of this shape, deterministic in `seed`:
/// matrices `N(0, 0.02^2)`, biases `N(0, 0.02^2)`, norm weights `1 + N(0, 0.1^2)`
/// (not all ones, so tests see the norm weights act). For tests, benchmarks
/// and training from scratch.
pub fn random_weights(
    cfg: &ModelConfig,
    seed: u64,
    device: &Device,
) -> Result<HashMap<String, Tensor>, ModelError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = HashMap::new();
    for (name, shape) in expected_tensors(cfg) {
        let n: usize = shape.iter().product();
        let norm = name.ends_with("layernorm.weight") || name == "model.norm.weight";
        let data: Vec<f32> = (0..n)
            .map(|_| {
                let z = standard_normal(&mut rng);
                if norm {
                    1.0 + 0.1 * z
                } else {
                    0.02 * z
                }
            })
            .collect();
        out.insert(name, Tensor::from_vec(data, shape, device)?);
    }
    Ok(out)
}

/// One draw from N(0, 1) by the Box-Muller transform.
pub(super) fn standard_normal<R: Rng>(rng: &mut R) -> f32 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // in (0, 1], so the log is finite
    let u2: f64 = rng.gen::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// Takes the tensors of [`expected_tensors`] out of `weights` as f32 [`Var`]s
/// on `device`; the error names a missing or misshapen tensor.
pub(crate) fn take_vars(
    cfg: &ModelConfig,
    weights: &HashMap<String, Tensor>,
    device: &Device,
) -> Result<Vec<(String, Var)>, ModelError> {
    cfg.validate()
        .map_err(|e| ModelError::Config(e.to_string()))?;
    expected_tensors(cfg)
        .into_iter()
        .map(|(name, shape)| {
            let t = weights
                .get(&name)
                .ok_or_else(|| ModelError::Config(format!("missing tensor {name}")))?;
            if t.dims() != shape.as_slice() {
                return Err(ModelError::Config(format!(
                    "tensor {name}: expected shape {shape:?}, found {:?}",
                    t.dims()
                )));
            }
            let t = t.to_dtype(DType::F32)?.to_device(device)?;
            Ok((name, Var::from_tensor(&t)?))
        })
        .collect()
}
