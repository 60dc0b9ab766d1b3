//! `barl train` end to end on a tiny random model with a byte tokenizer:
//! exact resume after SIGKILL, and bad input.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use barl_model::testing::{fresh_temp_dir, save_nan_llama};
use common::stderr;
use common::train::*;
use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    fresh_temp_dir(&format!("train-{name}"))
}

#[test]
fn a_run_killed_in_step_5_resumes_to_the_same_metrics() {
    let dir = tmp("resume");
    let model = tiny_model(&dir);
    let (a, b) = (dir.join("a"), dir.join("b"));

    let o = run(&out_args(&model, &a));
    assert!(o.status.success(), "{}", stderr(&o));

    // The same run, paused 300 ms before each update and killed (SIGKILL) as
    // soon as step 4's line is written, i.e. inside step 5.
    let args = out_args(&model, &b);
    let mut child = start_slow_until(&args, &b, 4, Stdio::null());
    child.kill().unwrap();
    child.wait().unwrap();
    // Lines for the initial evaluation (step 0) and steps 1-4.
    assert_eq!(metrics(&b).len(), 5, "killed after step 4's line");
    // The checkpoint's positions are those of step 3: 3 x 2 prompts drawn,
    // 3 x 2 x 2 sampler streams used.
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(b.join("checkpoints/step-000003/trainer.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            &state["step"],
            &state["data_position"],
            &state["next_sample_stream"]
        ),
        (&Value::from(3), &Value::from(6), &Value::from(12))
    );
    assert!(!b.join("checkpoints/step-000006").exists());

    let o = run(&resume_args(&b));
    assert!(o.status.success(), "{}", stderr(&o));

    assert_same_metrics(&a, &b);
    let ma = metrics(&a);
    assert_eq!(ma.len(), 7);
    // The updates were real: BARL's advantages are not all zero.
    assert!(ma[1..]
        .iter()
        .any(|l| l["critic/advantages/max"].as_f64().unwrap() > 0.1));
    assert!(ma[1..]
        .iter()
        .all(|l| l["actor/grad_norm"].as_f64().unwrap() > 0.0));
    assert!(ma[6].get("val/arith/acc").is_some());
    // Both runs end with the same weights.
    same_weights(&a, &b, 6).unwrap();
    assert!(a.join("report.html").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_reported_with_the_key_or_path() {
    let dir = tmp("bad");
    let model = tiny_model(&dir);

    // A model path that does not exist.
    let o = run(&[
        "train".into(),
        "--config".into(),
        "preset:tiny-test".into(),
        "model=/no/such/model".into(),
        "--out".into(),
        dir.join("r1").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("/no/such/model"), "{}", stderr(&o));

    // A dataset without the label key.
    let data = dir.join("data.jsonl");
    std::fs::write(&data, "{\"question\": \"1+1?\", \"answer\": \"2\"}\n").unwrap();
    let mut args = base_args(&model);
    args.extend([
        format!("train_data.source={}", data.display()),
        "train_data.input_key=question".into(),
        "--out".into(),
        dir.join("r2").display().to_string(),
    ]);
    let o = run(&args);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("train_data") && e.contains("`label`"), "{e}");

    // Prompts longer than max_prompt_len: skipped (all, so an error) or truncated
    // (counted in the metrics).
    let mut args = base_args(&model);
    args.extend([
        "max_prompt_len=5".into(),
        "prompt_overflow=skip".into(),
        "--out".into(),
        dir.join("r3").display().to_string(),
    ]);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("max_prompt_len"), "{}", stderr(&o));
    let mut args = base_args(&model);
    let r4 = dir.join("r4");
    args.extend([
        "max_prompt_len=5".into(),
        "num_steps=1".into(),
        "train_data.count=10".into(),
        "--out".into(),
        r4.display().to_string(),
    ]);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(metrics(&r4)[1]["data/prompts_truncated"], 10);

    // Unknown and ill-typed keys name the key.
    let mut args = base_args(&model);
    args.push("n_samples_per_promt=4".into());
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("n_samples_per_promt"), "{}", stderr(&o));
    let mut args = base_args(&model);
    args.push("rollout_batch_size=many".into());
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("rollout_batch_size"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn non_finite_losses_skip_steps_and_stop_the_run() {
    let dir = tmp("nan");
    // A model whose final norm is NaN: every logit, log-prob and loss is NaN.
    let model = save_nan_llama(&dir, 7).unwrap();
    let run_dir = dir.join("r");
    let mut args = base_args(&model);
    args.extend([
        "adv_estimator=grpo".into(),
        "max_skipped_steps=2".into(),
        "eval_data=[]".into(),
        "--out".into(),
        run_dir.display().to_string(),
    ]);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("2 steps in a row") && e.contains("max_skipped_steps"),
        "{e}"
    );
    let m = metrics(&run_dir);
    assert_eq!(m.len(), 2, "stopped after the second skipped step");
    assert_eq!(m[0]["actor/skipped_steps"], 1);
    assert_eq!(m[1]["actor/skipped_steps"], 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ctrl-C (SIGINT) during step 2: the step is finished and saved, the run
/// exits 130 saying how to resume, and the resumed run ends as an
/// uninterrupted one.
#[cfg(unix)]
#[test]
fn ctrl_c_saves_the_step_and_says_how_to_resume() {
    let dir = tmp("sigint");
    let model = tiny_model(&dir);
    let (a, b) = (dir.join("a"), dir.join("b"));
    let o = run(&out_args(&model, &a));
    assert!(o.status.success(), "{}", stderr(&o));

    let args = out_args(&model, &b);
    let child = start_slow_until(&args, &b, 1, Stdio::piped());
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("continue with: barl train --resume"), "{e}");
    // Stopped after step 2 at the latest (the signal came during it): fewer
    // than all 6 steps, and the stopping step's checkpoint is there.
    let done = metrics(&b).len() - 1;
    assert!((1..6).contains(&done), "{done} steps");
    assert!(b
        .join(format!("checkpoints/step-{done:06}/trainer.json"))
        .is_file());

    let o = run(&resume_args(&b));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_metrics(&a, &b);
    let _ = std::fs::remove_dir_all(&dir);
}
