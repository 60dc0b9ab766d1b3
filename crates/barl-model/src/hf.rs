//! Hugging Face model folders: loading and saving.
//!
//! A folder holds `config.json`, the weights (`model.safetensors`, or shards listed
//! in `model.safetensors.index.json`), `tokenizer.json`, and optionally
//! `tokenizer_config.json` (chat template, special tokens) and
//! `generation_config.json` (eos ids). Saving writes the same files, into a
//! temporary folder first that is then renamed into place, so a reader never sees a
//! half-written checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value};

use crate::config::ModelConfig;
use crate::hf_config::{GenerationConfigJson, TokenIds};
use crate::tokenizer::Tokenizer;
use crate::ModelError;

pub use crate::loaded::{check_weights, expected_tensors, LoadedModel};

fn file_err(file: &Path, msg: impl Into<String>) -> ModelError {
    ModelError::File {
        file: file.to_path_buf(),
        msg: msg.into(),
    }
}

fn read_json(path: &Path) -> Result<Value, ModelError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| file_err(path, format!("invalid JSON: {e}")))
}

/// Converts one safetensors tensor to f32 values.
fn view_to_f32(view: &safetensors::tensor::TensorView<'_>) -> Result<Vec<f32>, String> {
    use safetensors::Dtype;
    let b = view.data();
    Ok(match view.dtype() {
        Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => return Err(format!("dtype {other:?} is not supported (F32, F16, BF16)")),
    })
}

/// Reads every tensor of one safetensors file (or only `only`, if given) as f32.
fn read_safetensors(
    path: &Path,
    only: Option<&[&str]>,
    device: &Device,
    out: &mut HashMap<String, Tensor>,
) -> Result<(), ModelError> {
    let file =
        std::fs::File::open(path).map_err(|e| file_err(path, format!("cannot open: {e}")))?;
    // SAFETY: read-only map of a weights file that must not be truncated while loading.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .map_err(|e| file_err(path, format!("cannot memory-map: {e}")))?;
    let st = safetensors::SafeTensors::deserialize(&map)
        .map_err(|e| file_err(path, format!("not a valid safetensors file: {e}")))?;
    let names: Vec<String> = match only {
        Some(list) => list.iter().map(|s| s.to_string()).collect(),
        None => st.names().into_iter().map(str::to_string).collect(),
    };
    for name in names {
        let view = st
            .tensor(&name)
            .map_err(|e| file_err(path, format!("tensor '{name}': {e}")))?;
        let data =
            view_to_f32(&view).map_err(|m| file_err(path, format!("tensor '{name}': {m}")))?;
        let t = Tensor::from_vec(data, view.shape().to_vec(), device)?;
        out.insert(name, t);
    }
    Ok(())
}

/// Reads the weights of a folder: `model.safetensors`, or the shards its
/// `model.safetensors.index.json` lists. Returns them and the file to blame for a
/// missing tensor.
fn read_weights(
    dir: &Path,
    device: &Device,
) -> Result<(HashMap<String, Tensor>, PathBuf), ModelError> {
    let mut weights = HashMap::new();
    let single = dir.join("model.safetensors");
    if single.exists() {
        read_safetensors(&single, None, device, &mut weights)?;
        return Ok((weights, single));
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.exists() {
        return Err(file_err(
            dir,
            "no model.safetensors or model.safetensors.index.json in the folder",
        ));
    }
    let v = read_json(&index)?;
    let map = v
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            file_err(
                &index,
                "missing key 'weight_map' (an object of tensor name -> file)",
            )
        })?;
    let mut by_file: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, file) in map {
        let file = file.as_str().ok_or_else(|| {
            file_err(
                &index,
                format!("key 'weight_map.{name}' should be a file name"),
            )
        })?;
        if file.contains('/') || file.contains('\\') || file == ".." {
            return Err(file_err(
                &index,
                format!("key 'weight_map.{name}': '{file}' is not a plain file name"),
            ));
        }
        by_file.entry(file).or_default().push(name);
    }
    for (file, names) in by_file {
        read_safetensors(&dir.join(file), Some(&names), device, &mut weights)?;
    }
    Ok((weights, index))
}

/// A special token in `tokenizer_config.json`: a string or `{"content": ...}`.
fn special_token<'a>(cfg: &'a Value, key: &str) -> Option<&'a str> {
    match cfg.get(key)? {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("content").and_then(Value::as_str),
        _ => None,
    }
}

/// Loads a Hugging Face model folder (see the module docs for the files).
pub fn load_hf_folder(dir: &Path, device: &Device) -> Result<LoadedModel, ModelError> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path)
        .map_err(|e| file_err(&config_path, format!("cannot read: {e}")))?;
    let mut config =
        ModelConfig::from_hf_json(&text).map_err(|e| file_err(&config_path, e.to_string()))?;

    let gen_path = dir.join("generation_config.json");
    if gen_path.exists() {
        let text = std::fs::read_to_string(&gen_path)
            .map_err(|e| file_err(&gen_path, format!("cannot read: {e}")))?;
        let g =
            GenerationConfigJson::parse(&text).map_err(|e| file_err(&gen_path, e.to_string()))?;
        for id in g.eos_token_id.map(TokenIds::into_vec).unwrap_or_default() {
            if !config.eos_token_ids.contains(&id) {
                config.eos_token_ids.push(id);
            }
        }
        if config.bos_token_id.is_none() {
            config.bos_token_id = g.bos_token_id.and_then(|b| b.into_vec().first().copied());
        }
    }

    let (mut weights, weights_file) = read_weights(dir, device)?;
    // Buffers some exporters save, and a duplicate head when it is tied.
    weights.retain(|k, _| !k.ends_with("rotary_emb.inv_freq"));
    if config.tie_word_embeddings {
        weights.remove("lm_head.weight");
    }
    check_weights(&config, &weights).map_err(|m| file_err(&weights_file, m.to_string()))?;

    let tok_path = dir.join("tokenizer.json");
    let tok_text = std::fs::read_to_string(&tok_path)
        .map_err(|e| file_err(&tok_path, format!("cannot read: {e}")))?;
    let mut tokenizer =
        Tokenizer::from_json(&tok_text).map_err(|e| file_err(&tok_path, e.to_string()))?;

    let tc_path = dir.join("tokenizer_config.json");
    let tc = if tc_path.exists() {
        Some(read_json(&tc_path)?)
    } else {
        None
    };
    let lookup = |key: &str| -> Result<Option<u32>, ModelError> {
        match tc.as_ref().and_then(|c| special_token(c, key)) {
            None => Ok(None),
            Some(t) => tokenizer.token_to_id(t).map(Some).ok_or_else(|| {
                file_err(
                    &tc_path,
                    format!("key '{key}': token {t:?} is not in the vocabulary"),
                )
            }),
        }
    };
    let bos = lookup("bos_token")?.or(config.bos_token_id);
    let eos = lookup("eos_token")?.or(config.eos_token_ids.first().copied());
    let pad = lookup("pad_token")?;
    tokenizer.set_special_ids(bos, eos, pad);

    let mut chat_template = match tc.as_ref().and_then(|c| c.get("chat_template")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        // A list of named templates: take the default one.
        Some(Value::Array(list)) => list
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str)
            .map(str::to_string),
        Some(_) => {
            return Err(file_err(
                &tc_path,
                "key 'chat_template' should be a string or a list",
            ))
        }
    };
    let jinja = dir.join("chat_template.jinja");
    if chat_template.is_none() && jinja.exists() {
        chat_template = Some(
            std::fs::read_to_string(&jinja)
                .map_err(|e| file_err(&jinja, format!("cannot read: {e}")))?,
        );
    }
    Ok(LoadedModel {
        config,
        weights,
        tokenizer,
        chat_template,
    })
}

/// Saves a model as a Hugging Face folder with f32 weights. See [`save_hf_folder_as`].
pub fn save_hf_folder(
    dir: &Path,
    config: &ModelConfig,
    weights: &HashMap<String, Tensor>,
    tokenizer: &Tokenizer,
    chat_template: Option<&str>,
) -> Result<(), ModelError> {
    save_hf_folder_as(dir, config, weights, tokenizer, chat_template, DType::F32)
}

/// A tensor's bytes in `dtype` (F32 or BF16), little-endian.
fn tensor_bytes(t: &Tensor, dtype: DType) -> Result<Vec<u8>, ModelError> {
    let flat = t.flatten_all()?;
    Ok(match dtype {
        DType::BF16 => flat
            .to_dtype(DType::BF16)?
            .to_vec1::<half::bf16>()?
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        _ => flat
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
    })
}

/// Saves a model as a Hugging Face folder: `model.safetensors` (in `dtype`, F32 or
/// BF16), `config.json`, `generation_config.json`, `tokenizer.json` and
/// `tokenizer_config.json`. Files are written into a temporary sibling folder that
/// then replaces `dir`. With a tied head, `lm_head.weight` is not saved.
pub fn save_hf_folder_as(
    dir: &Path,
    config: &ModelConfig,
    weights: &HashMap<String, Tensor>,
    tokenizer: &Tokenizer,
    chat_template: Option<&str>,
    dtype: DType,
) -> Result<(), ModelError> {
    let (st_dtype, torch_dtype) = match dtype {
        DType::F32 => (safetensors::Dtype::F32, "float32"),
        DType::BF16 => (safetensors::Dtype::BF16, "bfloat16"),
        other => {
            return Err(ModelError::Config(format!(
                "cannot save weights as {other:?} (F32 or BF16)"
            )))
        }
    };
    let mut to_save = weights.clone();
    if config.tie_word_embeddings {
        to_save.remove("lm_head.weight");
    }
    check_weights(config, &to_save).map_err(|m| file_err(dir, format!("cannot save: {m}")))?;

    let tmp = temp_beside(dir)?;
    let result = write_folder(
        &tmp,
        config,
        &to_save,
        tokenizer,
        chat_template,
        st_dtype,
        torch_dtype,
        dtype,
    )
    .and_then(|()| replace_dir(&tmp, dir));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn write_folder(
    tmp: &Path,
    config: &ModelConfig,
    weights: &HashMap<String, Tensor>,
    tokenizer: &Tokenizer,
    chat_template: Option<&str>,
    st_dtype: safetensors::Dtype,
    torch_dtype: &str,
    dtype: DType,
) -> Result<(), ModelError> {
    let mut names: Vec<&String> = weights.keys().collect();
    names.sort();
    let mut bytes = Vec::with_capacity(names.len());
    for n in &names {
        bytes.push(tensor_bytes(&weights[*n], dtype)?);
    }
    let mut views = Vec::with_capacity(names.len());
    for (n, b) in names.iter().zip(&bytes) {
        let v = safetensors::tensor::TensorView::new(st_dtype, weights[*n].dims().to_vec(), b)
            .map_err(|e| file_err(tmp, format!("tensor '{n}': {e}")))?;
        views.push((n.as_str(), v));
    }
    let st_path = tmp.join("model.safetensors");
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(meta), &st_path)
        .map_err(|e| file_err(&st_path, format!("cannot write: {e}")))?;
    readable_by_all(&st_path)?;

    let write_json = |file: &str, v: &Value| -> Result<(), ModelError> {
        let p = tmp.join(file);
        let text = serde_json::to_string_pretty(v).map_err(|e| file_err(&p, e.to_string()))?;
        std::fs::write(&p, text + "\n").map_err(|e| file_err(&p, format!("cannot write: {e}")))
    };
    write_json("config.json", &config.to_hf_json(torch_dtype))?;
    let eos = match config.eos_token_ids.as_slice() {
        [one] => json!(one),
        many => json!(many),
    };
    write_json(
        "generation_config.json",
        &json!({ "bos_token_id": config.bos_token_id, "eos_token_id": eos }),
    )?;

    let tok_path = tmp.join("tokenizer.json");
    std::fs::write(&tok_path, tokenizer.to_tokenizer_json()?)
        .map_err(|e| file_err(&tok_path, format!("cannot write: {e}")))?;
    let mut tc = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": tokenizer.bos_token(),
        "eos_token": tokenizer.eos_token(),
        "pad_token": tokenizer.pad_token_id().and_then(|i| tokenizer.id_to_token(i)),
        "add_bos_token": tokenizer.add_bos_token(),
        "add_eos_token": false,
        "clean_up_tokenization_spaces": false,
        "model_max_length": config.max_position_embeddings,
    });
    if let Some(t) = chat_template {
        tc["chat_template"] = json!(t);
    }
    write_json("tokenizer_config.json", &tc)
}

/// A new empty temporary folder beside `dir` (same file system, so it can be
/// renamed into place), unique per process and call.
pub(crate) fn temp_beside(dir: &Path) -> Result<PathBuf, ModelError> {
    let name = dir
        .file_name()
        .ok_or_else(|| file_err(dir, "not a folder name"))?
        .to_string_lossy();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .map_err(|e| file_err(&parent, format!("cannot create: {e}")))?;
    static SAVES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = parent.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .map_err(|e| file_err(&tmp, format!("cannot remove stale temp folder: {e}")))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| file_err(&tmp, format!("cannot create: {e}")))?;
    Ok(tmp)
}

/// The safetensors crate creates files owner-only; a server run as another
/// user (vLLM reading synced weights) must be able to read them.
pub(crate) fn readable_by_all(path: &Path) -> Result<(), ModelError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| file_err(path, format!("cannot set permissions: {e}")))?;
    }
    Ok(())
}

/// Moves `tmp` to `dir`, replacing an existing `dir` (moved aside first, then removed).
pub(crate) fn replace_dir(tmp: &Path, dir: &Path) -> Result<(), ModelError> {
    if dir.exists() {
        let old = PathBuf::from(format!("{}.old", tmp.display()));
        std::fs::rename(dir, &old)
            .map_err(|e| file_err(dir, format!("cannot move the old folder aside: {e}")))?;
        std::fs::rename(tmp, dir)
            .map_err(|e| file_err(dir, format!("cannot move the new folder in: {e}")))?;
        std::fs::remove_dir_all(&old).map_err(|e| file_err(&old, format!("cannot remove: {e}")))?;
    } else {
        std::fs::rename(tmp, dir)
            .map_err(|e| file_err(dir, format!("cannot move the new folder in: {e}")))?;
    }
    Ok(())
}
