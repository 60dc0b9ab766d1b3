//! LoRA adapters (Hu et al., 2021) on the Llama/Qwen2 projections, saved and
//! read in PEFT's layout so transformers + PEFT and vLLM load them.
//!
//! An adapted projection keeps its weight `W` `(out, in)` frozen and adds a
//! trained low-rank update:
//!
//! ```text
//! y = x W^T (+ b) + s * dropout(x) A^T B^T     A: (r, in), B: (out, r)
//! s = alpha / r            (alpha / sqrt(r) with use_rslora)
//! ```
//!
//! `A` starts as PEFT's default (Kaiming-uniform, `U(-1/sqrt(in), 1/sqrt(in))`)
//! and `B = 0`, so the adapted model starts as the base model. Merging writes
//! `W + s B A` in place of `W`.
//!
//! A PEFT adapter folder holds `adapter_config.json` (`peft_type = "LORA"`,
//! `r`, `lora_alpha`, `lora_dropout`, `target_modules`, ...) and
//! `adapter_model.safetensors` with tensors named
//! `base_model.model.<module>.lora_A.weight` / `.lora_B.weight`, `<module>`
//! being the Hugging Face path (`model.layers.3.self_attn.q_proj`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::{ModelConfig, ModelError};

/// The projections LoRA can adapt: (block, PEFT module name), in layer order.
/// `all-linear` means all seven (PEFT's `all-linear` leaves out the output head).
pub const PROJECTIONS: [(&str, &str); 7] = [
    ("self_attn", "q_proj"),
    ("self_attn", "k_proj"),
    ("self_attn", "v_proj"),
    ("self_attn", "o_proj"),
    ("mlp", "gate_proj"),
    ("mlp", "up_proj"),
    ("mlp", "down_proj"),
];

/// The hyper-parameters of an adapter.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraConfig {
    /// `r`: the rank of the update.
    pub rank: usize,
    /// `lora_alpha`: the update is scaled by `alpha / rank`.
    pub alpha: f64,
    /// `lora_dropout`: dropout on the adapter's input, in training forwards only.
    pub dropout: f64,
    /// PEFT module names (`q_proj`, ..., `down_proj`) or `all-linear`.
    pub target_modules: Vec<String>,
    /// `use_rslora`: scale by `alpha / sqrt(rank)` instead.
    pub use_rslora: bool,
}

impl LoraConfig {
    /// `s` of the update.
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.rank as f64).sqrt()
        } else {
            self.alpha / self.rank as f64
        }
    }

    /// The error names the offending key (as the `[lora]` table spells it).
    pub fn validate(&self) -> Result<(), String> {
        if self.rank == 0 {
            return Err("lora.rank: must be at least 1".into());
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(format!(
                "lora.alpha: must be a positive number, got {}",
                self.alpha
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!(
                "lora.dropout: must be in [0, 1), got {}",
                self.dropout
            ));
        }
        if self.target_modules.is_empty() {
            return Err(
                "lora.target_modules: empty; name projections or use \"all-linear\"".into(),
            );
        }
        for m in &self.target_modules {
            if m != "all-linear" && !PROJECTIONS.iter().any(|(_, p)| p == m) {
                return Err(format!(
                    "lora.target_modules: unknown module {m:?} (q_proj, k_proj, v_proj, \
                     o_proj, gate_proj, up_proj, down_proj or all-linear)"
                ));
            }
        }
        Ok(())
    }

    /// The adapted projections' names, in [`PROJECTIONS`] order (`all-linear`
    /// written out, as PEFT saves it).
    pub fn targeted(&self) -> Vec<&'static str> {
        PROJECTIONS
            .iter()
            .map(|(_, p)| *p)
            .filter(|p| self.targets(p))
            .collect()
    }

    /// The same adapter shape and scaling (`all-linear` equal to the seven names).
    pub fn equivalent(&self, other: &LoraConfig) -> bool {
        (self.rank, self.alpha, self.dropout, self.use_rslora)
            == (other.rank, other.alpha, other.dropout, other.use_rslora)
            && self.targeted() == other.targeted()
    }

    /// Whether projection `name` (`q_proj`, ...) is adapted.
    pub fn targets(&self, name: &str) -> bool {
        self.target_modules
            .iter()
            .any(|m| m == "all-linear" || m == name)
    }
}

/// One adapted projection of a model: its Hugging Face path and `(in, out)`.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptedModule {
    /// `model.layers.N.self_attn.q_proj`.
    pub path: String,
    pub fan_in: usize,
    pub fan_out: usize,
}

impl AdaptedModule {
    /// PEFT's tensor name of `lora_A` (`which = 'A'`) or `lora_B`.
    pub fn key(&self, which: char) -> String {
        format!("base_model.model.{}.lora_{which}.weight", self.path)
    }
}

/// The projections of `model` that `lora` adapts, layer by layer in
/// [`PROJECTIONS`] order (the order of the trainable variables).
pub fn adapted_modules(model: &ModelConfig, lora: &LoraConfig) -> Vec<AdaptedModule> {
    let h = model.hidden_size;
    let q = model.num_attention_heads * model.head_dim;
    let kv = model.num_key_value_heads * model.head_dim;
    let ff = model.intermediate_size;
    let mut out = Vec::new();
    for i in 0..model.num_hidden_layers {
        for (block, name) in PROJECTIONS {
            if !lora.targets(name) {
                continue;
            }
            let (fan_in, fan_out) = match name {
                "q_proj" => (h, q),
                "k_proj" | "v_proj" => (h, kv),
                "o_proj" => (q, h),
                "gate_proj" | "up_proj" => (h, ff),
                _ => (ff, h),
            };
            out.push(AdaptedModule {
                path: format!("model.layers.{i}.{block}.{name}"),
                fan_in,
                fan_out,
            });
        }
    }
    out
}

/// A fresh adapter, deterministic in `seed`: `A ~ U(-1/sqrt(in), 1/sqrt(in))`
/// (PEFT's Kaiming-uniform with `a = sqrt(5)`), `B = 0`.
pub fn init_adapter(
    model: &ModelConfig,
    lora: &LoraConfig,
    seed: u64,
    device: &Device,
) -> Result<HashMap<String, Tensor>, ModelError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = HashMap::new();
    for m in adapted_modules(model, lora) {
        let bound = 1.0 / (m.fan_in as f32).sqrt();
        let a: Vec<f32> = (0..lora.rank * m.fan_in)
            .map(|_| rng.gen_range(-bound..bound))
            .collect();
        out.insert(
            m.key('A'),
            Tensor::from_vec(a, (lora.rank, m.fan_in), device)?,
        );
        out.insert(
            m.key('B'),
            Tensor::zeros((m.fan_out, lora.rank), DType::F32, device)?,
        );
    }
    Ok(out)
}

/// Checks that `weights` holds exactly the `lora_A`/`lora_B` tensors `lora`
/// gives `model`, with their shapes; the error names the first one that does not.
pub fn check_adapter(
    model: &ModelConfig,
    lora: &LoraConfig,
    weights: &HashMap<String, Tensor>,
) -> Result<(), String> {
    let mods = adapted_modules(model, lora);
    for m in &mods {
        for (which, shape) in [('A', [lora.rank, m.fan_in]), ('B', [m.fan_out, lora.rank])] {
            let key = m.key(which);
            let t = weights
                .get(&key)
                .ok_or_else(|| format!("missing tensor {key}"))?;
            if t.dims() != shape {
                return Err(format!(
                    "tensor {key}: shape {:?}, expected {shape:?}",
                    t.dims()
                ));
            }
        }
    }
    if weights.len() != 2 * mods.len() {
        let known: std::collections::HashSet<String> =
            mods.iter().flat_map(|m| [m.key('A'), m.key('B')]).collect();
        if let Some(extra) = weights.keys().find(|k| !known.contains(*k)) {
            return Err(format!(
                "unexpected tensor {extra} (only lora_A/lora_B of the target modules are \
                 supported)"
            ));
        }
    }
    Ok(())
}

/// An adapter read from a folder.
#[derive(Debug)]
pub struct Adapter {
    pub config: LoraConfig,
    /// f32, under PEFT's names.
    pub weights: HashMap<String, Tensor>,
    /// `base_model_name_or_path` as written.
    pub base_model: String,
}

fn file_err(file: &Path, msg: impl Into<String>) -> ModelError {
    ModelError::File {
        file: file.to_path_buf(),
        msg: msg.into(),
    }
}

/// Writes `dir/adapter_config.json` and `dir/adapter_model.safetensors`
/// (f32) atomically: into a temporary folder beside `dir`, then renamed.
pub fn save_adapter(
    dir: &Path,
    lora: &LoraConfig,
    weights: &HashMap<String, Tensor>,
    base_model: &str,
) -> Result<(), ModelError> {
    let targets = lora.targeted();
    let config = json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": lora.rank,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "target_modules": targets,
        "use_rslora": lora.use_rslora,
        "use_dora": false,
        "bias": "none",
        "fan_in_fan_out": false,
        "init_lora_weights": true,
        "inference_mode": true,
        "modules_to_save": null,
        "layers_to_transform": null,
        "rank_pattern": {},
        "alpha_pattern": {},
    });
    let tmp = crate::hf::temp_beside(dir)?;
    let result = (|| {
        let p = tmp.join("adapter_config.json");
        let text =
            serde_json::to_string_pretty(&config).map_err(|e| file_err(&p, e.to_string()))?;
        std::fs::write(&p, text + "\n").map_err(|e| file_err(&p, format!("cannot write: {e}")))?;
        let p = tmp.join("adapter_model.safetensors");
        let cpu: HashMap<String, Tensor> = weights
            .iter()
            .map(|(k, t)| Ok((k.clone(), t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?)))
            .collect::<Result<_, candle_core::Error>>()?;
        candle_core::safetensors::save(&cpu, &p)
            .map_err(|e| file_err(&p, format!("cannot write: {e}")))?;
        crate::hf::readable_by_all(&p)?;
        crate::hf::replace_dir(&tmp, dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Whether `dir` looks like an adapter folder.
pub fn is_adapter_dir(dir: &Path) -> bool {
    dir.join("adapter_config.json").is_file()
}

/// Reads a PEFT LoRA folder. Settings barl does not implement (DoRA,
/// per-layer ranks, `modules_to_save`, biases, regex targets) are refused by name.
pub fn load_adapter(dir: &Path, device: &Device) -> Result<Adapter, ModelError> {
    let cp: PathBuf = dir.join("adapter_config.json");
    let text =
        std::fs::read_to_string(&cp).map_err(|e| file_err(&cp, format!("cannot read: {e}")))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| file_err(&cp, format!("not JSON: {e}")))?;
    let bad = |key: &str, msg: String| file_err(&cp, format!("{key}: {msg}"));
    let peft_type = v.get("peft_type").and_then(Value::as_str).unwrap_or("");
    if peft_type != "LORA" {
        return Err(bad(
            "peft_type",
            format!("{peft_type:?}; only \"LORA\" is supported"),
        ));
    }
    let rank = v
        .get("r")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("r", "missing or not a whole number".into()))? as usize;
    let alpha = match v.get("lora_alpha") {
        None => 8.0, // PEFT's default
        Some(a) => a
            .as_f64()
            .ok_or_else(|| bad("lora_alpha", format!("{a} is not a number")))?,
    };
    let dropout = v.get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0);
    let flag = |key: &str| v.get(key).and_then(Value::as_bool).unwrap_or(false);
    for key in ["use_dora", "fan_in_fan_out"] {
        if flag(key) {
            return Err(bad(key, "true is not supported".into()));
        }
    }
    let bias = v.get("bias").and_then(Value::as_str).unwrap_or("none");
    if bias != "none" {
        return Err(bad("bias", format!("{bias:?}; only \"none\" is supported")));
    }
    for key in ["rank_pattern", "alpha_pattern"] {
        if v.get(key)
            .and_then(Value::as_object)
            .is_some_and(|o| !o.is_empty())
        {
            return Err(bad(key, "per-module ranks are not supported".into()));
        }
    }
    for key in ["modules_to_save", "layers_to_transform"] {
        if v.get(key).is_some_and(|x| !x.is_null()) {
            return Err(bad(key, "not supported (must be null)".into()));
        }
    }
    let target_modules: Vec<String> = match v.get("target_modules") {
        Some(Value::String(s)) if s == "all-linear" => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|m| {
                m.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad("target_modules", format!("{m} is not a name")))
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(bad(
                "target_modules",
                format!("{other:?}; a list of names or \"all-linear\" (regexes are not supported)"),
            ))
        }
    };
    let config = LoraConfig {
        rank,
        alpha,
        dropout,
        target_modules,
        use_rslora: flag("use_rslora"),
    };
    config.validate().map_err(|e| file_err(&cp, e))?;
    let wp = dir.join("adapter_model.safetensors");
    let raw = candle_core::safetensors::load(&wp, device)
        .map_err(|e| file_err(&wp, format!("cannot read: {e}")))?;
    let weights = raw
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?)))
        .collect::<Result<_, candle_core::Error>>()?;
    Ok(Adapter {
        config,
        weights,
        base_model: v
            .get("base_model_name_or_path")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    })
}

/// `W <- W + s B A` for every adapted projection of `weights` (Hugging Face
/// names): the merged model computes what the adapted one does.
pub fn merge_adapter(
    model: &ModelConfig,
    weights: &mut HashMap<String, Tensor>,
    lora: &LoraConfig,
    adapter: &HashMap<String, Tensor>,
) -> Result<(), ModelError> {
    check_adapter(model, lora, adapter).map_err(ModelError::Config)?;
    for m in adapted_modules(model, lora) {
        let key = format!("{}.weight", m.path);
        let w = weights
            .get(&key)
            .ok_or_else(|| ModelError::Config(format!("missing tensor {key}")))?;
        let a = adapter[&m.key('A')].to_device(w.device())?;
        let b = adapter[&m.key('B')].to_device(w.device())?;
        let delta = (b.matmul(&a)? * lora.scale())?.to_dtype(w.dtype())?;
        let merged = (w + delta)?;
        weights.insert(key, merged);
    }
    Ok(())
}
