//! Tests of loading, overriding, validating and hashing configs, and of the presets.

use super::*;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn preset(name: &str, overrides: &[&str]) -> TrainConfig {
    let path = format!("preset:{name}");
    TrainConfig::load(Some(Path::new(&path)), &args(overrides))
        .unwrap_or_else(|e| panic!("preset {name}: {e}"))
}

/// The error message of loading `text` with `overrides`.
fn load_error(text: &str, overrides: &[&str]) -> String {
    match TrainConfig::from_toml_str(text, "test.toml", &args(overrides)) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

/// A file in the temporary folder, unique to this test process.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("barl-config-test-{}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("write a temporary file");
    path
}

#[test]
fn every_preset_loads_and_validates_once_a_model_is_set() {
    for &Preset { name, about, .. } in PRESETS {
        assert!(!about.is_empty());
        let config = preset(name, &["model=/models/x"]);
        config
            .validate()
            .unwrap_or_else(|e| panic!("preset {name}: {e}"));
        let err = preset(name, &[]).validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "model: not set; give it in the config or as model=PATH"
        );
    }
}

#[test]
fn every_preset_file_is_listed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("presets");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("presets folder") {
        let path = entry.expect("presets entry").path();
        let name = path.file_stem().and_then(|s| s.to_str()).expect("name");
        assert!(
            PRESETS.iter().any(|p| p.name == name),
            "{name} not in PRESETS"
        );
        let on_disk = std::fs::read_to_string(&path).expect("read preset");
        assert_eq!(preset_text(name), Some(on_disk.as_str()));
        files += 1;
    }
    assert_eq!(files, PRESETS.len());
}

#[test]
fn paper_preset_has_the_settings_of_spec_section_9() {
    let c = preset("paper", &[]);
    assert_eq!(c.adv_estimator, AdvEstimator::Barl);
    assert_eq!(c.n_samples_per_prompt, 5);
    assert_eq!(c.rollout_batch_size, 1024);
    assert_eq!(c.train_batch_size, 128);
    assert_eq!(c.micro_batch_size, 4);
    assert_eq!((c.max_prompt_len, c.max_response_len), (512, 1024));
    assert_eq!((c.temperature, c.top_p), (1.0, 1.0));
    assert_eq!(c.learning_rate, 5e-7);
    assert_eq!((c.lr_warmup_ratio, c.lr_min_ratio), (0.03, 0.1));
    assert_eq!(c.adam_betas, [0.9, 0.95]);
    assert_eq!((c.weight_decay, c.grad_clip, c.kl_coef), (0.0, 1.0, 0.0));
    assert_eq!((c.ppo_epochs, c.step_size, c.beta), (1, 128, 1.0));
    assert_eq!(c.max_hypothesis_len, 20);
    assert_eq!(c.prompt_style, "chat-system");
    assert_eq!(c.train_data.source, "math_train");
    let eval: Vec<&str> = c.eval_data.iter().map(|d| d.source.as_str()).collect();
    assert_eq!(eval, ["math500", "gsm8k"]);
    assert_eq!(c.model, PathBuf::new());
}

#[test]
fn preset_variants_differ_only_where_their_names_say() {
    let paper = preset("paper", &[]);
    let grpo = preset("paper-grpo", &[]);
    let progress = preset("paper-progress", &[]);
    let short = preset("paper-length-constrained", &[]);
    assert_eq!(
        grpo,
        TrainConfig {
            adv_estimator: AdvEstimator::Grpo,
            ..paper.clone()
        }
    );
    assert_eq!(
        progress,
        TrainConfig {
            adv_estimator: AdvEstimator::Progress,
            ..paper.clone()
        }
    );
    assert_eq!(
        short,
        TrainConfig {
            max_response_len: 32,
            ..grpo
        }
    );

    let barl = preset("cpu-arith-barl", &[]);
    for (name, estimator) in [
        ("cpu-arith-grpo", AdvEstimator::Grpo),
        ("cpu-arith-progress", AdvEstimator::Progress),
    ] {
        let c = preset(name, &[]);
        assert_eq!(
            c,
            TrainConfig {
                adv_estimator: estimator,
                ..barl.clone()
            },
            "{name}"
        );
    }
    // Held-out problems come from a range disjoint from training's 0..2000.
    assert_eq!((barl.train_data.offset, barl.train_data.count), (0, 2000));
    assert_eq!(
        (barl.eval_data[0].offset, barl.eval_data[0].count),
        (1_000_000, 200)
    );
    assert_eq!(barl.eval_data[0].arith, barl.train_data.arith);
    assert_eq!(barl.train_data.arith.max_operand, 9);

    let tiny = preset("tiny-test", &[]);
    assert_eq!((tiny.num_steps, tiny.n_samples_per_prompt), (6, 2));
    assert_eq!((tiny.train_batch_size, tiny.micro_batch_size), (4, 2));
}

#[test]
fn overrides_set_nested_values_lists_and_text() {
    let c = TrainConfig::load(
        None,
        &args(&[
            "train_data.arith.max_operand=20",
            "adam_betas=[0.9,0.99]",
            "model=/a/b",
            "adv_estimator=barl",
            "seed = 7",
            "instruction=a = b",
        ]),
    )
    .unwrap();
    assert_eq!(c.train_data.arith.max_operand, 20);
    // The rest of the nested table keeps its defaults.
    assert_eq!(c.train_data.arith.min_operand, 0);
    assert_eq!(c.train_data.count, DataSpec::default().count);
    assert_eq!(c.adam_betas, [0.9, 0.99]);
    assert_eq!(c.model, PathBuf::from("/a/b"));
    assert_eq!(c.adv_estimator, AdvEstimator::Barl);
    assert_eq!(c.seed, 7);
    assert_eq!(c.instruction, "a = b");
    // The rest are defaults.
    assert_eq!(c.num_steps, TrainConfig::default().num_steps);

    // A number given to a text setting stays text; a quoted value is TOML.
    let c =
        TrainConfig::load(None, &args(&["model=2024", "prompt_style=\"chat-system\""])).unwrap();
    assert_eq!(c.model, PathBuf::from("2024"));
    assert_eq!(c.prompt_style, "chat-system");

    // Overrides win over the file; list entries are numbered.
    let c = preset("cpu-arith-barl", &["eval_data.0.count=50", "num_steps=3"]);
    assert_eq!(c.eval_data[0].count, 50);
    assert_eq!(c.eval_data[0].offset, 1_000_000);
    assert_eq!(c.num_steps, 3);
}

#[test]
fn bad_overrides_are_named() {
    let err = load_error("", &["num_steps"]);
    assert_eq!(err, "bad override `num_steps`: expected KEY=VALUE");
    let err = load_error("", &["=3"]);
    assert!(err.starts_with("bad override `=3`: "), "{err}");
    let err = load_error("", &["eval_data.0.count=5"]);
    assert!(err.contains("`eval_data` has no entry 0"), "{err}");
    let err = TrainConfig::load(
        Some(Path::new("preset:cpu-arith-barl")),
        &args(&["eval_data.3.count=5"]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`eval_data` has no entry 3 (it has 1)"),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_named_with_their_dotted_path_and_source() {
    let err = load_error("learning_rat = 1e-6\n", &[]);
    assert_eq!(
        err,
        "test.toml: unknown key `learning_rat`; did you mean `learning_rate`?"
    );
    let err = load_error("[train_data.arith]\nfoo = 1\n", &[]);
    assert_eq!(err, "test.toml: unknown key `train_data.arith.foo`");
    let err = load_error(
        "[[eval_data]]\nsource = \"gsm8k\"\n[[eval_data]]\nsorce = \"x\"\n",
        &[],
    );
    assert_eq!(
        err,
        "test.toml: unknown key `eval_data.1.sorce`; did you mean `source`?"
    );
    let err = load_error("", &["train_data.arith.foo=3"]);
    assert_eq!(err, "command line: unknown key `train_data.arith.foo`");
    let err = load_error("", &["bogus=1"]);
    assert!(
        err.starts_with("command line: unknown key `bogus`"),
        "{err}"
    );
}

#[test]
fn ill_typed_values_name_the_key_and_the_expected_type() {
    let err = load_error("", &["n_samples_per_prompt=\"four\""]);
    assert!(
        err.starts_with("command line: bad value for `n_samples_per_prompt`: "),
        "{err}"
    );
    assert!(err.contains("usize"), "{err}");
    // Unquoted, it is not TOML and becomes text: the same error.
    let err = load_error("", &["n_samples_per_prompt=four"]);
    assert!(err.contains("`n_samples_per_prompt`"), "{err}");
    let err = load_error("[train_data.arith]\nmax_operand = \"big\"\n", &[]);
    assert!(
        err.starts_with("test.toml: bad value for `train_data.arith.max_operand`: "),
        "{err}"
    );
    assert!(err.contains("i64"), "{err}");
    let err = load_error("[[eval_data]]\n[[eval_data]]\ncount = -1\n", &[]);
    assert!(err.contains("`eval_data.1.count`"), "{err}");
    let err = load_error("", &["adv_estimator=foo"]);
    assert!(err.contains("`adv_estimator`"), "{err}");
    assert!(err.contains("grpo"), "{err}");
}

#[test]
fn syntax_errors_give_the_file_line_and_column() {
    let path = temp_file("syntax.toml", "seed = 1\nlearning_rate = \n");
    let err = TrainConfig::load(Some(&path), &[]).unwrap_err().to_string();
    std::fs::remove_file(&path).ok();
    let expected = format!("{}: TOML syntax error at line 2, column ", path.display());
    assert!(err.starts_with(&expected), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn unreadable_files_and_unknown_presets_are_named() {
    let missing = std::env::temp_dir().join("barl-config-test-does-not-exist.toml");
    let err = TrainConfig::load(Some(&missing), &[])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(&format!("cannot read config file {}: ", missing.display())));
    let err = TrainConfig::load(Some(Path::new("preset:nope")), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("unknown preset `nope`; known presets: paper, "),
        "{err}"
    );
    assert!(err.ends_with("tiny-test"), "{err}");
}

#[test]
fn validate_names_the_broken_key() {
    let base = TrainConfig {
        model: "m".into(),
        ..TrainConfig::default()
    };
    base.validate().unwrap();
    type Edit = fn(&mut TrainConfig);
    let cases: [(Edit, &str); 28] = [
        (
            |c| c.rollout.old_logprobs = OldLogprobs::ServerTis,
            "rollout.old_logprobs: \"server-tis\" needs rollout.backend = \"vllm\"",
        ),
        (
            |c| {
                c.rollout.backend = RolloutBackend::Vllm;
                c.rollout.urls = vec!["http://h:1".into()];
                c.rollout.old_logprobs = OldLogprobs::ServerTis;
                c.train_batch_size = 8;
            },
            "rollout.old_logprobs: \"server-tis\" needs one optimiser step per rollout batch: ppo_epochs = 1 (got 1) and train_batch_size >= 16 (got 8)",
        ),
        (
            |c| {
                c.rollout.backend = RolloutBackend::Vllm;
                c.rollout.urls = vec!["http://h:1".into()];
                c.rollout.old_logprobs = OldLogprobs::ServerTis;
                c.rollout.tis_cap = f64::NAN;
            },
            "rollout.tis_cap: must be a positive number, got NaN",
        ),
        (
            |c| c.rollout.backend = RolloutBackend::Vllm,
            "rollout.urls: empty; rollout.backend = \"vllm\" needs at least one server URL",
        ),
        (
            |c| {
                c.rollout.backend = RolloutBackend::Vllm;
                c.rollout.urls = vec!["localhost:8000".into()];
            },
            "rollout.urls: \"localhost:8000\" is not an http:// or https:// URL",
        ),
        (
            |c| c.rollout.timeout_s = 0.0,
            "rollout.timeout_s: must be a positive number of seconds, got 0",
        ),
        (
            |c| c.rollout.sync = RolloutSync::Lora,
            "rollout.sync: \"lora\" sends the adapter; it needs lora.rank >= 1",
        ),
        (
            |c| {
                c.lora.rank = 8;
                c.lora.dropout = 1.0;
            },
            "lora.dropout: must be in [0, 1), got 1",
        ),
        (
            |c| {
                c.lora.rank = 8;
                c.lora.alpha = -1.0;
            },
            "lora.alpha: must be a positive number, got -1",
        ),
        (
            |c| {
                c.lora.rank = 8;
                c.lora.target_modules = vec![];
            },
            "lora.target_modules: empty; name projections or use \"all-linear\"",
        ),
        (
            |c| c.n_samples_per_prompt = 0,
            "n_samples_per_prompt: must be at least 1, got 0",
        ),
        (
            |c| c.n_samples_per_prompt = 1,
            "n_samples_per_prompt: must be at least 2 with adv_estimator = grpo (a group of one completion has advantage 0, so nothing would be learned)",
        ),
        (
            |c| c.clip_ratio_low = 5.0,
            "clip_ratio_low: must be in [0, 1), got 5",
        ),
        (
            |c| c.train_batch_size = 6,
            "train_batch_size: must be a multiple of micro_batch_size (4), got 6",
        ),
        (
            |c| c.micro_batch_size = 0,
            "micro_batch_size: must be at least 1, got 0",
        ),
        (
            |c| c.temperature = f32::NAN,
            "temperature: must be a finite number >= 0, got NaN",
        ),
        (|c| c.top_p = 0.0, "top_p: must be in (0, 1], got 0"),
        (|c| c.top_p = 1.5, "top_p: must be in (0, 1], got 1.5"),
        (
            |c| c.learning_rate = -1e-6,
            "learning_rate: must be a finite number >= 0, got -0.000001",
        ),
        (
            |c| c.lr_warmup_ratio = 1.5,
            "lr_warmup_ratio: must be in [0, 1], got 1.5",
        ),
        (
            |c| c.adam_betas[1] = 1.0,
            "adam_betas[1]: must be in [0, 1), got 1",
        ),
        (
            |c| c.beta = f32::INFINITY,
            "beta: must be a finite number >= 0, got inf",
        ),
        (|c| c.step_size = 0, "step_size: must be at least 1, got 0"),
        (
            |c| c.grader = "strict".into(),
            "grader: must be `standard` or `reference`, got `strict`",
        ),
        (
            |c| c.prompt_style = "raw:no placeholder".into(),
            "prompt_style: raw prompt template has no `{question}` placeholder: \"no placeholder\"",
        ),
        (
            |c| c.train_data.arith.terms = 1,
            "train_data: arith.terms must be in 2..=16, got 1",
        ),
        (
            |c| {
                c.eval_data = vec![
                    DataSpec::default(),
                    DataSpec {
                        count: 0,
                        ..DataSpec::default()
                    },
                ]
            },
            "eval_data.1: count must be at least 1 for arith",
        ),
        (
            |c| c.model = PathBuf::new(),
            "model: not set; give it in the config or as model=PATH",
        ),
    ];
    for (edit, expected) in cases {
        let mut c = base.clone();
        edit(&mut c);
        assert_eq!(c.validate().unwrap_err().to_string(), expected);
    }
    // Arith settings of a file source are not checked.
    let mut c = base.clone();
    c.train_data.source = "gsm8k_train".into();
    c.train_data.arith.terms = 1;
    c.validate().unwrap();
}

#[test]
fn lr_schedule_warms_up_linearly_then_decays_by_cosine() {
    let c = TrainConfig {
        learning_rate: 1.0,
        num_steps: 10,
        lr_warmup_ratio: 0.2,
        lr_min_ratio: 0.1,
        ..TrainConfig::default()
    };
    // W = ceil(0.2 * 10) = 2: steps 0 and 1 get 1/2 and 2/2.
    assert_eq!(c.lr_at(0), 0.5);
    assert_eq!(c.lr_at(1), 1.0);
    // Step 2: progress 0 / 8, cos 0 = 1: the peak.
    assert_eq!(c.lr_at(2), 1.0);
    // Step 6: progress 4/8, cos(pi/2) = 0: 0.1 + 0.9 * 0.5 = 0.55.
    assert!((c.lr_at(6) - 0.55).abs() < 1e-12);
    // Step 9: progress 7/8, cos(7 pi/8) = -cos(pi/8) = -0.9238795325112867:
    // 0.1 + 0.9 * 0.5 * (1 - 0.9238795325112867) = 0.1 + 0.9 * 0.03806023374435663
    // = 0.13425421036992097.
    assert!((c.lr_at(9) - 0.134_254_210_369_920_97).abs() < 1e-12);
    // Past the end: the floor 0.1.
    assert!((c.lr_at(10) - 0.1).abs() < 1e-12);
    assert!((c.lr_at(50) - 0.1).abs() < 1e-12);

    // 0.07 * 100 is 7.000000000000001 in f64; the warm-up is still 7 steps,
    // so step 6 is its last (7/7) and step 7 the peak.
    let c = TrainConfig {
        learning_rate: 2.0,
        num_steps: 100,
        lr_warmup_ratio: 0.07,
        ..TrainConfig::default()
    };
    assert!((c.lr_at(5) - 2.0 * 6.0 / 7.0).abs() < 1e-12);
    assert_eq!(c.lr_at(6), 2.0);
    assert_eq!(c.lr_at(7), 2.0);

    // No warm-up, one step: step 0 is the peak.
    let c = TrainConfig {
        learning_rate: 3.0,
        num_steps: 1,
        lr_warmup_ratio: 0.0,
        ..TrainConfig::default()
    };
    assert_eq!(c.lr_at(0), 3.0);
}

#[test]
fn fnv1a64_matches_the_published_test_vectors() {
    // From the FNV reference test suite (Noll): "", "a", "foobar".
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn toml_round_trip_keeps_the_config_and_its_hash() {
    for &Preset { name, .. } in PRESETS {
        let mut c = preset(name, &["model=/models/x", "temperature=0.7"]);
        c.adv_eps = 1e-6;
        let text = c.to_toml_string();
        let back = TrainConfig::from_toml_str(&text, "saved", &[]).unwrap();
        assert_eq!(back, c, "{name}:\n{text}");
        assert_eq!(back.hash(), c.hash());
        assert_eq!(back.to_toml_string(), text);
        // f32 settings are written in their short form.
        assert!(text.contains("\ntemperature = 0.7\n"), "{text}");
        assert!(text.contains("\nadv_eps = 1e-6\n"), "{text}");
    }
    // Through a file as well.
    let c = preset("tiny-test", &["model=m"]);
    let path = temp_file("saved.toml", &c.to_toml_string());
    let back = TrainConfig::load(Some(&path), &[]);
    std::fs::remove_file(&path).ok();
    assert_eq!(back.unwrap(), c);
}

#[test]
fn hash_is_16_hex_digits_and_changes_with_any_value() {
    let c = preset("cpu-arith-barl", &["model=m"]);
    let h = c.hash();
    assert_eq!(h.len(), 16);
    assert!(h.chars().all(|ch| ch.is_ascii_hexdigit()));
    assert_eq!(
        h,
        format!("{:016x}", fnv1a64(c.to_toml_string().as_bytes()))
    );
    let changed = [
        TrainConfig {
            seed: 1,
            ..c.clone()
        },
        TrainConfig {
            beta: 0.5,
            ..c.clone()
        },
        TrainConfig {
            adv_estimator: AdvEstimator::Grpo,
            ..c.clone()
        },
    ];
    for other in changed {
        assert_ne!(other.hash(), h);
    }
    let mut nested = c.clone();
    nested.eval_data[0].arith.seed = 9;
    assert_ne!(nested.hash(), h);
}

#[test]
fn the_rollout_table_is_written_only_when_it_is_not_the_default() {
    // The local engine's config.toml (and hash) is what it was before
    // `[rollout]` existed; a vLLM run's table round-trips.
    let c = preset("cpu-arith-grpo", &["model=m"]);
    assert!(!c.to_toml_string().contains("[rollout]"));
    let v = preset(
        "cpu-arith-grpo",
        &[
            "model=m",
            "rollout.backend=vllm",
            "rollout.urls=[\"http://127.0.0.1:8000\", \"http://10.0.0.2:8000\"]",
        ],
    );
    v.validate().unwrap();
    assert_eq!(v.rollout.backend, RolloutBackend::Vllm);
    assert_eq!(v.rollout.urls.len(), 2);
    let text = v.to_toml_string();
    assert!(text.contains("[rollout]\nbackend = \"vllm\""), "{text}");
    let back = TrainConfig::from_toml_str(&text, "saved", &[]).unwrap();
    assert_eq!(back, v);
    assert_ne!(v.hash(), c.hash());
    let e = TrainConfig::from_toml_str("", "x", &["rollout.backend=sglang".into()]).unwrap_err();
    assert!(e.to_string().contains("rollout.backend"), "{e}");
}

#[test]
fn the_lora_table_is_written_only_when_lora_is_on() {
    // Full fine-tuning keeps its config.toml and hash; a LoRA run's table
    // round-trips and gives the adapter's settings.
    let c = preset("cpu-arith-grpo", &["model=m"]);
    assert!(!c.to_toml_string().contains("[lora]"));
    assert_eq!(c.lora.config(), None);
    let v = preset(
        "cpu-arith-grpo",
        &[
            "model=m",
            "lora.rank=16",
            "lora.target_modules=[\"q_proj\", \"v_proj\"]",
        ],
    );
    v.validate().unwrap();
    let l = v.lora.config().unwrap();
    assert_eq!((l.rank, l.alpha, l.scale()), (16, 32.0, 2.0));
    assert_eq!(l.targeted(), ["q_proj", "v_proj"]);
    let text = v.to_toml_string();
    assert!(text.contains("[lora]\nrank = 16"), "{text}");
    assert_eq!(TrainConfig::from_toml_str(&text, "saved", &[]).unwrap(), v);
    assert_ne!(v.hash(), c.hash());
    let e = TrainConfig::from_toml_str("", "x", &["lora.ranks=4".into()]).unwrap_err();
    assert!(e.to_string().contains("lora.ranks"), "{e}");
}
