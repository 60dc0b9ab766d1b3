//! The math `Trainer` in-process on a tiny random Llama with a byte tokenizer:
//! a 2-step run writes the metrics lines and checkpoints it should, and a run
//! stopped after its first step resumes to the same metrics and weights.

use std::path::{Path, PathBuf};

use barl_model::testing::{fresh_temp_dir, save_nan_llama, save_tiny_llama};
use barl_train::math::checkpoint::load_state;
use barl_train::math::config::TrainConfig;
use barl_train::math::metrics::StepRecord;
use barl_train::math::trainer::Trainer;
use barl_train::TrainError;
use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    fresh_temp_dir(&format!("trainer-{name}"))
}

fn tiny_model(dir: &Path) -> PathBuf {
    save_tiny_llama(dir, 7).unwrap()
}

/// tiny-test, two steps, a checkpoint after each.
fn config(model: &Path) -> TrainConfig {
    let overrides: Vec<String> = [
        format!("model={}", model.display()),
        "adv_estimator=barl".into(),
        "prompt_style=raw:Q: {question}\nA:".into(),
        "num_steps=2".into(),
        "save_every=1".into(),
    ]
    .into();
    TrainConfig::load(Some(Path::new("preset:tiny-test")), &overrides).unwrap()
}

/// metrics.jsonl without wall-clock figures (timing_s/*, perf/*).
fn metrics(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Map<String, Value> = serde_json::from_str(l).unwrap();
            v.retain(|k, _| !k.starts_with("timing_s/") && !k.starts_with("perf/"));
            Value::Object(v)
        })
        .collect()
}

fn weights(run: &Path, step: usize) -> Vec<u8> {
    std::fs::read(run.join(format!(
        "checkpoints/step-{step:06}/model/model.safetensors"
    )))
    .unwrap()
}

#[test]
fn two_steps_log_checkpoint_and_resume_exactly() {
    let dir = tmp("run");
    let model = tiny_model(&dir);
    let cfg = config(&model);
    let per_step = cfg.rollout_batch_size;
    let streams = cfg.rollout_batch_size * cfg.n_samples_per_prompt;

    // A whole run: the initial evaluation's line, then one line per step.
    let a = dir.join("a");
    let mut trainer = Trainer::new(cfg.clone(), &a, false).unwrap();
    assert!(trainer.evaluates_first());
    let mut seen: Vec<StepRecord> = Vec::new();
    trainer.run(&mut |l| seen.push(l.clone())).unwrap();
    assert_eq!(
        seen.iter().map(|l| l.step).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(seen[0].train.is_none() && seen[0].val.contains_key("val/arith/acc"));
    let first = seen[1].train.as_ref().unwrap();
    assert!(first.grad_norm > 0.0, "the update had a gradient");
    assert_eq!(first.lr, cfg.learning_rate);
    // eval_every = 0: the held-out sets again only after the last step.
    assert!(seen[1].val.is_empty() && seen[2].val.contains_key("val/arith/acc"));
    let lines = metrics(&a);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["critic/score/mean"], first.score_mean);
    assert!(lines[1].get("barl/num_hypotheses/mean").is_some());
    assert!(lines[1].get("actor/kl").is_none(), "kl_coef = 0");
    // The checkpoint holds the positions two steps reached.
    let st = load_state(&a.join("checkpoints/step-000002")).unwrap();
    assert_eq!(
        (st.step, st.data_position, st.next_sample_stream),
        (2, 2 * per_step, 2 * streams as u64)
    );
    assert_eq!(trainer.state(), &st);
    assert!(a.join("eval/step-000002/arith.jsonl").is_file());

    // The same run stopped after its first step (the trainer dropped), then
    // resumed from that checkpoint.
    let b = dir.join("b");
    let mut trainer = Trainer::new(cfg.clone(), &b, false).unwrap();
    trainer.run_until(1, &mut |_| {}).unwrap();
    drop(trainer);
    assert_eq!(metrics(&b).len(), 2);
    let mut trainer = Trainer::new(cfg.clone(), &b, true).unwrap();
    assert_eq!(
        trainer.resumed_from(),
        Some(b.join("checkpoints/step-000001").as_path())
    );
    assert!(!trainer.evaluates_first() && !trainer.finished());
    trainer.run(&mut |_| {}).unwrap();
    assert!(Trainer::new(cfg.clone(), &b, true).unwrap().finished());
    assert_eq!(metrics(&a), metrics(&b));
    assert!(weights(&a, 2) == weights(&b, 2), "final weights differ");
    assert!(weights(&a, 1) == weights(&b, 1));

    // A resumed run refuses a changed config; a new one refuses a used folder.
    let mut changed = cfg.clone();
    changed.learning_rate *= 2.0;
    let err = Trainer::new(changed, &b, true).err().unwrap();
    assert!(
        err.is_usage() && err.to_string().contains("config differs"),
        "{err}"
    );
    let err = Trainer::new(cfg, &a, false).err().unwrap();
    assert!(matches!(err, TrainError::Setting(_)), "{err}");
    assert!(err.to_string().contains("already holds a run"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_diverged_run_without_checkpoints_says_so() {
    let dir = tmp("nan");
    // A final norm of NaN: every loss is NaN, so every step is skipped.
    let model = save_nan_llama(&dir, 7).unwrap();
    let mut cfg = config(&model);
    cfg.save_every = 0;
    cfg.max_skipped_steps = 1;
    cfg.eval_data.clear();
    let mut trainer = Trainer::new(cfg, &dir.join("r"), false).unwrap();
    let err = trainer.run(&mut |_| {}).unwrap_err();
    assert!(matches!(err, TrainError::Diverged(_)), "{err}");
    assert!(
        err.to_string()
            .ends_with("no checkpoint was written yet (save_every = 0)"),
        "{err}"
    );
    assert_eq!(trainer.state().skipped_total, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_newest_checkpoint_is_passed_over_on_resume() {
    let dir = tmp("damaged");
    let model = tiny_model(&dir);
    let cfg = config(&model);
    let (a, b) = (dir.join("a"), dir.join("b"));
    Trainer::new(cfg.clone(), &a, false)
        .unwrap()
        .run(&mut |_| {})
        .unwrap();
    Trainer::new(cfg.clone(), &b, false)
        .unwrap()
        .run(&mut |_| {})
        .unwrap();
    // Flip one byte of the newest checkpoint's weights: same size, other hash.
    let weights_file = b.join("checkpoints/step-000002/model/model.safetensors");
    let mut bytes = std::fs::read(&weights_file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&weights_file, bytes).unwrap();

    let mut trainer = Trainer::new(cfg, &b, true).unwrap();
    assert_eq!(
        trainer.resumed_from(),
        Some(b.join("checkpoints/step-000001").as_path())
    );
    let rejected = trainer.rejected_checkpoints();
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0]
        .1
        .to_string()
        .contains("does not match the manifest"));
    // Step 2 is trained again and ends where the undamaged run did.
    trainer.run(&mut |_| {}).unwrap();
    assert_eq!(metrics(&a), metrics(&b));
    assert!(weights(&a, 2) == weights(&b, 2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_collapse_guard_warns_and_can_stop_the_run() {
    let dir = tmp("collapse");
    let model = tiny_model(&dir);
    let mut cfg = config(&model);
    cfg.save_every = 0;
    // Any real gradient is "too large" here, so the guard fires on step 1. (A
    // random model is near-uniform, entropy 0.999 of ln(vocab): that guard is
    // set out of reach.)
    cfg.collapse_grad_norm = 0.0;
    cfg.collapse_entropy_ratio = 1.0;
    let mut warned = Vec::new();
    let mut trainer = Trainer::new(cfg.clone(), &dir.join("warn"), false).unwrap();
    trainer
        .run(&mut |l| warned.extend(l.warnings.clone()))
        .unwrap();
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert!(warned[0].contains("collapse_grad_norm"), "{warned:?}");

    cfg.stop_on_collapse = true;
    let run = dir.join("stop");
    let mut trainer = Trainer::new(cfg, &run, false).unwrap();
    let err = trainer.run(&mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("stop_on_collapse"), "{err}");
    assert_eq!(trainer.state().step, 1);
    assert!(run.join("checkpoints/step-000001/trainer.json").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stop_request_saves_the_step_and_resume_finishes_the_run() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let dir = tmp("stop");
    let model = tiny_model(&dir);
    let mut cfg = config(&model);
    cfg.save_every = 0;
    let (a, b) = (dir.join("a"), dir.join("b"));
    Trainer::new(cfg.clone(), &a, false)
        .unwrap()
        .run(&mut |_| {})
        .unwrap();
    let mut trainer = Trainer::new(cfg.clone(), &b, false).unwrap();
    trainer.stop = Some(Arc::new(AtomicBool::new(true)));
    match trainer.run(&mut |_| {}) {
        Err(TrainError::Interrupted { step, checkpoint }) => {
            assert_eq!(step, 1);
            assert!(checkpoint.join("trainer.json").is_file());
        }
        other => panic!("expected an interruption, got {:?}", other.map(|_| ())),
    }
    // A half-written checkpoint a killed run left behind is cleaned up.
    let stale = b.join("checkpoints/.tmp-step-000002");
    std::fs::create_dir_all(stale.join("model")).unwrap();
    let mut trainer = Trainer::new(cfg, &b, true).unwrap();
    assert!(!stale.exists());
    trainer.run(&mut |_| {}).unwrap();
    assert_eq!(metrics(&a), metrics(&b));
    assert!(weights(&a, 2) == weights(&b, 2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_lora_run_trains_only_the_adapter_with_the_base_as_reference_and_resumes_exactly() {
    let dir = tmp("lora");
    let model = tiny_model(&dir);
    let mut cfg = config(&model);
    cfg.lora.rank = 4;
    cfg.lora.dropout = 0.1;
    cfg.lora.merge_for_sampling = false;
    cfg.kl_coef = 0.05;
    cfg.learning_rate = 1e-2;
    let adapter = |run: &Path, step: usize| run.join(format!("checkpoints/step-{step:06}/adapter"));

    let a = dir.join("a");
    let mut seen: Vec<StepRecord> = Vec::new();
    Trainer::new(cfg.clone(), &a, false)
        .unwrap()
        .run(&mut |l| seen.push(l.clone()))
        .unwrap();
    // Checkpoints hold the adapter in PEFT's layout, no model copy.
    assert!(adapter(&a, 2).join("adapter_model.safetensors").is_file());
    assert!(!a.join("checkpoints/step-000002/model").exists());
    let ad = barl_model::load_adapter(&adapter(&a, 2), &candle_core::Device::Cpu).unwrap();
    assert!(ad.config.equivalent(&cfg.lora.config().unwrap()));
    assert_eq!(ad.base_model, model.display().to_string());
    // 2 layers x 7 projections x (A, B); B left zero only if nothing trained.
    assert_eq!(ad.weights.len(), 28);
    let b = &ad.weights["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"];
    let moved = b
        .abs()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(moved > 0.0, "lora_B never moved");
    // The reference is the base without the adapter: at step 1 (B = 0) the
    // policy is the base, so the KL estimate is 0 up to round-off.
    let kl1 = seen[1].train.as_ref().unwrap().kl.unwrap();
    assert!(kl1.abs() < 1e-5, "step 1 KL to the base {kl1}");

    // Stopped after step 1 and resumed: the same metrics (dropout masks
    // included) and the same adapter.
    let b = dir.join("b");
    let mut trainer = Trainer::new(cfg.clone(), &b, false).unwrap();
    trainer.run_until(1, &mut |_| {}).unwrap();
    drop(trainer);
    Trainer::new(cfg.clone(), &b, true)
        .unwrap()
        .run(&mut |_| {})
        .unwrap();
    assert_eq!(metrics(&a), metrics(&b));
    let bytes =
        |run: &Path| std::fs::read(adapter(run, 2).join("adapter_model.safetensors")).unwrap();
    assert!(bytes(&a) == bytes(&b), "final adapters differ");

    // Sampling on merged copies (the default; refreshed after each update)
    // resumes exactly too.
    let mut merged = cfg.clone();
    merged.lora.merge_for_sampling = true;
    let (c, d) = (dir.join("c"), dir.join("d"));
    let mut whole = Vec::new();
    Trainer::new(merged.clone(), &c, false)
        .unwrap()
        .run(&mut |l| whole.push(l.clone()))
        .unwrap();
    let mut trainer = Trainer::new(merged.clone(), &d, false).unwrap();
    trainer.run_until(1, &mut |_| {}).unwrap();
    drop(trainer);
    Trainer::new(merged, &d, true)
        .unwrap()
        .run(&mut |_| {})
        .unwrap();
    assert_eq!(metrics(&c), metrics(&d));
    assert!(
        bytes(&c) == bytes(&d),
        "final adapters differ (merged sampling)"
    );
    assert!(whole[2].train.as_ref().unwrap().grad_norm > 0.0);

    // Progress and GRPO train the adapter as well.
    for method in ["progress", "grpo"] {
        let mut m = cfg.clone();
        m.adv_estimator = method.parse().unwrap();
        m.num_steps = 1;
        let mut last = None;
        Trainer::new(m, &dir.join(method), false)
            .unwrap()
            .run(&mut |l| last = l.train.clone())
            .unwrap();
        let g = last.unwrap().grad_norm;
        assert!(g > 0.0 && g.is_finite(), "{method}: grad norm {g}");
    }

    // Bad settings name their key.
    let mut bad = cfg.clone();
    bad.lora.target_modules = vec!["qkv_proj".into()];
    let err = Trainer::new(bad, &dir.join("e"), false).err().unwrap();
    assert!(err.to_string().contains("lora.target_modules"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
