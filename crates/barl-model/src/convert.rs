//! Any model barl loads (GGUF, quantised or not, or a Hugging Face folder)
//! written as a Hugging Face folder that transformers and vLLM load: what
//! `barl convert` runs.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use crate::hf::save_hf_folder_as;
use crate::{load_gguf, load_hf_folder, LoadedModel, ModelError};

/// Loads `path`: a directory as a Hugging Face folder, a file as GGUF.
pub fn load_model(path: &Path, device: &Device) -> Result<LoadedModel, ModelError> {
    if !path.exists() {
        return Err(ModelError::File {
            file: path.to_path_buf(),
            msg: "does not exist".into(),
        });
    }
    if path.is_dir() {
        load_hf_folder(path, device)
    } else {
        load_gguf(path, device)
    }
}

/// What [`convert`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Converted {
    pub out: PathBuf,
    /// Tensors in `model.safetensors` (a tied head has no `lm_head.weight`).
    pub tensors: usize,
    /// Parameters over those tensors.
    pub parameters: usize,
    /// Whether the model has a chat template (written to `tokenizer_config.json`).
    pub chat_template: bool,
}

/// Reads the model at `input` and writes it to the folder `out` with weights
/// in `dtype` (F32 or BF16): `config.json`, `model.safetensors`,
/// `tokenizer.json`, `tokenizer_config.json` (with the chat template) and
/// `generation_config.json`. GGUF weights arrive dequantised and with
/// llama.cpp's q/k permutation undone, so the folder is in Hugging Face's
/// layout. `out` is written atomically, replacing an existing folder; it may
/// not be `input` itself.
pub fn convert(input: &Path, out: &Path, dtype: DType) -> Result<Converted, ModelError> {
    let same = match (input.canonicalize(), out.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(ModelError::File {
            file: out.to_path_buf(),
            msg: "is the model being converted; write to another folder".into(),
        });
    }
    let m = load_model(input, &Device::Cpu)?;
    write(m, out, dtype)
}

/// `barl merge`: the model `base` (anything [`load_model`] reads) with the
/// PEFT LoRA adapter in the folder `adapter` merged in (`W + s B A`, see
/// [`crate::lora`]), written as a Hugging Face folder `out` as [`convert`] does.
pub fn merge(
    adapter: &Path,
    base: &Path,
    out: &Path,
    dtype: DType,
) -> Result<Converted, ModelError> {
    let a = crate::lora::load_adapter(adapter, &Device::Cpu)?;
    let mut m = load_model(base, &Device::Cpu)?;
    crate::lora::merge_adapter(&m.config, &mut m.weights, &a.config, &a.weights).map_err(|e| {
        ModelError::File {
            file: adapter.to_path_buf(),
            msg: format!("does not fit {}: {e}", base.display()),
        }
    })?;
    write(m, out, dtype)
}

/// Saves a loaded model as a folder and counts what it wrote.
fn write(m: LoadedModel, out: &Path, dtype: DType) -> Result<Converted, ModelError> {
    save_hf_folder_as(
        out,
        &m.config,
        &m.weights,
        &m.tokenizer,
        m.chat_template.as_deref(),
        dtype,
    )?;
    let saved = m
        .weights
        .iter()
        .filter(|(n, _)| !(m.config.tie_word_embeddings && *n == "lm_head.weight"));
    let (tensors, parameters) = saved.fold((0, 0), |(t, p), (_, w)| (t + 1, p + w.elem_count()));
    Ok(Converted {
        out: out.to_path_buf(),
        tensors,
        parameters,
        chat_template: m.chat_template.is_some(),
    })
}
