//! The settings that make the rows of an evaluation folder (`eval_settings.json`):
//! `barl eval` resumes a folder only under the same ones, naming the first that
//! differs otherwise, since rows made under two settings would be mixed into one
//! set of metrics.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files::write_atomic;
use crate::TrainError;

/// Everything that changes the rows of an eval folder; a resume with other
/// values would mix rows, so it is refused (`eval_settings.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowSettings {
    /// The model's path with the size and modification time of its files.
    pub model: String,
    pub n: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub max_new_tokens: usize,
    pub seed: u64,
    pub grader: String,
    pub prompt_style: String,
    pub instruction: String,
    /// The held-out sets of `--from-config`, if given.
    pub config_eval_data: String,
    /// `input_key/label_key` when a benchmark is a file (they pick its fields).
    #[serde(default)]
    pub file_keys: String,
    /// `--gold-extract`.
    #[serde(default)]
    pub gold_extract: barl_math::grader::GoldExtract,
    /// `--credit-truncated`.
    #[serde(default)]
    pub credit_truncated: bool,
}

/// The model file (or the files of a model folder) as path, size and
/// modification time: a replaced model file changes it.
pub fn model_identity(path: &Path) -> String {
    let describe = |p: &Path| {
        let m = std::fs::metadata(p).ok();
        let size = m.as_ref().map_or(0, |m| m.len());
        let mtime = m
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        format!("{} ({size} bytes, modified {mtime})", p.display())
    };
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if !canonical.is_dir() {
        return describe(&canonical);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&canonical)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .map(|f| describe(f))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Refuses to resume `out` under other settings than its rows were made with
/// (naming the first that differs), unless `overwrite`, which removes the old
/// rows; records the settings for the next resume.
pub fn check_resume(out: &Path, settings: &RowSettings, overwrite: bool) -> Result<(), TrainError> {
    let path = out.join("eval_settings.json");
    let previous: Option<RowSettings> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let rows: Vec<PathBuf> = std::fs::read_dir(out)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    let differs = match &previous {
        Some(p) => first_difference(p, settings),
        None if rows.is_empty() => None,
        None => Some("the settings (the folder has rows but no eval_settings.json)".to_string()),
    };
    if let Some(what) = differs {
        if !overwrite {
            return Err(TrainError::Setting(format!(
                "--out {}: its rows were made with other {what}; use --overwrite to start \
                 over or choose another --out",
                out.display()
            )));
        }
        for f in rows.iter().chain([&out.join("metrics.json")]) {
            if f.exists() {
                std::fs::remove_file(f).map_err(|source| TrainError::Io {
                    path: f.clone(),
                    source,
                })?;
            }
        }
    }
    let text = serde_json::to_string_pretty(settings)
        .map_err(|e| TrainError::Setting(format!("{}: {e}", path.display())))?;
    write_atomic(&path, text.as_bytes())?;
    Ok(())
}

/// `"<key> (was A, now B)"` for the first setting that differs.
fn first_difference(old: &RowSettings, new: &RowSettings) -> Option<String> {
    let (a, b) = (
        serde_json::to_value(old).ok()?,
        serde_json::to_value(new).ok()?,
    );
    let (a, b) = (a.as_object()?, b.as_object()?);
    a.iter().find_map(|(k, v)| {
        let w = b.get(k)?;
        (v != w).then(|| format!("{k} (was {v}, now {w})"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_new_tokens: usize) -> RowSettings {
        RowSettings {
            model: "m (1 bytes, modified 0)".into(),
            n: 4,
            temperature: 0.6,
            top_p: 0.95,
            max_new_tokens,
            seed: 0,
            grader: "standard".into(),
            prompt_style: "qwen-boxed".into(),
            instruction: String::new(),
            config_eval_data: String::new(),
            file_keys: String::new(),
            gold_extract: Default::default(),
            credit_truncated: false,
        }
    }

    #[test]
    fn resume_needs_the_same_settings_or_overwrite() {
        let dir = std::env::temp_dir().join(format!("barl-eval-settings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A fresh folder records its settings; the same ones resume.
        check_resume(&dir, &settings(64), false).unwrap();
        std::fs::write(dir.join("gsm8k.jsonl"), "{}\n").unwrap();
        check_resume(&dir, &settings(64), false).unwrap();
        assert!(dir.join("gsm8k.jsonl").exists());
        // Another value is refused, naming the key and both values.
        let err = check_resume(&dir, &settings(16), false).unwrap_err();
        assert!(err.is_usage());
        assert!(
            err.to_string().contains("max_new_tokens (was 64, now 16)"),
            "{err}"
        );
        // --overwrite removes the old rows and records the new settings.
        check_resume(&dir, &settings(16), true).unwrap();
        assert!(!dir.join("gsm8k.jsonl").exists());
        check_resume(&dir, &settings(16), false).unwrap();
        // Rows without a settings file cannot be trusted either.
        std::fs::remove_file(dir.join("eval_settings.json")).unwrap();
        std::fs::write(dir.join("math500.jsonl"), "{}\n").unwrap();
        let err = check_resume(&dir, &settings(16), false).unwrap_err();
        assert!(err.to_string().contains("no eval_settings.json"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_replaced_model_file_changes_the_identity() {
        let dir = std::env::temp_dir().join(format!("barl-model-identity-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("model.gguf");
        std::fs::write(&f, b"abc").unwrap();
        let before = model_identity(&f);
        assert!(before.contains("(3 bytes"), "{before}");
        std::fs::write(&f, b"abcd").unwrap();
        assert_ne!(model_identity(&f), before);
        // A folder lists each file.
        std::fs::write(dir.join("config.json"), b"{}").unwrap();
        let folder = model_identity(&dir);
        assert!(
            folder.contains("config.json") && folder.contains("model.gguf"),
            "{folder}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
