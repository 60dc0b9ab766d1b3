//! End-to-end tests of the `barl` binary.

mod common;

use common::{assert_ok, barl, scratch, stderr};

/// Small settings so a run takes about a second.
const TINY: &[&str] = &[
    "--steps",
    "4",
    "--rollouts",
    "4",
    "--eval-every",
    "2",
    "--eval-episodes",
    "8",
    "--d-model",
    "16",
    "--d-ff",
    "32",
    "--quiet",
];

#[test]
fn bad_input_is_a_one_line_error_naming_the_option_with_exit_code_2() {
    let dir = scratch("bad-input");
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let unwritable = file.join("run"); // a folder inside a regular file: fails even for root
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--methods".into(), "grpo,ppo".into()], "--methods"),
        (
            vec!["--alphabet-size".into(), "1".into()],
            "--alphabet-size",
        ),
        (vec!["--attempt-len".into(), "0".into()], "--attempt-len"),
        (vec!["--max-attempts".into(), "0".into()], "--max-attempts"),
        (vec!["--test-prompts".into(), "3".into()], "--test-prompts"),
        (
            vec!["--train-prompts".into(), "0,5".into()],
            "--train-prompts",
        ),
        (
            vec!["--out".into(), unwritable.display().to_string()],
            "--out",
        ),
        (vec!["--steps".into(), "many".into()], "--steps"),
        (
            vec!["--loss-agg-mode".into(), "mean".into()],
            "--loss-agg-mode",
        ),
        (vec!["--n-heads".into(), "5".into()], "--n-heads"),
        (
            vec![
                "--config".into(),
                dir.join("missing.toml").display().to_string(),
            ],
            "--config",
        ),
    ];
    for (args, option) in cases {
        let out = barl().arg("synthetic").args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(option),
            "{args:?} should name {option}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn bad_config_key_names_the_file_line_and_key() {
    let dir = scratch("bad-config");
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, "methods = [\"grpo\"]\nseeds = [0]\nbogus = 3\n").unwrap();
    let out = barl()
        .args(["synthetic", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("run.toml") && stderr.contains("bogus"),
        "{stderr}"
    );
}

#[test]
fn key_value_overrides_follow_the_train_rules_and_flags_win() {
    let dir = scratch("overrides");
    let out = barl()
        .args(["synthetic", "--methods", "grpo", "--seeds", "4", "--out"])
        .arg(dir.join("r"))
        .args(TINY)
        .args(["run.beta=7.5", "seeds=[3]", "run.task.train_prompts=[1]"])
        .output()
        .unwrap();
    assert_ok(&out);
    let cfg: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("r/config.toml")).unwrap()).unwrap();
    assert_eq!(cfg["run"]["beta"].as_float(), Some(7.5));
    assert_eq!(
        cfg["run"]["task"]["train_prompts"],
        toml::Value::from(vec![1])
    );
    // --seeds is applied after the override.
    assert_eq!(cfg["seeds"], toml::Value::from(vec![4]));
    // Unknown and ill-typed keys are named, with the source and a hint.
    for (arg, want) in [
        (
            "run.stepz=3",
            "unknown key `run.stepz`; did you mean `steps`?",
        ),
        ("run.steps=many", "bad value for `run.steps`"),
        ("steps", "bad override `steps`: expected KEY=VALUE"),
    ] {
        let out = barl().args(["synthetic", arg]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{arg}");
        assert!(stderr(&out).contains(want), "{arg}: {}", stderr(&out));
    }
}

#[test]
fn a_run_writes_its_folder_and_repeats_exactly() {
    let dir = scratch("run");
    let run = |name: &str| {
        let out = barl()
            .args(["synthetic", "--seeds", "0,1", "--out"])
            .arg(dir.join(name))
            .args(TINY)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert_ok(&out);
        stdout
    };
    let stdout = run("a");
    for m in ["grpo", "barl", "barl-prior"] {
        assert!(stdout.contains(m), "table lacks {m}: {stdout}");
    }
    let a = dir.join("a");
    for f in [
        "config.toml",
        "metrics.jsonl",
        "summary.json",
        "plots/success.png",
        "plots/success.svg",
    ] {
        assert!(a.join(f).is_file(), "missing {f}");
    }
    // summary.json: schema version 2, method -> metric -> {mean, std, per_seed}.
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["schema_version"], 2);
    assert_eq!(s["steps"], 4);
    assert_eq!(s["seeds"], serde_json::json!([0, 1]));
    for m in ["grpo", "barl", "barl-prior"] {
        for k in [
            "train_success",
            "test_success",
            "test_attempts",
            "train_success_greedy",
            "first_attempt_dependence",
        ] {
            let stat = &s["methods"][m][k];
            let per_seed = stat["per_seed"].as_array().unwrap();
            assert_eq!(per_seed.len(), 2, "{m}/{k}");
            let (x, y) = (per_seed[0].as_f64().unwrap(), per_seed[1].as_f64().unwrap());
            // Two seeds: mean (x + y) / 2; sample std sqrt(2 ((x - y) / 2)^2 / 1) = |x - y| / sqrt(2).
            assert!(
                (stat["mean"].as_f64().unwrap() - (x + y) / 2.0).abs() < 1e-12,
                "{m}/{k}"
            );
            let std = (x - y).abs() / 2f64.sqrt();
            assert!(
                (stat["std"].as_f64().unwrap() - std).abs() < 1e-12,
                "{m}/{k}"
            );
        }
        let attempts = s["methods"][m]["test_attempts"]["mean"].as_f64().unwrap();
        assert!((1.0..=3.0).contains(&attempts));
    }
    // metrics.jsonl: (steps + 1) lines per run; evaluations at steps 0, 2, 4.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(a.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3 * 2 * 5);
    let evals: Vec<u64> = lines
        .iter()
        .filter(|l| l["method"] == "barl" && l["seed"] == 1 && l.get("val/test/success").is_some())
        .map(|l| l["step"].as_u64().unwrap())
        .collect();
    assert_eq!(evals, vec![0, 2, 4]);
    assert!(lines
        .iter()
        .any(|l| l.get("barl/bayes_value/mean").is_some()));
    // The resolved config reproduces the run, and the same seed gives the same summary.
    let again = barl()
        .args(["synthetic", "--quiet", "--config"])
        .arg(a.join("config.toml"))
        .arg("--out")
        .arg(dir.join("b"))
        .output()
        .unwrap();
    assert_ok(&again);
    assert_eq!(
        std::fs::read(a.join("summary.json")).unwrap(),
        std::fs::read(dir.join("b/summary.json")).unwrap()
    );
    // A finished run folder is not overwritten.
    let clash = barl()
        .args(["synthetic", "--out"])
        .arg(&a)
        .args(TINY)
        .output()
        .unwrap();
    assert_eq!(clash.status.code(), Some(2));
}

#[test]
fn help_documents_every_option() {
    let out = barl().args(["synthetic", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--methods",
        "--seeds",
        "--out",
        "--config",
        "--jobs",
        "--alphabet-size",
        "--attempt-len",
        "--max-attempts",
        "--train-prompts",
        "--test-prompts",
        "--steps",
        "--rollouts",
        "--lr",
        "--beta",
        "--clip-ratio",
        "--loss-agg-mode",
        "--eval-every",
        "--eval-episodes",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn eval_refuses_settings_that_evaluate_nothing() {
    for (flag, value) in [("--limit", "0"), ("--max-new-tokens", "0")] {
        let out = barl()
            .args(["eval", "--model", "/no/such/model", flag, value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", stderr(&out));
        assert!(stderr(&out).contains(flag), "{flag}: {}", stderr(&out));
    }
}

#[test]
fn eval_resume_refuses_changed_settings_unless_overwritten() {
    let dir = scratch("eval-settings");
    let model = barl_model::testing::save_tiny_llama(&dir, 7).unwrap();
    let cfg = dir.join("held-out.toml");
    std::fs::write(
        &cfg,
        "prompt_style = \"raw:Q: {question}\\nA:\"\n[[eval_data]]\nsource = \"arith\"\ncount = 3\noffset = 1000000\n",
    )
    .unwrap();
    let out = dir.join("out");
    let eval = |tokens: &str, extra: &[&str]| {
        barl()
            .args(["eval", "--quiet", "--max-new-tokens", tokens, "--model"])
            .arg(&model)
            .arg("--from-config")
            .arg(&cfg)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    assert_ok(&eval("4", &[]));
    // The same settings resume; other ones are refused, naming the setting.
    let again = eval("4", &[]);
    assert_ok(&again);
    assert!(stderr(&again).contains("resuming"), "{}", stderr(&again));
    let changed = eval("8", &[]);
    assert_eq!(changed.status.code(), Some(2), "{}", stderr(&changed));
    assert!(
        stderr(&changed).contains("max_new_tokens (was 4, now 8)"),
        "{}",
        stderr(&changed)
    );
    // --overwrite starts over with the new settings.
    let fresh = eval("8", &["--overwrite"]);
    assert_ok(&fresh);
    assert!(!stderr(&fresh).contains("resuming"), "{}", stderr(&fresh));
    let rows = std::fs::read_to_string(out.join("arith.jsonl")).unwrap();
    assert_eq!(rows.lines().count(), 3);
    // A smaller --limit resumes and counts only its slice.
    let two = eval("8", &["--limit", "2"]);
    assert_ok(&two);
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["benchmarks"][0]["problems"], 2);
}

#[test]
fn eval_reads_any_jsonl_file_with_the_keys_given() {
    let dir = scratch("eval-file");
    let model = barl_model::testing::save_tiny_llama(&dir, 7).unwrap();
    let file = dir.join("mine.jsonl");
    // A nested label and a numeric one.
    std::fs::write(
        &file,
        concat!(
            "{\"question\": \"What is 2+3?\", \"sol\": {\"final\": \"5\"}}\n",
            "{\"question\": \"What is 4*4?\", \"sol\": {\"final\": 16}}\n",
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let eval = |keys: &[&str]| {
        barl()
            .args(["eval", "--quiet", "--max-new-tokens", "2", "--model"])
            .arg(&model)
            .args(["--prompt-style", "raw:Q: {question}\nA:", "--benchmarks"])
            .arg(&file)
            .args(keys)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    assert_ok(&eval(&[
        "--input-key",
        "question",
        "--label-key",
        "sol.final",
    ]));
    let rows = std::fs::read_to_string(out.join("mine.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = rows
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], "mine/0");
    assert_eq!(rows[0]["gold"], "5");
    assert_eq!(rows[1]["gold"], "16");
    assert!(rows[1]["prompt"].as_str().unwrap().contains("What is 4*4?"));
    // Other keys would make other rows: the folder is not resumed under them.
    let other = eval(&["--input-key", "question", "--label-key", "answer"]);
    assert!(stderr(&other).contains("file_keys"), "{}", stderr(&other));
    // A key the file lacks is an error naming the line and key; so is a name
    // that is neither a benchmark nor a file.
    let bad = eval(&[
        "--input-key",
        "question",
        "--label-key",
        "answer",
        "--overwrite",
    ]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("mine.jsonl:1: missing key `answer`"),
        "{}",
        stderr(&bad)
    );
    let unknown = barl()
        .args(["eval", "--model", "/no/model", "--benchmarks", "gsm9k"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    assert!(
        stderr(&unknown).contains("`gsm9k` is neither a known benchmark"),
        "{}",
        stderr(&unknown)
    );
}
