//! Checkpoints of a training run: `RUN/checkpoints/step-NNNNNN/` holds the model as
//! a Hugging Face folder (`model/`; a LoRA run: the adapter as a PEFT folder,
//! `adapter/`, the base being the config's `model`), the optimizer moments
//! (`optimizer.safetensors`) and the trainer state (`trainer.json`: step, optimizer
//! step, skip counters, config hash).
//!
//! A checkpoint is written into a temporary folder and renamed into place, so a
//! crash leaves either a complete checkpoint or none; only the newest
//! `keep` are kept. Sampling streams and data order are functions of (seed,
//! position), so the saved positions are all the random state a resume needs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use barl_model::{save_adapter, save_hf_folder, CausalLm};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use crate::files::{fnv1a64, fnv1a64_extend};
use crate::optim::AdamW;
use crate::TrainError;

/// What besides weights and moments a resume needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// RL steps completed.
    pub step: usize,
    /// AdamW steps taken (bias correction).
    pub optimizer_step: u64,
    /// Prompts drawn so far: the next step's first prompt is draw number
    /// `data_position` of the seeded epoch orders (`step * rollout_batch_size`).
    pub data_position: usize,
    /// First sampler stream of the next step (`step * rollout_batch_size * n`);
    /// the sampler's random state is a pure function of (seed, stream).
    pub next_sample_stream: u64,
    /// Steps skipped for a non-finite loss, in total and in a row at the end.
    pub skipped_total: usize,
    pub skipped_in_a_row: usize,
    /// Steps in a row, at the end, whose rewards were all equal (a collapse guard).
    #[serde(default)]
    pub equal_reward_steps: usize,
    /// `TrainConfig::hash` of the run; resuming under another config is refused.
    pub config_hash: String,
}

/// The folder of a LoRA run's checkpoint that holds the adapter.
pub const ADAPTER: &str = "adapter";

/// Folder name of the checkpoint after `step` steps.
pub fn checkpoint_name(step: usize) -> String {
    format!("step-{step:06}")
}

fn io_err(what: &str, path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint(format!("{what} {}: {e}", path.display()))
}

/// Writes a checkpoint of the engine's model (with its tokenizer and chat
/// template; a LoRA model's adapter alone, as `adapter/` in PEFT's layout) and
/// of `opt` into `run_dir/checkpoints/step-NNNNNN` atomically, then deletes all
/// but the newest `keep` checkpoints. `names[i]` names the variable of moment `i`.
pub fn save_checkpoint(
    run_dir: &Path,
    engine: &Engine,
    opt: &AdamW,
    names: &[String],
    state: &TrainerState,
    keep: usize,
) -> Result<PathBuf, TrainError> {
    let root = run_dir.join("checkpoints");
    std::fs::create_dir_all(&root).map_err(|e| io_err("creating", &root, e))?;
    let name = checkpoint_name(state.step);
    let tmp = root.join(format!(".tmp-{name}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io_err("removing", &tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| io_err("creating", &tmp, e))?;

    let model = &engine.model;
    let weights = model.to_weights()?;
    match model.lora() {
        Some(lora) => save_adapter(
            &tmp.join(ADAPTER),
            lora,
            &weights,
            &engine.path.to_string_lossy(),
        )?,
        None => save_hf_folder(
            &tmp.join("model"),
            model.config(),
            &weights,
            &engine.tokenizer,
            engine.chat_template.as_deref(),
        )?,
    }
    let (m, v) = opt.moments();
    if m.len() != names.len() {
        return Err(TrainError::Checkpoint(format!(
            "{} variable names for {} moments",
            names.len(),
            m.len()
        )));
    }
    let mut moments: HashMap<String, Tensor> = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        moments.insert(format!("m.{n}"), m[i].to_device(&Device::Cpu)?);
        moments.insert(format!("v.{n}"), v[i].to_device(&Device::Cpu)?);
    }
    let opt_path = tmp.join("optimizer.safetensors");
    candle_core::safetensors::save(&moments, &opt_path)?;
    let json = serde_json::to_string_pretty(state)
        .map_err(|e| TrainError::Checkpoint(format!("trainer state: {e}")))?;
    let state_path = tmp.join("trainer.json");
    std::fs::write(&state_path, json).map_err(|e| io_err("writing", &state_path, e))?;
    write_manifest(&tmp)?;
    sync_dir(&tmp);

    let dest = root.join(&name);
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(|e| io_err("removing", &dest, e))?;
    }
    std::fs::rename(&tmp, &dest).map_err(|e| io_err("renaming into", &dest, e))?;
    sync_dir(&root);
    prune(&root, keep)?;
    Ok(dest)
}

/// Best effort: make the folder's entries durable before the rename publishes them.
fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Complete checkpoints under `run_dir/checkpoints`, oldest first.
pub fn list_checkpoints(run_dir: &Path) -> Vec<(usize, PathBuf)> {
    let root = run_dir.join("checkpoints");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut out: Vec<(usize, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step-")?.parse().ok()?;
            let path = e.path();
            path.join("trainer.json").is_file().then_some((step, path))
        })
        .collect();
    out.sort();
    out
}

/// The newest complete checkpoint, if any.
pub fn latest_checkpoint(run_dir: &Path) -> Option<PathBuf> {
    list_checkpoints(run_dir).pop().map(|(_, p)| p)
}

/// The newest checkpoint that passes [`verify_checkpoint`], and the newer ones
/// that failed, each with why (a resume falls back past them).
pub fn latest_verified_checkpoint(run_dir: &Path) -> (Option<PathBuf>, Vec<(PathBuf, TrainError)>) {
    let mut rejected = Vec::new();
    for (_, path) in list_checkpoints(run_dir).into_iter().rev() {
        match verify_checkpoint(&path) {
            Ok(()) => return (Some(path), rejected),
            Err(e) => rejected.push((path, e)),
        }
    }
    (None, rejected)
}

/// Name of the file listing a checkpoint's files with their sizes and hashes.
const MANIFEST: &str = "manifest.json";

/// One file of a checkpoint as written: size in bytes and FNV-1a 64 hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct FileRecord {
    bytes: u64,
    fnv1a64: String,
}

/// Checks every file `manifest.json` lists against its recorded size and hash,
/// and that `trainer.json` parses. A checkpoint without a manifest (written
/// before manifests existed) is checked by `trainer.json` alone.
pub fn verify_checkpoint(ckpt: &Path) -> Result<(), TrainError> {
    load_state(ckpt)?;
    let path = ckpt.join(MANIFEST);
    if !path.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| io_err("reading", &path, e))?;
    let files: BTreeMap<String, FileRecord> =
        serde_json::from_str(&text).map_err(|e| io_err("parsing", &path, e))?;
    for (name, want) in files {
        let file = ckpt.join(&name);
        let got = file_record(&file)?;
        if got != want {
            return Err(TrainError::Checkpoint(format!(
                "{} does not match the manifest ({} bytes, hash {}; written as {} bytes, hash {})",
                file.display(),
                got.bytes,
                got.fnv1a64,
                want.bytes,
                want.fnv1a64
            )));
        }
    }
    Ok(())
}

/// Records every file under `dir` (relative paths, `/`-separated) in `dir/manifest.json`.
fn write_manifest(dir: &Path) -> Result<(), TrainError> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| io_err("listing", &d, e))?;
        for entry in entries {
            let path = entry.map_err(|e| io_err("listing", &d, e))?.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let name = rel.to_string_lossy().replace('\\', "/");
                files.insert(name, file_record(&path)?);
            }
        }
    }
    let path = dir.join(MANIFEST);
    let json = serde_json::to_string_pretty(&files)
        .map_err(|e| TrainError::Checkpoint(format!("manifest: {e}")))?;
    std::fs::write(&path, json).map_err(|e| io_err("writing", &path, e))
}

/// Size and FNV-1a 64 hash ([`fnv1a64`]) of a file, read in 1 MiB pieces.
fn file_record(path: &Path) -> Result<FileRecord, TrainError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| io_err("reading", path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut h, mut bytes) = (fnv1a64(b""), 0u64);
    loop {
        let n = f.read(&mut buf).map_err(|e| io_err("reading", path, e))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        h = fnv1a64_extend(h, &buf[..n]);
    }
    Ok(FileRecord {
        bytes,
        fnv1a64: format!("{h:016x}"),
    })
}

fn prune(root: &Path, keep: usize) -> Result<(), TrainError> {
    let run_dir = root.parent().unwrap_or(root);
    let all = list_checkpoints(run_dir);
    let drop = all.len().saturating_sub(keep.max(1));
    for (_, path) in all.into_iter().take(drop) {
        std::fs::remove_dir_all(&path).map_err(|e| io_err("removing", &path, e))?;
    }
    Ok(())
}

/// Reads `trainer.json` of a checkpoint folder.
pub fn load_state(ckpt: &Path) -> Result<TrainerState, TrainError> {
    let path = ckpt.join("trainer.json");
    let text = std::fs::read_to_string(&path).map_err(|e| io_err("reading", &path, e))?;
    serde_json::from_str(&text).map_err(|e| io_err("parsing", &path, e))
}

/// Restores the moments of `opt` from a checkpoint folder.
pub fn load_optimizer(
    ckpt: &Path,
    opt: &mut AdamW,
    names: &[String],
    state: &TrainerState,
) -> Result<(), TrainError> {
    let path = ckpt.join("optimizer.safetensors");
    let mut t = candle_core::safetensors::load(&path, &Device::Cpu)
        .map_err(|e| io_err("reading", &path, e))?;
    let mut take = |key: String| {
        t.remove(&key)
            .ok_or_else(|| io_err("missing tensor", &path, &key))
    };
    let mut m = Vec::with_capacity(names.len());
    let mut v = Vec::with_capacity(names.len());
    for n in names {
        m.push(take(format!("m.{n}"))?);
        v.push(take(format!("v.{n}"))?);
    }
    opt.restore(state.optimizer_step, m, v)?;
    Ok(())
}

/// The config of a checkpoint's model (to check it matches the run's model).
pub fn checkpoint_model_dir(ckpt: &Path) -> PathBuf {
    ckpt.join("model")
}
