//! What every loader returns, and the check that a set of weights fits a
//! configuration (shared by the Hugging Face and GGUF loaders).

use std::collections::HashMap;

use candle_core::Tensor;

use crate::config::ModelConfig;
use crate::tokenizer::Tokenizer;

/// The tensors a model of this shape has (one list, shared with the model code).
pub use crate::layers::expected_tensors;

/// A model read from disk: configuration, f32 weights under Hugging Face names,
/// tokenizer and chat template.
#[derive(Debug)]
pub struct LoadedModel {
    pub config: ModelConfig,
    pub weights: HashMap<String, Tensor>,
    pub tokenizer: Tokenizer,
    pub chat_template: Option<String>,
}

/// How a set of weights fails to fit a configuration (the first offending
/// tensor).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum WeightMismatch {
    #[error("missing tensor '{0}'")]
    Missing(String),
    #[error("tensor '{name}' has shape {got:?}, expected {expected:?}")]
    Shape {
        name: String,
        got: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("unexpected tensor '{0}' for this configuration")]
    Unexpected(String),
}

/// Checks that `weights` has exactly the tensors of [`expected_tensors`], with the
/// right shapes.
pub fn check_weights(
    cfg: &ModelConfig,
    weights: &HashMap<String, Tensor>,
) -> Result<(), WeightMismatch> {
    let expected = expected_tensors(cfg);
    for (name, shape) in &expected {
        let t = weights
            .get(name)
            .ok_or_else(|| WeightMismatch::Missing(name.clone()))?;
        if t.dims() != shape.as_slice() {
            return Err(WeightMismatch::Shape {
                name: name.clone(),
                got: t.dims().to_vec(),
                expected: shape.clone(),
            });
        }
    }
    if weights.len() != expected.len() {
        let known: std::collections::HashSet<&str> =
            expected.iter().map(|(n, _)| n.as_str()).collect();
        let mut extra: Vec<&String> = weights
            .keys()
            .filter(|k| !known.contains(k.as_str()))
            .collect();
        extra.sort();
        if let Some(e) = extra.first() {
            return Err(WeightMismatch::Unexpected((*e).clone()));
        }
    }
    Ok(())
}
