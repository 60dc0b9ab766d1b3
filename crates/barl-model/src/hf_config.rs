//! `config.json` and `generation_config.json` of a Hugging Face model folder as
//! serde structs that mirror the keys barl reads (as candle's model files do),
//! and the conversion to and from [`ModelConfig`]. Defaults for absent keys
//! follow transformers' `LlamaConfig` / `Qwen2Config`; unknown keys are
//! ignored, a key of the wrong type is named in the error.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::config::{Arch, Llama3RopeScaling, ModelConfig};

/// Why a config file was refused; the message names the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HfConfigError {
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("{0} should be a JSON object")]
    NotAnObject(&'static str),
    /// A key whose value has the wrong type, with serde's message.
    #[error("key '{key}': {message}")]
    BadValue { key: String, message: String },
    #[error("missing key '{0}'")]
    Missing(String),
    /// A setting barl does not support, or a value that breaks an invariant.
    #[error("{0}")]
    Unsupported(String),
}

/// A token id given as an integer or a list of integers (`eos_token_id`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    pub fn into_vec(self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![id],
            TokenIds::Many(ids) => ids,
        }
    }
}

/// `rope_scaling`, or transformers 5's `rope_parameters` (which also holds
/// `rope_theta`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct RopeJson {
    rope_type: Option<String>,
    /// The older name of `rope_type`.
    #[serde(rename = "type")]
    kind: Option<String>,
    rope_theta: Option<f64>,
    factor: Option<f64>,
    low_freq_factor: Option<f64>,
    high_freq_factor: Option<f64>,
    original_max_position_embeddings: Option<usize>,
}

/// The keys of `config.json` that barl reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct ConfigJson {
    model_type: Option<String>,
    architectures: Option<Vec<String>>,
    hidden_act: Option<String>,
    mlp_bias: Option<bool>,
    use_sliding_window: Option<bool>,
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_scaling: Option<RopeJson>,
    rope_parameters: Option<RopeJson>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    bos_token_id: Option<TokenIds>,
    eos_token_id: Option<TokenIds>,
}

/// The keys of `generation_config.json` that barl reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct GenerationConfigJson {
    pub bos_token_id: Option<TokenIds>,
    pub eos_token_id: Option<TokenIds>,
}

impl GenerationConfigJson {
    pub fn parse(text: &str) -> Result<Self, HfConfigError> {
        parse_object(text, "generation_config.json")
    }
}

/// Deserialises a JSON object; on a type error, names the first key whose
/// value fails (every field is optional, so each key is tried alone, and a
/// failing object is searched the same way).
fn parse_object<T: DeserializeOwned>(text: &str, what: &'static str) -> Result<T, HfConfigError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| HfConfigError::Json(e.to_string()))?;
    let obj = value.as_object().ok_or(HfConfigError::NotAnObject(what))?;
    // JSON null means "not set", as in transformers.
    let obj: Map<String, Value> = obj
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    T::deserialize(Value::Object(obj.clone())).map_err(|e| {
        let (key, message) =
            locate_bad_value::<T>(&obj, "", &|m| m).unwrap_or_else(|| (what.into(), e.to_string()));
        HfConfigError::BadValue { key, message }
    })
}

fn locate_bad_value<T: DeserializeOwned>(
    obj: &Map<String, Value>,
    prefix: &str,
    wrap: &dyn Fn(Map<String, Value>) -> Map<String, Value>,
) -> Option<(String, String)> {
    let single =
        |k: &str, v: Value| -> Map<String, Value> { [(k.to_string(), v)].into_iter().collect() };
    let check = |m: Map<String, Value>| T::deserialize(Value::Object(m)).map(drop);
    for (key, value) in obj {
        let Err(e) = check(wrap(single(key, value.clone()))) else {
            continue;
        };
        let dotted = format!("{prefix}{key}");
        if let Value::Object(inner) = value {
            if check(wrap(single(key, Value::Object(Map::new())))).is_ok() {
                let found = locate_bad_value::<T>(inner, &format!("{dotted}."), &|m| {
                    wrap(single(key, Value::Object(m)))
                });
                if found.is_some() {
                    return found;
                }
            }
        }
        return Some((dotted, e.to_string()));
    }
    None
}

/// `rope_scaling` / `rope_parameters` (named `key`): `None` for default
/// rotary, Llama 3 scaling, or an error.
fn rope_scaling(r: &RopeJson, key: &str) -> Result<Option<Llama3RopeScaling>, HfConfigError> {
    let need = |v: Option<f64>, name: &str| {
        v.ok_or_else(|| HfConfigError::Missing(format!("{key}.{name}")))
    };
    match r.rope_type.as_deref().or(r.kind.as_deref()) {
        None | Some("default") => Ok(None),
        Some("llama3") => Ok(Some(Llama3RopeScaling {
            factor: need(r.factor, "factor")?,
            low_freq_factor: need(r.low_freq_factor, "low_freq_factor")?,
            high_freq_factor: need(r.high_freq_factor, "high_freq_factor")?,
            original_max_position_embeddings: r.original_max_position_embeddings.ok_or_else(
                || HfConfigError::Missing(format!("{key}.original_max_position_embeddings")),
            )?,
        })),
        Some(other) => Err(HfConfigError::Unsupported(format!(
            "key '{key}.rope_type' is '{other}'; only 'llama3' rope scaling is supported"
        ))),
    }
}

impl ModelConfig {
    /// Parses a Hugging Face `config.json` for a Llama or Qwen2 model.
    pub fn from_hf_json(text: &str) -> Result<ModelConfig, HfConfigError> {
        let c: ConfigJson = parse_object(text, "config.json")?;
        let unsupported = |m: String| Err(HfConfigError::Unsupported(m));
        let arch_name = match (
            &c.model_type,
            c.architectures.as_ref().and_then(|a| a.first()),
        ) {
            (Some(t), _) => t.clone(),
            (None, Some(a)) => a.clone(),
            (None, None) => return Err(HfConfigError::Missing("model_type".into())),
        };
        let arch = match arch_name.as_str() {
            "llama" | "LlamaForCausalLM" => Arch::Llama,
            "qwen2" | "Qwen2ForCausalLM" => Arch::Qwen2,
            other => {
                return unsupported(format!(
                    "key 'model_type': unknown architecture '{other}' (supported: llama, qwen2)"
                ))
            }
        };
        if let Some(act) = c.hidden_act.as_deref().filter(|a| *a != "silu") {
            return unsupported(format!(
                "key 'hidden_act' is '{act}'; only 'silu' is supported"
            ));
        }
        if c.mlp_bias == Some(true) {
            return unsupported("key 'mlp_bias' is true; MLP biases are not supported".into());
        }
        if c.use_sliding_window == Some(true) {
            return unsupported(
                "key 'use_sliding_window' is true; sliding-window attention is not supported"
                    .into(),
            );
        }
        let need =
            |v: Option<usize>, name: &str| v.ok_or_else(|| HfConfigError::Missing(name.into()));
        let hidden_size = need(c.hidden_size, "hidden_size")?;
        let num_attention_heads = need(c.num_attention_heads, "num_attention_heads")?;
        if num_attention_heads == 0 {
            return unsupported("key 'num_attention_heads' must be positive".into());
        }
        // transformers >= 5 moves rope_theta and the scaling into `rope_parameters`.
        let rope_theta = c
            .rope_theta
            .or(c.rope_parameters.as_ref().and_then(|p| p.rope_theta))
            .unwrap_or(10_000.0);
        let scaling = match &c.rope_scaling {
            Some(r) => rope_scaling(r, "rope_scaling")?,
            None => None,
        };
        let scaling = match (scaling, &c.rope_parameters) {
            (Some(s), _) => Some(s),
            (None, Some(p)) => rope_scaling(p, "rope_parameters")?,
            (None, None) => None,
        };
        let (default_max_pos, default_bias) = match arch {
            Arch::Llama => (2048, false),
            Arch::Qwen2 => (32768, true),
        };
        let cfg = ModelConfig {
            arch,
            vocab_size: need(c.vocab_size, "vocab_size")?,
            hidden_size,
            intermediate_size: need(c.intermediate_size, "intermediate_size")?,
            num_hidden_layers: need(c.num_hidden_layers, "num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads: c.num_key_value_heads.unwrap_or(num_attention_heads),
            head_dim: c.head_dim.unwrap_or(hidden_size / num_attention_heads),
            rms_norm_eps: c.rms_norm_eps.unwrap_or(1e-6),
            rope_theta,
            rope_scaling: scaling,
            max_position_embeddings: c.max_position_embeddings.unwrap_or(default_max_pos),
            tie_word_embeddings: c.tie_word_embeddings.unwrap_or(false),
            // Qwen2 always has q/k/v biases; Llama has them only with `attention_bias`.
            attention_bias: match arch {
                Arch::Qwen2 => true,
                Arch::Llama => c.attention_bias.unwrap_or(default_bias),
            },
            bos_token_id: c.bos_token_id.and_then(|b| b.into_vec().first().copied()),
            eos_token_ids: c.eos_token_id.map(TokenIds::into_vec).unwrap_or_default(),
        };
        cfg.validate()
            .map_err(|e| HfConfigError::Unsupported(e.to_string()))?;
        Ok(cfg)
    }

    /// The Hugging Face `config.json` object for this configuration; `torch_dtype` is
    /// the dtype the weights are saved in (`"float32"` or `"bfloat16"`).
    pub fn to_hf_json(&self, torch_dtype: &str) -> Value {
        let (architecture, model_type) = self.arch.hf_names();
        let eos = match self.eos_token_ids.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        let rope_scaling = match &self.rope_scaling {
            None => Value::Null,
            Some(s) => json!({
                "rope_type": "llama3",
                "factor": s.factor,
                "low_freq_factor": s.low_freq_factor,
                "high_freq_factor": s.high_freq_factor,
                "original_max_position_embeddings": s.original_max_position_embeddings,
            }),
        };
        let mut c = json!({
            "architectures": [architecture],
            "model_type": model_type,
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": rope_scaling,
            "vocab_size": self.vocab_size,
            "tie_word_embeddings": self.tie_word_embeddings,
            "max_position_embeddings": self.max_position_embeddings,
            "torch_dtype": torch_dtype,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": eos,
            "attention_dropout": 0.0,
            "initializer_range": 0.02,
            "use_cache": true,
        });
        let obj = c.as_object_mut().expect("a JSON object literal");
        match self.arch {
            Arch::Llama => {
                obj.insert("attention_bias".into(), json!(self.attention_bias));
                obj.insert("mlp_bias".into(), json!(false));
                obj.insert("pretraining_tp".into(), json!(1));
            }
            Arch::Qwen2 => {
                obj.insert("use_sliding_window".into(), json!(false));
                obj.insert("sliding_window".into(), json!(self.max_position_embeddings));
                obj.insert("max_window_layers".into(), json!(self.num_hidden_layers));
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"{"model_type": "llama", "vocab_size": 8, "hidden_size": 8,
        "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2"#;

    fn parse(extra: &str) -> Result<ModelConfig, HfConfigError> {
        ModelConfig::from_hf_json(&format!("{BASE}{extra}}}"))
    }

    #[test]
    fn defaults_nulls_and_transformers_5_rope_parameters() {
        let c = parse(r#", "rope_theta": null, "eos_token_id": [2, 3]"#).unwrap();
        assert_eq!(
            (c.rope_theta, c.head_dim, c.num_key_value_heads),
            (10_000.0, 4, 2)
        );
        assert_eq!(
            (c.max_position_embeddings, c.eos_token_ids),
            (2048, vec![2, 3])
        );
        let c = parse(
            r#", "rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0,
                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192}"#,
        )
        .unwrap();
        assert_eq!(c.rope_theta, 5e5);
        assert_eq!(c.rope_scaling.map(|s| s.factor), Some(8.0));
    }

    #[test]
    fn the_key_at_fault_is_named_even_when_nested() {
        let e = parse(r#", "rope_scaling": {"factor": "big"}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("key 'rope_scaling.factor': invalid type"),
            "{e}"
        );
        let e = parse(r#", "eos_token_id": "x""#).unwrap_err();
        assert!(e.to_string().starts_with("key 'eos_token_id'"), "{e}");
        assert_eq!(
            ModelConfig::from_hf_json(r#"{"model_type": "llama"}"#).unwrap_err(),
            HfConfigError::Missing("hidden_size".into())
        );
        assert_eq!(
            ModelConfig::from_hf_json("[1]").unwrap_err(),
            HfConfigError::NotAnObject("config.json")
        );
    }
}
