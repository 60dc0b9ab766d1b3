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

#[test]
fn an_adapter_applied_or_merged_answers_the_same_and_changes_the_base_answer() {
    use barl_model::lora::{adapted_modules, init_adapter};
    let Some(model) = env_path("BARL_SMOLLM2") else {
        return;
    };
    let dir = scratch("adapter");
    let dev = candle_core::Device::Cpu;
    let loaded = barl_model::load_model(&model, &dev).unwrap();
    let lora = barl_model::LoraConfig {
        rank: 8,
        alpha: 16.0,
        dropout: 0.0,
        target_modules: vec!["q_proj".into(), "v_proj".into(), "down_proj".into()],
        use_rslora: false,
    };
    // A fresh adapter changes nothing (B = 0); give B fixed values in +-0.5.
    let mut w = init_adapter(&loaded.config, &lora, 3, &dev).unwrap();
    for m in adapted_modules(&loaded.config, &lora) {
        let b: Vec<f32> = (0..m.fan_out * lora.rank)
            .map(|j| (j * 7919 % 101) as f32 / 100.0 - 0.5)
            .collect();
        let b = candle_core::Tensor::from_vec(b, (m.fan_out, lora.rank), &dev).unwrap();
        w.insert(m.key('B'), b);
    }
    let adapter = dir.join("adapter");
    barl_model::save_adapter(&adapter, &lora, &w, &model.display().to_string()).unwrap();

    let greedy = |m: &std::path::Path, extra: &[&std::ffi::OsStr]| {
        let o = barl()
            .args(["generate", "--chat", "--max-new-tokens", "16", "--prompt"])
            .arg("What is the capital of France?")
            .arg("--model")
            .arg(m)
            .args(extra)
            .output()
            .unwrap();
        assert_ok(&o);
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let base = greedy(&model, &[]);
    let applied = greedy(&model, &["--adapter".as_ref(), adapter.as_os_str()]);
    assert_ne!(applied, base, "the adapter must change the answer");
    let merge = |out: &std::path::Path, base: &std::path::Path| {
        barl()
            .arg("merge")
            .arg(&adapter)
            .arg("--base")
            .arg(base)
            .arg(out)
            .output()
            .unwrap()
    };
    let merged = dir.join("merged");
    let line = assert_ok(&merge(&merged, &model));
    assert!(line.contains("272 tensors, 134.5M parameters"), "{line}");
    assert_eq!(greedy(&merged, &[]), applied);
    // An existing OUT is kept; a base of another shape is named.
    let o = merge(&merged, &model);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let tiny = barl_model::testing::save_tiny_llama(&dir, 1).unwrap();
    let o = merge(&dir.join("bad"), &tiny);
    assert_ne!(o.status.code(), Some(0));
    let e = stderr(&o);
    assert!(
        e.contains("does not fit") && e.contains("lora_A.weight"),
        "{e}"
    );

    // `barl eval --adapter` answers as the merged model does.
    let eval = |out: &str, m: &std::path::Path, extra: &[&std::ffi::OsStr]| {
        let o = barl()
            .args(["eval", "--quiet", "--benchmarks", "gsm8k", "--limit", "1"])
            .args(["--max-new-tokens", "16", "--model"])
            .arg(m)
            .args(extra)
            .arg("--out")
            .arg(dir.join(out))
            .output()
            .unwrap();
        assert_ok(&o);
        let rows = std::fs::read_to_string(dir.join(out).join("gsm8k.jsonl")).unwrap();
        let rec: serde_json::Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
        rec["responses"][0].clone()
    };
    let applied = eval(
        "eval-adapter",
        &model,
        &["--adapter".as_ref(), adapter.as_os_str()],
    );
    assert!(applied.is_string(), "{applied}");
    assert_eq!(eval("eval-merged", &merged, &[]), applied);
    assert_ne!(eval("eval-base", &model, &[]), applied);
    let _ = std::fs::remove_dir_all(&dir);
}
