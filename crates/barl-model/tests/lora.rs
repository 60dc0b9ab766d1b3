//! LoRA adapters: the adapted model starts as the base, trains only the
//! adapter, merges to the same function, round-trips through PEFT's files,
//! and gives the logits transformers + PEFT (from PyPI) give for the same
//! files, on random Llama and Qwen2 models and on SmolLM2-135M.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use barl_model::lora::{adapted_modules, init_adapter, merge_adapter};
use barl_model::testing::{
    byte_tokenizer, env_path, fresh_temp_dir, max_abs_diff, present_or_skip, vllm_venv_python,
};
use barl_model::{
    load_adapter, load_model, random_weights, save_adapter, save_hf_folder, AnyModel, Arch,
    CausalLm, LoraConfig, Mode, ModelConfig,
};
use candle_core::{Device, Tensor};

const DEV: Device = Device::Cpu;

fn cfg(arch: Arch) -> ModelConfig {
    ModelConfig {
        arch,
        vocab_size: 258,
        hidden_size: 32,
        intermediate_size: 48,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 8,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 256,
        tie_word_embeddings: arch == Arch::Llama,
        attention_bias: arch == Arch::Qwen2,
        bos_token_id: Some(256),
        eos_token_ids: vec![257],
    }
}

fn lora(rank: usize, targets: &[&str]) -> LoraConfig {
    LoraConfig {
        rank,
        alpha: 2.0 * rank as f64,
        dropout: 0.0,
        target_modules: targets.iter().map(|s| s.to_string()).collect(),
        use_rslora: false,
    }
}

/// An adapter with `B` uniform in `[-0.05, 0.05)` too (a fresh one has `B = 0`
/// and changes nothing).
fn trained_adapter(c: &ModelConfig, l: &LoraConfig, seed: u64) -> HashMap<String, Tensor> {
    scaled_adapter(c, l, seed, 1.0)
}

/// [`trained_adapter`] with `B` times `amp`.
fn scaled_adapter(c: &ModelConfig, l: &LoraConfig, seed: u64, amp: f32) -> HashMap<String, Tensor> {
    let mut w = init_adapter(c, l, seed, &DEV).unwrap();
    for (i, m) in adapted_modules(c, l).iter().enumerate() {
        let n = m.fan_out * l.rank;
        let b: Vec<f32> = (0..n)
            .map(|j| {
                amp * (((j * 7919 + i * 104_729 + seed as usize) % 101) as f32 / 1000.0 - 0.05)
            })
            .collect();
        w.insert(
            m.key('B'),
            Tensor::from_vec(b, (m.fan_out, l.rank), &DEV).unwrap(),
        );
    }
    w
}

fn tokens() -> Tensor {
    Tensor::new(&[[256u32, 72, 101, 108, 108, 111, 44, 32, 119, 111]], &DEV).unwrap()
}

fn logits(m: &dyn CausalLm, mode: Mode) -> Tensor {
    m.forward(&tokens(), None, mode)
        .unwrap()
        .squeeze(0)
        .unwrap()
}

#[test]
fn a_fresh_adapter_is_the_base_model_and_only_the_adapter_trains() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let c = cfg(arch);
        let w = random_weights(&c, 1, &DEV).unwrap();
        let base = AnyModel::from_weights(&c, &w, &DEV).unwrap();
        let want = logits(&base, Mode::Infer);
        let l = lora(4, &["all-linear"]);
        let fresh = init_adapter(&c, &l, 7, &DEV).unwrap();
        let m = base.map_decoder(|d| d.with_adapter(&l, &fresh, 0)).unwrap();
        // B = 0: exactly the base model, on both paths.
        assert_eq!(max_abs_diff(&logits(&m, Mode::Infer), &want), 0.0);
        assert!(max_abs_diff(&logits(&m, Mode::Train), &want) < 1e-4);
        // 2 layers x 7 projections x (A, B), under PEFT's names, in layer order.
        let names: Vec<&str> = m.named_vars().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 28);
        assert_eq!(
            names[0],
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
        );
        assert_eq!(
            names[27],
            "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"
        );
        assert!(m.base().is_some() && m.lora() == Some(&l));

        // With B != 0 every adapter tensor gets a gradient and the frozen
        // weights (not variables) are untouched by construction.
        let t = trained_adapter(&c, &l, 3);
        let base = AnyModel::from_weights(&c, &w, &DEV).unwrap();
        let m = base.map_decoder(|d| d.with_adapter(&l, &t, 0)).unwrap();
        let loss = logits(&m, Mode::Train).sqr().unwrap().mean_all().unwrap();
        let grads = loss.backward().unwrap();
        barl_model::testing::assert_every_var_has_a_gradient(
            &grads,
            m.named_vars().iter().map(|(n, v)| (n.as_str(), v)),
        );
        // The KL reference is the base without the adapter.
        let reference = m.base().unwrap();
        assert_eq!(max_abs_diff(&logits(reference, Mode::Infer), &want), 0.0);
    }
}

#[test]
fn merging_gives_the_adapted_function_and_files_round_trip() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let c = cfg(arch);
        let w = random_weights(&c, 4, &DEV).unwrap();
        let l = LoraConfig {
            use_rslora: arch == Arch::Qwen2,
            ..lora(8, &["q_proj", "o_proj", "up_proj"])
        };
        let t = trained_adapter(&c, &l, 9);
        let m = AnyModel::from_weights(&c, &w, &DEV)
            .unwrap()
            .map_decoder(|d| d.with_adapter(&l, &t, 0))
            .unwrap();
        let adapted = logits(&m, Mode::Infer);
        let base = logits(m.base().unwrap(), Mode::Infer);
        assert!(
            max_abs_diff(&adapted, &base) > 1e-2,
            "the adapter must change the logits"
        );
        assert!(max_abs_diff(&logits(&m, Mode::Train), &adapted) < 1e-4);

        let merged = AnyModel::from_weights(&c, &m.merged_weights().unwrap(), &DEV).unwrap();
        let d = max_abs_diff(&logits(&merged, Mode::Infer), &adapted);
        assert!(d < 1e-4, "{arch:?}: merged vs adapted {d}");

        // Merged inference weights: the same logits, and the same greedy
        // tokens through the decode fast path as the unmerged general path.
        let greedy = |m: &AnyModel| {
            let prompts = [&[256u32, 72, 101][..], &[256u32, 9][..]];
            let sc = barl_model::SampleConfig::greedy(12);
            let out = barl_model::sample(m, &prompts, &sc).unwrap();
            out.into_iter().map(|c| c.tokens).collect::<Vec<_>>()
        };
        let unmerged_tokens = greedy(&m);
        let mut fast = AnyModel::from_weights(&c, &w, &DEV)
            .unwrap()
            .map_decoder(|d| d.with_adapter(&l, &t, 0))
            .unwrap();
        fast.decoder_mut().merge_for_inference().unwrap();
        assert!(max_abs_diff(&logits(&fast, Mode::Infer), &adapted) < 1e-4);
        assert_eq!(greedy(&fast), unmerged_tokens);
        assert_eq!(greedy(&merged), unmerged_tokens);

        let dir = fresh_temp_dir(&format!("lora-roundtrip-{arch:?}"));
        save_adapter(&dir.join("adapter"), &l, &m.to_weights().unwrap(), "base").unwrap();
        let back = load_adapter(&dir.join("adapter"), &DEV).unwrap();
        assert_eq!(back.config, l);
        assert_eq!(back.base_model, "base");
        for (k, v) in &t {
            assert_eq!(max_abs_diff(v, &back.weights[k]), 0.0, "{k}");
        }
        let mut w2 = w.clone();
        merge_adapter(&c, &mut w2, &back.config, &back.weights).unwrap();
        let again = AnyModel::from_weights(&c, &w2, &DEV).unwrap();
        assert!(max_abs_diff(&logits(&again, Mode::Infer), &adapted) < 1e-4);
    }
}

#[test]
fn bad_adapters_are_errors_that_name_the_problem() {
    let c = cfg(Arch::Llama);
    let l = lora(4, &["q_proj"]);
    let t = init_adapter(&c, &l, 0, &DEV).unwrap();
    let dir = fresh_temp_dir("lora-bad");
    let a = dir.join("a");
    save_adapter(&a, &l, &t, "").unwrap();
    let cfg_path = a.join("adapter_config.json");
    let text = std::fs::read_to_string(&cfg_path).unwrap();
    let edit = |from: &str, to: &str| {
        std::fs::write(&cfg_path, text.replace(from, to)).unwrap();
        load_adapter(&a, &DEV).unwrap_err().to_string()
    };
    assert!(edit("\"use_dora\": false", "\"use_dora\": true").contains("use_dora"));
    assert!(edit("\"r\": 4", "\"r\": 0").contains("lora.rank"));
    assert!(edit("\"LORA\"", "\"IA3\"").contains("peft_type"));
    let e = edit("\"q_proj\"", "\"qkv\"");
    assert!(e.contains("unknown module \"qkv\""), "{e}");
    std::fs::write(&cfg_path, &text).unwrap();
    std::fs::write(a.join("adapter_model.safetensors"), b"truncated").unwrap();
    let e = load_adapter(&a, &DEV).unwrap_err().to_string();
    assert!(e.contains("adapter_model.safetensors"), "{e}");

    // A rank-4 adapter on a model of another width: the tensor is named.
    let mut small = c.clone();
    small.hidden_size = 16;
    small.head_dim = 4;
    let m =
        AnyModel::from_weights(&small, &random_weights(&small, 0, &DEV).unwrap(), &DEV).unwrap();
    let e = m
        .map_decoder(|d| d.with_adapter(&l, &t, 0))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("q_proj.lora_A.weight"), "{e}");
}

/// transformers + PEFT's logits for `base_dir` with `adapter_dir` on `ids`:
/// (adapted, base).
fn peft_logits(py: &Path, base_dir: &Path, adapter_dir: &Path, ids: &[u32]) -> (Tensor, Tensor) {
    let out = adapter_dir.with_extension("peft.safetensors");
    let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/peft_logits.py");
    let status = Command::new(py)
        .arg(script)
        .args([base_dir, adapter_dir])
        .arg(ids.join(","))
        .arg(&out)
        .status()
        .expect("the venv's python runs");
    assert!(status.success(), "peft_logits.py failed");
    let mut t = candle_core::safetensors::load(&out, &DEV).unwrap();
    (t.remove("adapted").unwrap(), t.remove("base").unwrap())
}

fn peft_python() -> Option<std::path::PathBuf> {
    present_or_skip(
        "the venv of scripts/vllm-cpu.sh install (transformers + PEFT)",
        vllm_venv_python(),
    )
}

#[test]
fn peft_loads_barls_adapter_to_the_same_logits_on_random_models() {
    let Some(py) = peft_python() else { return };
    for arch in [Arch::Llama, Arch::Qwen2] {
        let c = cfg(arch);
        let w = random_weights(&c, 6, &DEV).unwrap();
        let dir = fresh_temp_dir(&format!("lora-peft-{arch:?}"));
        save_hf_folder(&dir.join("base"), &c, &w, &byte_tokenizer().unwrap(), None).unwrap();
        let l = lora(4, &["all-linear"]);
        let m = AnyModel::from_weights(&c, &w, &DEV)
            .unwrap()
            .map_decoder(|d| d.with_adapter(&l, &trained_adapter(&c, &l, 1), 0))
            .unwrap();
        save_adapter(&dir.join("adapter"), &l, &m.to_weights().unwrap(), "base").unwrap();
        let ids: Vec<u32> = tokens().flatten_all().unwrap().to_vec1().unwrap();
        let (adapted, base) = peft_logits(&py, &dir.join("base"), &dir.join("adapter"), &ids);
        let ours = logits(&m, Mode::Infer);
        let d = max_abs_diff(&ours, &adapted);
        eprintln!("{arch:?}: barl vs PEFT max |diff| {d:.2e}");
        assert!(d < 1e-4, "{arch:?}: {d}");
        assert!(max_abs_diff(&logits(m.base().unwrap(), Mode::Infer), &base) < 1e-4);
        assert!(max_abs_diff(&adapted, &base) > 1e-2);
    }
}

#[test]
fn peft_loads_barls_smollm2_adapter_to_the_same_logits() {
    let Some(py) = peft_python() else { return };
    let Some(gguf) = env_path("BARL_SMOLLM2") else {
        return;
    };
    let dir = fresh_temp_dir("lora-peft-smollm2");
    barl_model::convert(&gguf, &dir.join("base"), candle_core::DType::F32).unwrap();
    let loaded = load_model(&dir.join("base"), &DEV).unwrap();
    let c = &loaded.config;
    let l = lora(16, &["all-linear"]);
    let m = AnyModel::from_weights(c, &loaded.weights, &DEV)
        .unwrap()
        // B within +-0.005 (a trained adapter's size, lr 1e-4 for tens of
        // steps): the update still moves logits by far more than 1e-4.
        .map_decoder(|d| d.with_adapter(&l, &scaled_adapter(c, &l, 2, 0.1), 0))
        .unwrap();
    save_adapter(&dir.join("adapter"), &l, &m.to_weights().unwrap(), "base").unwrap();
    let ids = loaded
        .tokenizer
        .encode("The capital of France is", true)
        .unwrap();
    let (adapted, base) = peft_logits(&py, &dir.join("base"), &dir.join("adapter"), &ids);
    let row = Tensor::from_vec(ids.clone(), (1, ids.len()), &DEV).unwrap();
    let ours = m
        .forward(&row, None, Mode::Infer)
        .unwrap()
        .squeeze(0)
        .unwrap();
    let d = max_abs_diff(&ours, &adapted);
    let base_ours = m
        .base()
        .unwrap()
        .forward(&row, None, Mode::Infer)
        .unwrap()
        .squeeze(0)
        .unwrap();
    let db = max_abs_diff(&base_ours, &base);
    let big = adapted
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let moved = max_abs_diff(&adapted, &base);
    eprintln!(
        "SmolLM2-135M rank 16 all-linear: barl vs PEFT max |diff| {d:.2e} (base model alone \
         {db:.2e}, max |logit| {big:.1}); the adapter moves logits by up to {moved:.2}"
    );
    assert!(d < 1e-4, "{d}");
    assert!(moved > 1e-2, "{moved}");
}
