//! Every command of the README's `sh` blocks, run in order by `sh` in a fresh
//! folder holding a copy of the README and `data/`, with no `BARL_DATA_DIR`,
//! so the README cannot drift from the binary. The model is SmolLM2
//! (`BARL_SMOLLM2`, what `scripts/fetch-smollm2.sh` prints and the README's
//! `M=` line sets).
//!
//! Each line runs as written except that the work is made small: the options
//! in [`shrink`] replace the README's values (or are added), and a training run
//! of 2 steps saves `step-000002` where the README's 30-step preset names
//! `step-000030`. `cargo` and `.ci/run` lines are the test runners themselves
//! and are only checked to be the expected ones.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{env_path, scratch};

/// `(command prefix, options set on it)`; `--flag value` pairs replace the
/// README's value, `key=value` training overrides are appended.
const SHRINK: &[(&str, &[&str])] = &[
    ("barl synthetic --help", &[]),
    ("barl synthetic", &["--steps", "4", "--eval-every", "2"]),
    ("barl generate", &["--max-new-tokens", "8"]),
    ("barl eval", &["--limit", "1", "--max-new-tokens", "4"]),
    (
        "barl bench engine",
        &[
            "--runs",
            "1",
            "--batches",
            "1",
            "--new-tokens",
            "4",
            "--prefill-len",
            "16",
            "--train-batch",
            "1",
            "--train-len",
            "16",
            "--hypotheses",
            "2",
            "--steps",
            "2",
            "--chunk",
            "8",
        ],
    ),
    (
        "barl train --config",
        &[
            "num_steps=2",
            "save_every=1",
            "eval_every=0",
            "n_samples_per_prompt=2",
            "rollout_batch_size=1",
            "train_batch_size=2",
            "micro_batch_size=2",
            "max_response_len=8",
            "eval_max_new_tokens=4",
            "eval_data.0.count=2",
        ],
    ),
];

/// The lines of the README's `sh` blocks, comments and blank lines removed.
fn readme_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            continue;
        }
        if in_sh {
            let cmd = strip_comment(line).trim().to_string();
            if !cmd.is_empty() {
                out.push(cmd);
            }
        }
    }
    out
}

/// The line up to a `#` that starts a shell comment (after blank, outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut prev_blank) = (false, false, true);
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_blank => return &line[..i],
            _ => {}
        }
        prev_blank = c.is_whitespace();
    }
    line
}

/// The command with [`SHRINK`]'s options applied (the longest matching prefix).
fn shrink(cmd: &str) -> String {
    let rule = SHRINK
        .iter()
        .filter(|(prefix, _)| cmd == *prefix || cmd.starts_with(&format!("{prefix} ")))
        .max_by_key(|(prefix, _)| prefix.len());
    let mut words: Vec<String> = cmd.split(' ').map(str::to_string).collect();
    if let Some((_, opts)) = rule {
        let mut i = 0;
        while i < opts.len() {
            let opt = opts[i];
            if opt.starts_with("--") {
                let value = opts[i + 1];
                match words.iter().position(|w| w == opt) {
                    Some(at) => words[at + 1] = value.to_string(),
                    None => words.extend([opt.to_string(), value.to_string()]),
                }
                i += 2;
            } else {
                words.push(opt.to_string());
                i += 1;
            }
        }
    }
    words.join(" ").replace("step-000030", "step-000002")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Whether vLLM's venv is there, or must be (`BARL_REQUIRE_DATA=1`).
fn vllm_ready() -> bool {
    common::required() || barl_model::testing::vllm_venv_python().is_some_and(|p| p.exists())
}

/// Stops the README's server (port 8000) when dropped.
struct StopServer(PathBuf);

impl Drop for StopServer {
    fn drop(&mut self) {
        let _ = Command::new(&self.0).args(["stop", "8000"]).status();
    }
}

#[test]
fn comments_and_options_are_handled_as_sh_would() {
    assert_eq!(strip_comment("barl x   # note"), "barl x   ");
    assert_eq!(
        strip_comment("echo '#no' \"a # b\" c#d"),
        "echo '#no' \"a # b\" c#d"
    );
    assert_eq!(
        shrink("barl eval --model $M --limit 50 --out o"),
        "barl eval --model $M --limit 1 --out o --max-new-tokens 4"
    );
    assert_eq!(shrink("barl synthetic --help"), "barl synthetic --help");
    assert_eq!(
        shrink("barl train --resume runs/grpo/checkpoints/step-000030"),
        "barl train --resume runs/grpo/checkpoints/step-000002"
    );
}

#[test]
fn every_readme_command_runs() {
    let Some(model) = env_path("BARL_SMOLLM2") else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let dir = scratch("readme");
    std::fs::copy(root.join("README.md"), dir.join("README.md")).unwrap();
    copy_dir(&root.join("data"), &dir.join("data"));
    let bin = Path::new(env!("CARGO_BIN_EXE_barl")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // A server the Scale-out lines started is stopped even when a line fails.
    let _stop = StopServer(root.join("scripts/vllm-cpu.sh"));
    let mut runners = Vec::new();
    let mut ran = 0;
    for line in readme_commands(&readme) {
        let line = match line.strip_prefix("cargo run --release -- ") {
            Some(rest) => format!("barl {rest}"),
            None => line,
        };
        if line.starts_with("cargo ") || line.starts_with("bash .ci/run") {
            runners.push(line);
            continue;
        }
        if line == "M=$(scripts/fetch-smollm2.sh)" {
            continue; // M is set from BARL_SMOLLM2 below.
        }
        // The Scale-out lines need vLLM's venv: `.ci/run` makes it; elsewhere
        // they skip with a note when it is missing.
        if line.contains("vllm") && !vllm_ready() {
            eprintln!("skipping (no vLLM venv; scripts/vllm-cpu.sh install): {line}");
            continue;
        }
        let line = match line.strip_prefix("scripts/vllm-cpu.sh ") {
            Some(rest) => format!("{}/scripts/vllm-cpu.sh {rest}", root.display()),
            None => line,
        };
        assert!(
            line.starts_with("barl ")
                || line.starts_with("printf ")
                || line.contains("/scripts/vllm-cpu.sh "),
            "README command of an unknown kind: {line}"
        );
        let cmd = shrink(&line);
        let out = Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .current_dir(&dir)
            .env("PATH", &path)
            .env("M", &model)
            .env_remove("BARL_DATA_DIR")
            .env_remove("HF_ENDPOINT")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README line `{line}` (run as `{cmd}`) failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert_eq!(
        runners,
        [
            "cargo test --release --workspace",
            "cargo fmt --all -- --check",
            "cargo clippy --release --workspace --all-targets -- -D warnings",
            "cargo test --release --workspace",
            "bash .ci/run",
        ]
    );
    assert!(ran >= 20, "only {ran} README commands ran");
    // What the commands were to make is there.
    for made in [
        "runs/synthetic-1/summary.json",
        "runs/again/summary.json",
        "runs/eval-smol/metrics.json",
        "graded.jsonl",
        "runs/grpo/report.html",
        "runs/eval-grpo/arith.jsonl",
        "eff.svg",
    ] {
        assert!(dir.join(made).is_file(), "{made} was not written");
    }
    let graded = std::fs::read_to_string(dir.join("graded.jsonl")).unwrap();
    assert!(graded.contains("\"correct\":true"), "{graded}");
}
