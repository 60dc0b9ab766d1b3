//! Hugging Face model folders: save/load round trips (f32 bit-exact, bf16
//! rounded once), the layout transformers expects, sharded folders, and errors
//! that name the file and the key.

mod loading_support;

use std::path::Path;

use barl_model::hf::save_hf_folder_as;
use barl_model::{load_gguf, load_hf_folder, save_hf_folder, Arch, Llama3RopeScaling, ModelConfig};
use candle_core::{DType, Device};
use half::bf16;
use loading_support::*;

fn tiny_tokenizer() -> barl_model::Tokenizer {
    let dir = scratch_dir("tok-src");
    let cfg = tiny_config(Arch::Llama, true);
    let path = dir.join("t.gguf");
    tiny_gguf(&cfg, &random_weights(&cfg, 1)).write(&path);
    load_gguf(&path, &Device::Cpu).unwrap().tokenizer
}

#[test]
fn hf_save_load_round_trip_is_bit_exact() {
    let dir = scratch_dir("hf-roundtrip");
    let tok = tiny_tokenizer();
    let mut llama3 = tiny_config(Arch::Llama, false);
    llama3.rope_scaling = Some(Llama3RopeScaling {
        factor: 32.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192,
    });
    // An f32-rounded eps, as GGUF metadata gives it, must survive JSON.
    llama3.rms_norm_eps = f64::from(1e-5f32);
    llama3.eos_token_ids = vec![259, 258];
    let mut no_bos = tiny_config(Arch::Qwen2, true);
    no_bos.bos_token_id = None;
    for (i, cfg) in [
        tiny_config(Arch::Llama, true),
        llama3,
        tiny_config(Arch::Qwen2, false),
        no_bos,
    ]
    .iter()
    .enumerate()
    {
        let weights = random_weights(cfg, 100 + i as u64);
        let out = dir.join(format!("m{i}"));
        let template = "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}";
        save_hf_folder(&out, cfg, &weights, &tok, Some(template)).unwrap();
        let m = load_hf_folder(&out, &Device::Cpu).unwrap();
        assert_eq!(&m.config, cfg, "config {i}");
        assert_weights_equal(&m.weights, &weights);
        assert_eq!(m.chat_template.as_deref(), Some(template));
        for text in ["<|im_start|>hi  there 123\n", "ünïcödé 🙂"] {
            assert_eq!(
                m.tokenizer.encode(text, true).unwrap(),
                tok.encode(text, true).unwrap()
            );
        }
        assert_eq!(m.tokenizer.bos_token_id(), Some(258));
        assert_eq!(m.tokenizer.eos_token_id(), Some(259));
        // Saving again over the same folder replaces it.
        save_hf_folder(&out, cfg, &weights, &tok, None).unwrap();
        assert_eq!(
            load_hf_folder(&out, &Device::Cpu).unwrap().chat_template,
            None
        );
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "temporary folders left behind");
    }
}

#[test]
fn hf_bf16_save_rounds_each_weight_once() {
    let dir = scratch_dir("hf-bf16");
    let cfg = tiny_config(Arch::Llama, true);
    let weights = random_weights(&cfg, 9);
    save_hf_folder_as(
        &dir.join("m"),
        &cfg,
        &weights,
        &tiny_tokenizer(),
        None,
        DType::BF16,
    )
    .unwrap();
    let m = load_hf_folder(&dir.join("m"), &Device::Cpu).unwrap();
    for (name, t) in &weights {
        let want: Vec<f32> = t
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|&x| bf16::from_f32(x).to_f32())
            .collect();
        assert_eq!(
            m.weights[name]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            want,
            "{name}"
        );
    }
    let cfg_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("m/config.json")).unwrap()).unwrap();
    assert_eq!(cfg_json["torch_dtype"], "bfloat16");
}

/// Reads a safetensors header independently: `u64 n`, then n bytes of JSON.
fn safetensors_header(path: &Path) -> serde_json::Map<String, serde_json::Value> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + n]).unwrap()
}

#[test]
fn hf_saved_folder_has_transformers_layout() {
    let dir = scratch_dir("hf-layout");
    // Qwen2, untied: every tensor kind including biases and lm_head.
    let cfg = tiny_config(Arch::Qwen2, false);
    save_hf_folder(
        &dir.join("q"),
        &cfg,
        &random_weights(&cfg, 2),
        &tiny_tokenizer(),
        None,
    )
    .unwrap();
    let header = safetensors_header(&dir.join("q/model.safetensors"));
    // Written out by hand from transformers' Qwen2ForCausalLM state dict (hidden 8,
    // 2 heads x 4, 1 kv head, intermediate 12, vocab 260).
    let mut want: Vec<(String, Vec<usize>)> = vec![
        ("lm_head.weight".into(), vec![260, 8]),
        ("model.embed_tokens.weight".into(), vec![260, 8]),
        ("model.norm.weight".into(), vec![8]),
    ];
    for l in 0..2 {
        for (n, s) in [
            ("input_layernorm.weight", vec![8]),
            ("mlp.down_proj.weight", vec![8, 12]),
            ("mlp.gate_proj.weight", vec![12, 8]),
            ("mlp.up_proj.weight", vec![12, 8]),
            ("post_attention_layernorm.weight", vec![8]),
            ("self_attn.k_proj.bias", vec![4]),
            ("self_attn.k_proj.weight", vec![4, 8]),
            ("self_attn.o_proj.weight", vec![8, 8]),
            ("self_attn.q_proj.bias", vec![8]),
            ("self_attn.q_proj.weight", vec![8, 8]),
            ("self_attn.v_proj.bias", vec![4]),
            ("self_attn.v_proj.weight", vec![4, 8]),
        ] {
            want.push((format!("model.layers.{l}.{n}"), s));
        }
    }
    assert_eq!(header["__metadata__"]["format"], "pt");
    let got: usize = header.keys().filter(|k| *k != "__metadata__").count();
    assert_eq!(got, want.len());
    for (name, shape) in &want {
        let e = header.get(name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(e["dtype"], "F32", "{name}");
        let s: Vec<usize> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(&s, shape, "{name}");
    }

    let read = |p: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(p)).unwrap()).unwrap()
    };
    let c = read("q/config.json");
    let expect = serde_json::json!({
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 8,
        "intermediate_size": 12, "num_attention_heads": 2, "num_hidden_layers": 2,
        "num_key_value_heads": 1, "head_dim": 4, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "vocab_size": 260, "tie_word_embeddings": false, "max_position_embeddings": 64,
        "torch_dtype": "float32", "bos_token_id": 258, "eos_token_id": 259, "hidden_act": "silu",
        "use_sliding_window": false,
    });
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&c[k], v, "config.json key {k}");
    }
    let g = read("q/generation_config.json");
    assert_eq!(
        (g["bos_token_id"].clone(), g["eos_token_id"].clone()),
        (serde_json::json!(258), serde_json::json!(259))
    );
    let tc = read("q/tokenizer_config.json");
    assert_eq!(tc["bos_token"], "<|im_start|>");
    assert_eq!(tc["eos_token"], "<|im_end|>");
    assert_eq!(tc["tokenizer_class"], "PreTrainedTokenizerFast");
    let tj = read("q/tokenizer.json");
    assert_eq!(tj["model"]["type"], "BPE");
    assert_eq!(tj["model"]["vocab"]["hi"], 257);

    // Llama, tied: no lm_head; Llama keys.
    let cfg = tiny_config(Arch::Llama, true);
    save_hf_folder(
        &dir.join("l"),
        &cfg,
        &random_weights(&cfg, 2),
        &tiny_tokenizer(),
        None,
    )
    .unwrap();
    let header = safetensors_header(&dir.join("l/model.safetensors"));
    assert!(!header.contains_key("lm_head.weight"));
    assert!(!header.contains_key("model.layers.0.self_attn.q_proj.bias"));
    assert_eq!(header.len() - 1, 2 + 2 * 9);
    let c = read("l/config.json");
    assert_eq!(c["architectures"], serde_json::json!(["LlamaForCausalLM"]));
    assert_eq!(c["model_type"], "llama");
    assert_eq!(c["tie_word_embeddings"], true);
    assert_eq!(c["attention_bias"], false);
    assert_eq!(c["rope_scaling"], serde_json::Value::Null);
}

#[test]
fn hf_sharded_folder_loads() {
    let dir = scratch_dir("hf-sharded");
    let cfg = tiny_config(Arch::Llama, false);
    let weights = random_weights(&cfg, 4);
    let m = dir.join("m");
    save_hf_folder(&m, &cfg, &weights, &tiny_tokenizer(), None).unwrap();
    // Split model.safetensors into two shards with an index, as transformers does.
    let whole = std::fs::read(m.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&whole).unwrap();
    let mut names = st.names();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut map = serde_json::Map::new();
    for (i, part) in [a, b].iter().enumerate() {
        let file = format!("model-{:05}-of-00002.safetensors", i + 1);
        let views: Vec<(&str, safetensors::tensor::TensorView)> =
            part.iter().map(|n| (*n, st.tensor(n).unwrap())).collect();
        safetensors::serialize_to_file(views, None, &m.join(&file)).unwrap();
        for n in part.iter() {
            map.insert(n.to_string(), serde_json::json!(file));
        }
    }
    std::fs::remove_file(m.join("model.safetensors")).unwrap();
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(m.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let loaded = load_hf_folder(&m, &Device::Cpu).unwrap();
    assert_weights_equal(&loaded.weights, &weights);

    // A tensor listed in the index under the wrong shard: names the tensor and the shard.
    let moved = b[0].to_string();
    map.insert(
        moved.clone(),
        serde_json::json!("model-00001-of-00002.safetensors"),
    );
    let index = serde_json::json!({"weight_map": map});
    std::fs::write(m.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let msg = err_string(load_hf_folder(&m, &Device::Cpu));
    assert!(
        msg.contains("model-00001-of-00002.safetensors") && msg.contains(&format!("'{moved}'")),
        "{msg}"
    );
}

#[test]
fn hf_errors_name_file_and_key() {
    let dir = scratch_dir("hf-errors");
    let cfg = tiny_config(Arch::Llama, true);
    let weights = random_weights(&cfg, 8);
    let tok = tiny_tokenizer();
    let fresh = |name: &str| {
        let p = dir.join(name);
        save_hf_folder(&p, &cfg, &weights, &tok, None).unwrap();
        p
    };
    let edit_config = |p: &Path, f: &dyn Fn(&mut serde_json::Value)| {
        let mut c: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p.join("config.json")).unwrap()).unwrap();
        f(&mut c);
        std::fs::write(p.join("config.json"), c.to_string()).unwrap();
    };

    // Missing tensor: rewrite model.safetensors without one.
    let p = fresh("missing");
    let mut w = weights.clone();
    w.remove("model.layers.1.mlp.up_proj.weight");
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = w
        .iter()
        .map(|(n, t)| {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (
                n.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                t.dims().to_vec(),
            )
        })
        .collect();
    let views: Vec<(&str, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(n, b, s)| {
            (
                n.as_str(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &p.join("model.safetensors")).unwrap();
    let msg = err_string(load_hf_folder(&p, &Device::Cpu));
    assert!(
        msg.contains("model.safetensors")
            && msg.contains("missing tensor 'model.layers.1.mlp.up_proj.weight'"),
        "{msg}"
    );

    // Bad config keys.
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "badtype",
            Box::new(|c| c["hidden_size"] = serde_json::json!("eight")),
            "key 'hidden_size': invalid type: string \"eight\", expected usize",
        ),
        (
            "nokey",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("num_hidden_layers");
            }),
            "missing key 'num_hidden_layers'",
        ),
        (
            "arch",
            Box::new(|c| c["model_type"] = serde_json::json!("gpt2")),
            "unknown architecture 'gpt2'",
        ),
        (
            "eos",
            Box::new(|c| c["eos_token_id"] = serde_json::json!(["x"])),
            "key 'eos_token_id'",
        ),
        (
            "rope",
            Box::new(|c| {
                c["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 4.0})
            }),
            "'rope_scaling.rope_type' is 'yarn'",
        ),
        (
            "llama3",
            Box::new(|c| {
                c["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 4.0})
            }),
            "missing key 'rope_scaling.low_freq_factor'",
        ),
        (
            "heads",
            Box::new(|c| c["num_key_value_heads"] = serde_json::json!(3)),
            "num_key_value_heads",
        ),
        (
            "shape",
            Box::new(|c| c["intermediate_size"] = serde_json::json!(10)),
            "'model.layers.0.mlp.gate_proj.weight' has shape [12, 8], expected [10, 8]",
        ),
    ];
    for (name, edit, want) in cases {
        let p = fresh(name);
        edit_config(&p, &*edit);
        let msg = err_string(load_hf_folder(&p, &Device::Cpu));
        let file = if name == "shape" {
            "model.safetensors"
        } else {
            "config.json"
        };
        assert!(msg.contains(file) && msg.contains(want), "{name}: {msg}");
    }

    // Missing and broken files.
    let p = fresh("noconfig");
    std::fs::remove_file(p.join("config.json")).unwrap();
    assert!(err_string(load_hf_folder(&p, &Device::Cpu)).contains("config.json: cannot read"));
    let p = fresh("badjson");
    std::fs::write(p.join("config.json"), "{ not json").unwrap();
    assert!(err_string(load_hf_folder(&p, &Device::Cpu)).contains("config.json: invalid JSON"));
    let p = fresh("badst");
    std::fs::write(
        p.join("model.safetensors"),
        b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage",
    )
    .unwrap();
    assert!(err_string(load_hf_folder(&p, &Device::Cpu))
        .contains("model.safetensors: not a valid safetensors file"));
    let p = fresh("notok");
    std::fs::remove_file(p.join("tokenizer.json")).unwrap();
    assert!(err_string(load_hf_folder(&p, &Device::Cpu)).contains("tokenizer.json: cannot read"));
    let p = fresh("badtc");
    std::fs::write(
        p.join("tokenizer_config.json"),
        r#"{"eos_token": "<|nope|>"}"#,
    )
    .unwrap();
    let msg = err_string(load_hf_folder(&p, &Device::Cpu));
    assert!(
        msg.contains("tokenizer_config.json") && msg.contains("key 'eos_token'"),
        "{msg}"
    );
    let p = fresh("gen");
    std::fs::write(p.join("generation_config.json"), r#"{"eos_token_id": -1}"#).unwrap();
    let msg = err_string(load_hf_folder(&p, &Device::Cpu));
    assert!(
        msg.contains("generation_config.json") && msg.contains("'eos_token_id'"),
        "{msg}"
    );
    assert!(err_string(load_hf_folder(&dir.join("nowhere"), &Device::Cpu)).contains("config.json"));
}

#[test]
fn hf_config_reads_transformers_v5_rope_parameters_and_defaults() {
    // transformers >= 5 writes rope_theta inside rope_parameters; head_dim and
    // num_key_value_heads may be absent (defaults: hidden / heads, heads).
    let json = r#"{"model_type": "llama", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 256,
        "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0},
        "eos_token_id": [5, 6], "bos_token_id": 1, "tie_word_embeddings": true}"#;
    let c = ModelConfig::from_hf_json(json).unwrap();
    assert_eq!(
        (c.head_dim, c.num_key_value_heads, c.rope_theta),
        (16, 4, 500000.0)
    );
    assert_eq!(
        (c.eos_token_ids.clone(), c.bos_token_id, c.rms_norm_eps),
        (vec![5, 6], Some(1), 1e-6)
    );
    assert!(c.tie_word_embeddings && !c.attention_bias && c.rope_scaling.is_none());
}

// ---------------------------------------------------------------------------
// The real SmolLM2-135M-Instruct GGUF
// ---------------------------------------------------------------------------
