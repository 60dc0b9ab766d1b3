//! `barl train` runs on the tiny random model (`preset:tiny-test`): starting,
//! pausing, and comparing two runs' metrics and weights.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use barl_model::testing::save_tiny_llama;
use serde_json::Value;

/// `barl` on one thread, so parallel tests do not slow each other down.
pub fn barl1() -> Command {
    let mut c = super::barl();
    c.env("RAYON_NUM_THREADS", "1");
    c
}

/// A random two-layer Llama with a byte tokenizer, as a Hugging Face folder.
pub fn tiny_model(dir: &Path) -> PathBuf {
    save_tiny_llama(dir, 7).unwrap()
}

/// `barl train` on the tiny preset with BARL's advantages and a raw prompt.
pub fn base_args(model: &Path) -> Vec<String> {
    vec![
        "train".into(),
        "--quiet".into(),
        "--config".into(),
        "preset:tiny-test".into(),
        format!("model={}", model.display()),
        "adv_estimator=barl".into(),
        "prompt_style=raw:Q: {question}\nA:".into(),
    ]
}

/// The tiny test run, writing to `out`.
pub fn out_args(model: &Path, out: &Path) -> Vec<String> {
    let mut args = base_args(model);
    args.extend(["--out".into(), out.display().to_string()]);
    args
}

/// `barl train --quiet --resume DIR`.
pub fn resume_args(dir: &Path) -> Vec<String> {
    vec![
        "train".into(),
        "--quiet".into(),
        "--resume".into(),
        dir.display().to_string(),
    ]
}

/// Runs `barl` (one thread) to the end.
pub fn run(args: &[String]) -> Output {
    barl1().args(args).output().unwrap()
}

/// The run's metrics lines.
pub fn metrics(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A line without its wall-clock figures (timing_s/*, perf/*).
pub fn without_timing(v: &Value) -> Value {
    let mut m = v.as_object().cloned().unwrap_or_default();
    m.retain(|k, _| !k.starts_with("timing_s/") && !k.starts_with("perf/"));
    Value::Object(m)
}

/// Whether the two runs wrote the same metrics lines (wall-clock figures aside);
/// the first difference otherwise.
pub fn same_metrics(a: &Path, b: &Path) -> Result<(), String> {
    let (ma, mb) = (metrics(a), metrics(b));
    if ma.len() != mb.len() {
        return Err(format!("{} vs {} metrics lines", ma.len(), mb.len()));
    }
    for (i, (x, y)) in ma.iter().zip(&mb).enumerate() {
        if without_timing(x) != without_timing(y) {
            return Err(format!("metrics line {} differs", i + 1));
        }
    }
    Ok(())
}

/// Asserts [`same_metrics`].
pub fn assert_same_metrics(a: &Path, b: &Path) {
    if let Err(e) = same_metrics(a, b) {
        panic!("{e}");
    }
}

/// Whether both runs' checkpoints of `step` hold byte-identical weights.
pub fn same_weights(a: &Path, b: &Path, step: usize) -> Result<(), String> {
    let file = format!("checkpoints/step-{step:06}/model/model.safetensors");
    match (std::fs::read(a.join(&file)), std::fs::read(b.join(&file))) {
        (Ok(x), Ok(y)) if x == y => Ok(()),
        (Ok(_), Ok(_)) => Err(format!("{file} differs")),
        _ => Err(format!("{file} missing")),
    }
}

/// Whether `run_dir`'s metrics hold the line of `step`.
pub fn has_step(run_dir: &Path, step: usize) -> bool {
    let marker = format!("\"step\":{step},");
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .map(|t| t.lines().any(|l| l.contains(&marker)))
        .unwrap_or(false)
}

/// Starts `barl` with `args`, paused 300 ms before each update, and returns
/// the running child once `run_dir`'s metrics hold the line of `step`.
pub fn start_slow_until(args: &[String], run_dir: &Path, step: usize, stderr: Stdio) -> Child {
    let mut child = barl1()
        .args(args)
        .env("BARL_TRAIN_STEP_DELAY_MS", "300")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !has_step(run_dir, step) {
        assert!(start.elapsed() < Duration::from_secs(120), "run too slow");
        assert!(child.try_wait().unwrap().is_none(), "run ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}
