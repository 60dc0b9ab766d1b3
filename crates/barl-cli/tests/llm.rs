//! End-to-end tests of `barl generate` and `barl eval` on the real
//! SmolLM2-135M-Instruct (path in `BARL_SMOLLM2`) and the real GSM8K file
//! shipped in `data/`. Without the model the tests skip with a note, unless
//! `BARL_REQUIRE_DATA=1`, where a missing file fails.

mod common;

use common::{assert_ok, barl, env_path, scratch, stderr};

#[test]
fn generate_answers_the_capital_of_france() {
    let Some(model) = env_path("BARL_SMOLLM2") else {
        return;
    };
    let out = barl()
        .args(["generate", "--chat", "--max-new-tokens", "24", "--prompt"])
        .arg("What is the capital of France?")
        .arg("--model")
        .arg(&model)
        .output()
        .unwrap();
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Paris"), "greedy answer: {text}");
}

#[test]
fn eval_writes_records_and_metrics_and_resumes() {
    let Some(model) = env_path("BARL_SMOLLM2") else {
        return;
    };
    let out = scratch("eval-resume");
    // No --data-dir and no BARL_DATA_DIR: the checkout's shipped data/ is found.
    let run = |limit: &str| {
        let o = barl()
            .env_remove("BARL_DATA_DIR")
            .args([
                "eval",
                "--quiet",
                "--benchmarks",
                "gsm8k",
                "--max-new-tokens",
                "8",
            ])
            .args(["--limit", limit, "--model"])
            .arg(&model)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    run("2");
    let first = std::fs::read_to_string(out.join("gsm8k.jsonl")).unwrap();
    assert_eq!(first.lines().count(), 2);
    let stderr = run("3");
    assert!(stderr.contains("resuming, 2 problem(s)"), "{stderr}");
    let second = std::fs::read_to_string(out.join("gsm8k.jsonl")).unwrap();
    // The two finished problems are kept as they were; only the third is new.
    assert!(second.starts_with(&first));
    assert_eq!(second.lines().count(), 3);
    let rec: serde_json::Value = serde_json::from_str(second.lines().nth(2).unwrap()).unwrap();
    assert_eq!(rec["id"], "gsm8k/2");
    assert_eq!(rec["gold"], "70000"); // GSM8K test problem 2: "#### 70000"
    assert_eq!(rec["tokens"][0], 8); // 8 new tokens: no stop within them
    assert_eq!(rec["truncated"][0], true);
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let b = &metrics["benchmarks"][0];
    assert_eq!(b["benchmark"], "gsm8k");
    assert_eq!(b["problems"], 3);
    assert_eq!(b["truncation_rate"], 1.0);
    assert_eq!(b["pass_at_k"].as_array().unwrap().len(), 1);
}

#[test]
fn convert_writes_a_folder_that_answers_as_the_gguf_does() {
    let Some(model) = env_path("BARL_SMOLLM2") else {
        return;
    };
    let dir = scratch("convert");
    let greedy = |m: &std::path::Path| {
        let o = barl()
            .args(["generate", "--chat", "--max-new-tokens", "32", "--prompt"])
            .arg("What is the capital of France?")
            .arg("--model")
            .arg(m)
            .output()
            .unwrap();
        assert_ok(&o);
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let convert = |out: &std::path::Path, extra: &[&str]| {
        barl()
            .arg("convert")
            .arg(&model)
            .arg(out)
            .args(extra)
            .output()
            .unwrap()
    };
    let f32_dir = dir.join("f32");
    let o = convert(&f32_dir, &[]);
    let line = assert_ok(&o);
    assert!(
        line.contains("272 tensors, 134.5M parameters, F32, chat template: yes"),
        "{line}"
    );
    let want = greedy(&model);
    assert!(want.contains("Paris"), "greedy answer: {want}");
    assert_eq!(greedy(&f32_dir), want);
    // An existing folder is kept unless --force.
    let o = convert(&f32_dir, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("exists; pass --force"),
        "{}",
        stderr(&o)
    );
    let o = convert(&f32_dir, &["--force", "--dtype", "bf16"]);
    assert_ok(&o);
    let config = std::fs::read_to_string(f32_dir.join("config.json")).unwrap();
    assert!(config.contains("\"torch_dtype\": \"bfloat16\""), "{config}");
    let tc = std::fs::read_to_string(f32_dir.join("tokenizer_config.json")).unwrap();
    assert!(tc.contains("chat_template"), "{tc}");
    let _ = std::fs::remove_dir_all(&dir);
}
