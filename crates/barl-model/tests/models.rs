//! Llama / Qwen2 engine checks: logits against candle-transformers' own
//! implementations on the same random weights, training vs inference paths,
//! the KV cache, batched sampling, scoring with gradients and prefix scoring.

use std::collections::HashMap;

use barl_model::layers::KvCache;
use barl_model::testing::{assert_every_var_has_a_gradient, max_abs_diff as max_diff};
use barl_model::{
    random_weights, sample, score, score_no_grad, AnyModel, Arch, CausalLm, FinishReason, Llama,
    Llama3RopeScaling, LogProbKind, Mode, ModelConfig, PrefixScorer, Qwen2, SampleConfig,
};
use candle_core::{DType, Device, Tensor};

const DEV: Device = Device::Cpu;

fn cfg(arch: Arch, tied: bool, llama3: bool) -> ModelConfig {
    ModelConfig {
        arch,
        vocab_size: 300,
        hidden_size: 64,
        intermediate_size: 96,
        num_hidden_layers: 3,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 16,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        // head_dim 16: wavelengths 2 pi * 10000^(2i/16) = 6.3, 19.9, 62.8, 199, ...;
        // with L = 64, l = 1, h = 4 they fall in all three regimes (< 16, 16..64, > 64).
        rope_scaling: llama3.then_some(Llama3RopeScaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 64,
        }),
        max_position_embeddings: 256,
        tie_word_embeddings: tied,
        attention_bias: arch == Arch::Qwen2,
        bos_token_id: None,
        eos_token_ids: vec![],
    }
}

fn build(c: &ModelConfig, seed: u64) -> (AnyModel, HashMap<String, Tensor>) {
    let w = random_weights(c, seed, &DEV).unwrap();
    (AnyModel::from_weights(c, &w, &DEV).unwrap(), w)
}

/// Deterministic pseudo-random token ids (an LCG), all below `vocab`.
fn ids(len: usize, seed: u64, vocab: u32) -> Vec<u32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % vocab as u64) as u32
        })
        .collect()
}

fn row(t: &[u32]) -> Tensor {
    Tensor::from_vec(t.to_vec(), (1, t.len()), &DEV).unwrap()
}

/// Our last-position logits `(vocab)` of one unbatched sequence.
fn last_logits(m: &dyn CausalLm, t: &[u32], mode: Mode) -> Tensor {
    m.forward(&row(t), None, mode)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .get(t.len() - 1)
        .unwrap()
}

fn candle_llama(c: &ModelConfig, w: &HashMap<String, Tensor>) -> impl Fn(&[u32]) -> Tensor {
    use candle_transformers::models::llama as cl;
    let lc = cl::Config {
        hidden_size: c.hidden_size,
        intermediate_size: c.intermediate_size,
        vocab_size: c.vocab_size,
        num_hidden_layers: c.num_hidden_layers,
        num_attention_heads: c.num_attention_heads,
        num_key_value_heads: c.num_key_value_heads,
        use_flash_attn: false,
        rms_norm_eps: c.rms_norm_eps,
        rope_theta: c.rope_theta as f32,
        bos_token_id: None,
        eos_token_id: None,
        rope_scaling: c.rope_scaling.map(|s| cl::Llama3RopeConfig {
            factor: s.factor as f32,
            low_freq_factor: s.low_freq_factor as f32,
            high_freq_factor: s.high_freq_factor as f32,
            original_max_position_embeddings: s.original_max_position_embeddings,
            rope_type: cl::Llama3RopeType::Llama3,
        }),
        max_position_embeddings: c.max_position_embeddings,
        tie_word_embeddings: c.tie_word_embeddings,
    };
    let vb = candle_nn::VarBuilder::from_tensors(w.clone(), DType::F32, &DEV);
    let model = cl::Llama::load(vb, &lc).unwrap();
    move |t: &[u32]| {
        let mut cache = cl::Cache::new(false, DType::F32, &lc, &DEV).unwrap();
        model
            .forward(&row(t), 0, &mut cache)
            .unwrap()
            .squeeze(0)
            .unwrap()
    }
}

fn candle_qwen2(c: &ModelConfig, w: &HashMap<String, Tensor>) -> impl FnMut(&[u32]) -> Tensor {
    use candle_transformers::models::qwen2 as cq;
    let qc = cq::Config {
        vocab_size: c.vocab_size,
        hidden_size: c.hidden_size,
        intermediate_size: c.intermediate_size,
        num_hidden_layers: c.num_hidden_layers,
        num_attention_heads: c.num_attention_heads,
        num_key_value_heads: c.num_key_value_heads,
        max_position_embeddings: c.max_position_embeddings,
        sliding_window: c.max_position_embeddings,
        max_window_layers: c.num_hidden_layers,
        tie_word_embeddings: c.tie_word_embeddings,
        rope_theta: c.rope_theta,
        rms_norm_eps: c.rms_norm_eps,
        use_sliding_window: false,
        hidden_act: candle_nn::Activation::Silu,
    };
    let vb = candle_nn::VarBuilder::from_tensors(w.clone(), DType::F32, &DEV);
    let mut model = cq::ModelForCausalLM::new(&qc, vb).unwrap();
    move |t: &[u32]| {
        model.clear_kv_cache();
        model.forward(&row(t), 0).unwrap().flatten_all().unwrap()
    }
}

const PROMPT_LENS: [usize; 4] = [1, 6, 17, 41];

#[test]
fn llama_logits_match_candle_transformers() {
    for (tied, llama3) in [(true, false), (false, false), (false, true)] {
        let c = cfg(Arch::Llama, tied, llama3);
        let (ours, w) = build(&c, 11);
        let theirs = candle_llama(&c, &w);
        for (k, len) in PROMPT_LENS.into_iter().enumerate() {
            let t = ids(len, k as u64, 300);
            for mode in [Mode::Infer, Mode::Train] {
                let d = max_diff(&last_logits(&ours, &t, mode), &theirs(&t));
                assert!(
                    d <= 1e-4,
                    "tied {tied} llama3 {llama3} len {len} {mode:?}: {d}"
                );
            }
        }
    }
}

#[test]
fn qwen2_logits_match_candle_transformers() {
    for tied in [true, false] {
        let c = cfg(Arch::Qwen2, tied, false);
        let (ours, w) = build(&c, 12);
        assert!(w.contains_key("model.layers.0.self_attn.q_proj.bias"));
        let mut theirs = candle_qwen2(&c, &w);
        for (k, len) in PROMPT_LENS.into_iter().enumerate() {
            let t = ids(len, 10 + k as u64, 300);
            for mode in [Mode::Infer, Mode::Train] {
                let d = max_diff(&last_logits(&ours, &t, mode), &theirs(&t));
                assert!(d <= 1e-4, "tied {tied} len {len} {mode:?}: {d}");
            }
        }
    }
}

#[test]
fn training_and_inference_paths_agree_on_every_position() {
    for c in [
        cfg(Arch::Llama, true, true),
        cfg(Arch::Llama, false, false),
        cfg(Arch::Qwen2, false, false),
    ] {
        let (m, _) = build(&c, 3);
        let a = ids(23, 1, 300);
        let b = ids(23, 2, 300);
        let x = Tensor::from_vec([a, b].concat(), (2, 23), &DEV).unwrap();
        let train = m.forward(&x, None, Mode::Train).unwrap();
        let infer = m.forward(&x, None, Mode::Infer).unwrap();
        assert_eq!(train.dims(), &[2, 23, 300]);
        let d = max_diff(&train, &infer);
        assert!(d <= 1e-4, "{:?}: {d}", c.arch);
    }
}

#[test]
fn cached_incremental_decoding_matches_full_forward() {
    let c = cfg(Arch::Llama, false, true);
    let (m, _) = build(&c, 4);
    let seq = ids(30, 5, 300);
    let full = m.forward(&row(&seq), None, Mode::Infer).unwrap();
    // Capacity 8 forces the cache to grow twice along the way.
    let mut cache = KvCache::new(&c, 1, 8);
    let mut parts = Vec::new();
    let mut at = 0;
    for step in [5, 1, 1, 3, 12, 1, 7] {
        let chunk = &seq[at..at + step];
        parts.push(
            m.forward(&row(chunk), Some(&mut cache), Mode::Infer)
                .unwrap(),
        );
        at += step;
    }
    assert_eq!(at, 30);
    assert_eq!(cache.len(), 30);
    let d = max_diff(&full, &Tensor::cat(&parts, 1).unwrap());
    assert!(d <= 1e-4, "{d}");
    // A fork is independent: extending it leaves the original untouched.
    let mut fork = cache.fork().unwrap();
    let other = ids(4, 6, 300);
    let fz = m
        .forward(&row(&other), Some(&mut fork), Mode::Infer)
        .unwrap();
    let both = [seq.clone(), other.clone()].concat();
    let want = m
        .forward(&row(&both), None, Mode::Infer)
        .unwrap()
        .narrow(1, 30, 4)
        .unwrap();
    assert!(max_diff(&fz, &want) <= 1e-4);
    assert_eq!((fork.len(), cache.len()), (34, 30));
    let z = m
        .forward(&row(&other[..1]), Some(&mut cache), Mode::Infer)
        .unwrap();
    assert!(max_diff(&z, &want.narrow(1, 0, 1).unwrap()) <= 1e-4);
    // A training forward may not use the cache (its keys hold no gradient).
    assert!(m
        .forward(&row(&seq[..2]), Some(&mut cache), Mode::Train)
        .is_err());
}

#[test]
fn left_padded_batch_matches_each_row_alone() {
    let c = cfg(Arch::Qwen2, true, false);
    let (m, _) = build(&c, 6);
    let rows = [ids(4, 7, 300), ids(13, 8, 300), ids(9, 9, 300)];
    let width = 13;
    let mut flat = Vec::new();
    let mut pads = Vec::new();
    for r in &rows {
        pads.push(width - r.len());
        flat.extend(std::iter::repeat_n(0u32, width - r.len()));
        flat.extend(r);
    }
    let mut cache = KvCache::with_left_padding(&c, pads, 32);
    let x = Tensor::from_vec(flat, (3, width), &DEV).unwrap();
    let out = m.forward(&x, Some(&mut cache), Mode::Infer).unwrap();
    let next = [17u32, 250, 3];
    let step = m
        .forward(
            &Tensor::from_vec(next.to_vec(), (3, 1), &DEV).unwrap(),
            Some(&mut cache),
            Mode::Infer,
        )
        .unwrap();
    for (i, r) in rows.iter().enumerate() {
        let alone = m.forward(&row(r), None, Mode::Infer).unwrap();
        let d = max_diff(
            &out.get(i)
                .unwrap()
                .narrow(0, width - r.len(), r.len())
                .unwrap(),
            &alone.squeeze(0).unwrap(),
        );
        assert!(d <= 1e-4, "row {i} prefill: {d}");
        let longer = [r.as_slice(), &[next[i]]].concat();
        let d = max_diff(
            &step.get(i).unwrap().squeeze(0).unwrap(),
            &last_logits(&m, &longer, Mode::Infer),
        );
        assert!(d <= 1e-4, "row {i} decode: {d}");
    }
}

/// The decode step (one token per row after a cache) against the general
/// path: a left-padded batch fed column by column from an empty cache, with
/// a finished row dropped half-way, gives every real position the logits of
/// the full forward of its row alone (GQA, Llama 3 scaling, q/k/v bias).
#[test]
fn one_token_steps_from_an_empty_cache_match_each_row_alone() {
    for c in [cfg(Arch::Llama, false, true), cfg(Arch::Qwen2, true, false)] {
        let (m, _) = build(&c, 31);
        let rows = [ids(5, 32, 300), ids(11, 33, 300), ids(8, 34, 300)];
        let width = 11;
        let pads: Vec<usize> = rows.iter().map(|r| width - r.len()).collect();
        // Capacity 4 makes the cache grow along the way.
        let mut cache = KvCache::with_left_padding(&c, pads.clone(), 4);
        let mut live: Vec<usize> = vec![0, 1, 2];
        let mut got: Vec<Vec<Tensor>> = vec![Vec::new(); 3];
        for col in 0..width {
            if col == 7 {
                // Row 0 leaves the batch (as the sampler drops finished rows).
                cache.retain_rows(&[1, 2]).unwrap();
                live = vec![1, 2];
            }
            let toks: Vec<u32> = live
                .iter()
                .map(|&i| {
                    if col < pads[i] {
                        0
                    } else {
                        rows[i][col - pads[i]]
                    }
                })
                .collect();
            let x = Tensor::from_vec(toks, (live.len(), 1), &DEV).unwrap();
            let z = m.forward(&x, Some(&mut cache), Mode::Infer).unwrap();
            for (r, &i) in live.iter().enumerate() {
                if col >= pads[i] {
                    got[i].push(z.get(r).unwrap());
                }
            }
        }
        assert_eq!(cache.len(), width);
        for (i, r) in rows.iter().enumerate() {
            let alone = m
                .forward(&row(r), None, Mode::Infer)
                .unwrap()
                .squeeze(0)
                .unwrap();
            let n = got[i].len();
            assert_eq!(n, if i == 0 { 7 - pads[0] } else { r.len() });
            let steps = Tensor::cat(&got[i], 0).unwrap();
            let d = max_diff(&steps, &alone.narrow(0, 0, n).unwrap());
            assert!(d <= 1e-4, "{:?} row {i}: {d}", c.arch);
        }
    }
}

#[test]
fn every_variable_gets_a_gradient_through_scoring() {
    for c in [
        cfg(Arch::Llama, false, false),
        cfg(Arch::Qwen2, true, false),
    ] {
        let (m, _) = build(&c, 13);
        let pairs = vec![
            (ids(5, 1, 300), ids(7, 2, 300)),
            (ids(9, 3, 300), ids(2, 4, 300)),
            (ids(1, 5, 300), ids(4, 6, 300)),
        ];
        let s = score(&m, &pairs, true).unwrap();
        assert_eq!(s.logprobs.dims(), &[3, 7]);
        let loss = ((&s.logprobs * &s.mask).unwrap().sum_all().unwrap()
            + (s.entropy.unwrap() * 0.1).unwrap().sum_all().unwrap())
        .unwrap();
        let grads = loss.backward().unwrap();
        let names: Vec<&str> = m.named_vars().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), barl_model::expected_tensors(&c).len());
        assert_eq!(names.contains(&"lm_head.weight"), !c.tie_word_embeddings);
        for (name, v) in m.named_vars() {
            assert_every_var_has_a_gradient(&grads, [(name.as_str(), v)]);
        }
    }
}

/// log-softmax of `z` at `tok`, in f64 from the raw logits.
fn logprob(z: &[f32], tok: u32) -> f32 {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = m + z.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
    (z[tok as usize] as f64 - lse) as f32
}

#[test]
fn scores_and_entropy_match_full_forward() {
    let c = cfg(Arch::Llama, true, false);
    let (m, _) = build(&c, 14);
    let pairs = vec![(ids(6, 1, 300), ids(5, 2, 300)), (ids(3, 3, 300), vec![])];
    let s = score(&m, &pairs, true).unwrap();
    let lp = s.logprobs.to_vec2::<f32>().unwrap();
    let ent = s.entropy.unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(
        s.mask.to_vec2::<f32>().unwrap(),
        vec![vec![1f32; 5], vec![0f32; 5]]
    );
    assert_eq!(lp[1], vec![0f32; 5]);
    let seq = [pairs[0].0.clone(), pairs[0].1.clone()].concat();
    let z = m
        .forward(&row(&seq), None, Mode::Infer)
        .unwrap()
        .squeeze(0)
        .unwrap();
    for j in 0..5 {
        let zj = z.get(5 + j).unwrap().to_vec1::<f32>().unwrap();
        assert!((lp[0][j] - logprob(&zj, seq[6 + j])).abs() <= 1e-4);
        // H = -sum p log p over the 300 tokens.
        let h: f32 = (0..300u32)
            .map(|v| {
                let l = logprob(&zj, v);
                -l.exp() * l
            })
            .sum();
        assert!((ent[0][j] - h).abs() <= 1e-4, "{} vs {h}", ent[0][j]);
    }
    let ng = score_no_grad(&m, &pairs).unwrap();
    assert_eq!(ng[1].len(), 0);
    for j in 0..5 {
        assert!((ng[0][j] - lp[0][j]).abs() <= 1e-4);
    }
}

fn prompts() -> Vec<Vec<u32>> {
    [3usize, 11, 7, 1, 20]
        .iter()
        .enumerate()
        .map(|(i, &n)| ids(n, 40 + i as u64, 300))
        .collect()
}

#[test]
fn batched_greedy_sampling_equals_sampling_each_prompt_alone() {
    let c = cfg(Arch::Llama, true, false);
    let (m, _) = build(&c, 21);
    let ps = prompts();
    let sc = SampleConfig::greedy(12);
    let batch = sample(&m, &ps, &sc).unwrap();
    for (p, b) in ps.iter().zip(&batch) {
        let alone = sample(&m, &[p], &sc).unwrap().remove(0);
        assert_eq!(b.tokens, alone.tokens);
        assert_eq!(b.tokens.len(), 12);
        assert_eq!(b.finish, FinishReason::Length);
        for (x, y) in b.logprobs.iter().zip(&alone.logprobs) {
            assert!((x - y).abs() <= 1e-4, "{x} vs {y}");
        }
    }
    // Greedy = argmax of the full forward at each step.
    let seq = [ps[1].clone(), batch[1].tokens.clone()].concat();
    let z = m
        .forward(&row(&seq), None, Mode::Infer)
        .unwrap()
        .squeeze(0)
        .unwrap();
    for j in 0..12 {
        let zj = z.get(ps[1].len() - 1 + j).unwrap();
        let best = zj.argmax(0).unwrap().to_scalar::<u32>().unwrap();
        assert_eq!(best, batch[1].tokens[j]);
    }
}

#[test]
fn stop_tokens_and_max_tokens_give_the_right_finish_reasons() {
    let c = cfg(Arch::Qwen2, false, false);
    let (m, _) = build(&c, 22);
    let ps = prompts();
    let free = sample(&m, &ps, &SampleConfig::greedy(10)).unwrap();
    // Stop on the third token row 0 produces (first occurrence at index k).
    let stop = free[0].tokens[2];
    let mut sc = SampleConfig::greedy(10);
    sc.stop_tokens = vec![stop, 299];
    let stopped = sample(&m, &ps, &sc).unwrap();
    let mut n_stop = 0;
    for (f, s) in free.iter().zip(&stopped) {
        match f.tokens.iter().position(|&t| t == stop || t == 299) {
            Some(k) => {
                assert_eq!(s.tokens, f.tokens[..=k]);
                assert_eq!(s.finish, FinishReason::Stop);
                n_stop += 1;
            }
            None => {
                assert_eq!(s.tokens, f.tokens);
                assert_eq!(s.finish, FinishReason::Length);
            }
        }
        assert_eq!(s.logprobs.len(), s.tokens.len());
    }
    assert!(n_stop >= 1);
    let none = sample(&m, &ps, &SampleConfig::greedy(0)).unwrap();
    assert!(none
        .iter()
        .all(|c| c.tokens.is_empty() && c.finish == FinishReason::Length));
}

#[test]
fn sampling_is_deterministic_per_seed_and_independent_of_batching() {
    let c = cfg(Arch::Llama, false, false);
    let (m, _) = build(&c, 23);
    let ps = prompts();
    let sc = SampleConfig {
        max_new_tokens: 12,
        temperature: 1.0,
        top_k: 50,
        top_p: 0.9,
        seed: 7,
        ..SampleConfig::default()
    };
    let a = sample(&m, &ps, &sc).unwrap();
    let b = sample(&m, &ps, &sc).unwrap();
    assert_eq!(a, b);
    let other = sample(
        &m,
        &ps,
        &SampleConfig {
            seed: 8,
            ..sc.clone()
        },
    )
    .unwrap();
    assert_ne!(a, other);
    // Prompt 0 draws from stream 0 in any batch.
    let first = sample(&m, &ps[..1], &sc).unwrap();
    assert_eq!(first[0].tokens, a[0].tokens);
    // Split into two calls, the second offset by the first's length: the same
    // samples as one call.
    let head = sample(&m, &ps[..1], &sc).unwrap();
    let tail = sample(
        &m,
        &ps[1..],
        &SampleConfig {
            first_stream: 1,
            ..sc.clone()
        },
    )
    .unwrap();
    let tokens =
        |cs: &[barl_model::Completion]| cs.iter().map(|c| c.tokens.clone()).collect::<Vec<_>>();
    assert_eq!([tokens(&head), tokens(&tail)].concat(), tokens(&a));
}

#[test]
fn sampler_log_probs_equal_scorer_log_probs() {
    for c in [cfg(Arch::Llama, true, true), cfg(Arch::Qwen2, false, false)] {
        let (m, _) = build(&c, 24);
        let ps = prompts();
        let sc = SampleConfig {
            max_new_tokens: 9,
            temperature: 0.8,
            seed: 3,
            ..SampleConfig::default()
        };
        let out = sample(&m, &ps, &sc).unwrap();
        let pairs: Vec<(Vec<u32>, Vec<u32>)> = ps
            .iter()
            .zip(&out)
            .map(|(p, o)| (p.clone(), o.tokens.clone()))
            .collect();
        let ng = score_no_grad(&m, &pairs).unwrap();
        let tr = score(&m, &pairs, false)
            .unwrap()
            .logprobs
            .to_vec2::<f32>()
            .unwrap();
        for (i, o) in out.iter().enumerate() {
            for (j, &lp) in o.logprobs.iter().enumerate() {
                assert!(
                    (lp - ng[i][j]).abs() <= 1e-4,
                    "no-grad {i} {j}: {lp} vs {}",
                    ng[i][j]
                );
                assert!(
                    (lp - tr[i][j]).abs() <= 1e-4,
                    "train {i} {j}: {lp} vs {}",
                    tr[i][j]
                );
            }
        }
        // Sampling-distribution log-probs are those of softmax(z / 0.8) here.
        let sc2 = SampleConfig {
            logprobs: LogProbKind::Sampling,
            ..sc
        };
        let out2 = sample(&m, &ps[..1], &sc2).unwrap().remove(0);
        assert_eq!(out2.tokens, out[0].tokens);
        let seq = [ps[0].clone(), out2.tokens.clone()].concat();
        let z = m
            .forward(&row(&seq), None, Mode::Infer)
            .unwrap()
            .squeeze(0)
            .unwrap();
        let zt = (z / 0.8).unwrap();
        for (j, &lp) in out2.logprobs.iter().enumerate() {
            let zj = zt
                .get(ps[0].len() - 1 + j)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert!((lp - logprob(&zj, out2.tokens[j])).abs() <= 1e-4);
        }
    }
}

/// Total log-prob of `cont` after `prefix`, re-encoding the whole sequence.
fn reencoded(m: &dyn CausalLm, prefix: &[u32], cont: &[u32]) -> f32 {
    let seq = [prefix, cont].concat();
    let z = m
        .forward(&row(&seq), None, Mode::Train)
        .unwrap()
        .squeeze(0)
        .unwrap();
    cont.iter()
        .enumerate()
        .map(|(j, &t)| {
            logprob(
                &z.get(prefix.len() - 1 + j)
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
                t,
            )
        })
        .sum()
}

#[test]
fn prefix_scoring_equals_reencoding_including_after_extend() {
    for c in [cfg(Arch::Llama, true, true), cfg(Arch::Qwen2, false, false)] {
        let (m, _) = build(&c, 25);
        let mut prefix = ids(9, 60, 300);
        let conts = vec![ids(1, 61, 300), ids(4, 62, 300), vec![], ids(3, 63, 300)];
        let mut s = PrefixScorer::new(&m, &prefix).unwrap();
        // Chunks of 6 and 60 tokens: the second outgrows the initial capacity (64).
        for chunk in [vec![], ids(6, 64, 300), ids(60, 65, 300)] {
            s.extend(&chunk).unwrap();
            prefix.extend(&chunk);
            assert_eq!(s.len(), prefix.len());
            let got = s.score(&conts).unwrap();
            assert_eq!(got[2], 0.0);
            for (g, cont) in got.iter().zip(&conts) {
                let want = reencoded(&m, &prefix, cont);
                assert!(
                    (g - want).abs() <= 1e-4,
                    "prefix {}: {g} vs {want}",
                    prefix.len()
                );
            }
        }
    }
}

#[test]
fn weights_round_trip_and_bad_inputs_are_errors() {
    let c = cfg(Arch::Qwen2, false, false);
    let (m, w) = build(&c, 26);
    let saved = m.to_weights().unwrap();
    assert_eq!(saved.len(), w.len());
    let m2 = Qwen2::from_weights(&c, &saved, &DEV).unwrap();
    let t = ids(8, 1, 300);
    let same = max_diff(
        &last_logits(&m, &t, Mode::Infer),
        &last_logits(&m2, &t, Mode::Infer),
    );
    assert_eq!(same, 0.0);

    let mut missing = w.clone();
    missing.remove("model.layers.1.self_attn.k_proj.bias");
    let e = Qwen2::from_weights(&c, &missing, &DEV)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("model.layers.1.self_attn.k_proj.bias"), "{e}");
    let mut bad = w.clone();
    bad.insert(
        "model.norm.weight".into(),
        Tensor::zeros(63, DType::F32, &DEV).unwrap(),
    );
    let e = Qwen2::from_weights(&c, &bad, &DEV)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("model.norm.weight") && e.contains("63"), "{e}");
    assert!(Llama::from_weights(&c, &w, &DEV).is_err());

    let e = sample(&m, &[vec![1u32, 300]], &SampleConfig::greedy(2))
        .unwrap_err()
        .to_string();
    assert!(e.contains("prompt 0") && e.contains("300"), "{e}");
    assert!(sample(&m, &[Vec::<u32>::new()], &SampleConfig::greedy(2)).is_err());
    let bad_p = SampleConfig {
        top_p: 0.0,
        ..SampleConfig::default()
    };
    assert!(sample(&m, &[vec![1u32]], &bad_p).is_err());
    assert!(score(&m, &[(vec![], vec![1u32])], false).is_err());
    assert!(score_no_grad(&m, &[(vec![1u32], vec![301u32])]).is_err());
    assert!(PrefixScorer::new(&m, &[]).is_err());
}

/// The path in env `var`, or `None` (with a printed note) when it is unset;
/// with `BARL_REQUIRE_DATA=1` a missing variable or file fails the test.
fn model_path(var: &str) -> Option<std::path::PathBuf> {
    let require = std::env::var("BARL_REQUIRE_DATA").is_ok_and(|v| v == "1");
    match std::env::var_os(var).map(std::path::PathBuf::from) {
        Some(p) if p.is_file() => Some(p),
        Some(p) if require => panic!("{var}={} is not a file", p.display()),
        None if require => panic!("{var} is unset and BARL_REQUIRE_DATA=1"),
        other => {
            eprintln!("skipping: {var} not set or not a file ({other:?})");
            None
        }
    }
}

/// Acceptance: our f32 model from the GGUF (dequantized and un-permuted by
/// our loader) against candle-transformers' quantized Llama with every weight
/// dequantized to f32, on several prompts.
#[test]
fn smollm2_gguf_logits_match_candle_quantized_llama() {
    let Some(path) = model_path("BARL_SMOLLM2") else {
        return;
    };
    let loaded = barl_model::load_gguf(&path, &DEV).unwrap();
    let ours = AnyModel::from_weights(&loaded.config, &loaded.weights, &DEV).unwrap();
    let tok = loaded.tokenizer;
    drop(loaded.weights);
    // Read once per thread by candle when it builds its QMatMuls.
    std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1");
    let mut f = std::fs::File::open(&path).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
    let mut theirs = candle_transformers::models::quantized_llama::ModelWeights::from_gguf(
        content, &mut f, &DEV,
    )
    .unwrap();
    let texts = [
        "What is the capital of France?",
        "<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n<|im_start|>assistant\n",
        "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
        "x",
    ];
    for text in texts {
        let ids = tok.encode(text, false).unwrap();
        let a = last_logits(&ours, &ids, Mode::Infer);
        let b = theirs.forward(&row(&ids), 0).unwrap().squeeze(0).unwrap();
        let d = max_diff(&a, &b);
        eprintln!(
            "{text:?} ({} tokens): max abs diff vs candle {d:.2e}",
            ids.len()
        );
        assert!(
            d <= 1e-3,
            "{text:?} ({} tokens): max abs diff {d}",
            ids.len()
        );
        // The training path agrees too (same tolerance as the random models).
        let d = max_diff(&a, &last_logits(&ours, &ids, Mode::Train));
        assert!(d <= 1e-4, "{text:?}: train vs infer {d}");
    }
    // A sanity check of the whole decode path on the real model: greedy chat
    // completion of a question every small instruct model answers.
    let prompt = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by \
                  Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?\
                  <|im_end|>\n<|im_start|>assistant\n";
    let ids = tok.encode(prompt, false).unwrap();
    let sc = SampleConfig {
        stop_tokens: ours.config().eos_token_ids.clone(),
        ..SampleConfig::greedy(24)
    };
    let out = sample(&ours, &[ids], &sc).unwrap().remove(0);
    let text = tok.decode(&out.tokens, true).unwrap();
    eprintln!("greedy answer: {text:?} ({:?})", out.finish);
    assert!(text.contains("Paris"), "{text:?}");
}

/// The acceptance check for saved folders: a random Qwen2 saved as a Hugging
/// Face folder, loaded back by us and by candle-transformers (its own config
/// parsing of our `config.json`, its own safetensors reading), gives the same
/// last-position logits.
#[test]
fn saved_qwen2_folder_matches_candle_transformers_loading_it() {
    use candle_transformers::models::qwen2 as cq;
    let dir = std::env::temp_dir().join(format!("barl-qwen2-folder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let c = cfg(Arch::Qwen2, false, false);
    let (_, w) = build(&c, 21);
    // A minimal word-level tokenizer: the folder needs one, the logits do not.
    let tok = barl_model::Tokenizer::from_json(
        r#"{"version":"1.0","model":{"type":"WordLevel","vocab":{"<unk>":0,"a":1},"unk_token":"<unk>"}}"#,
    )
    .unwrap();
    barl_model::save_hf_folder(&dir, &c, &w, &tok, None).unwrap();

    let loaded = barl_model::load_hf_folder(&dir, &DEV).unwrap();
    assert_eq!(loaded.config, c);
    let ours = AnyModel::from_weights(&loaded.config, &loaded.weights, &DEV).unwrap();

    let json = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let qc: cq::Config =
        serde_json::from_str(&json).expect("candle-transformers reads our config.json");
    let st = dir.join("model.safetensors");
    // SAFETY: the file was just written by this test and is not modified while mapped.
    let vb =
        unsafe { candle_nn::VarBuilder::from_mmaped_safetensors(&[st], DType::F32, &DEV) }.unwrap();
    let mut theirs = cq::ModelForCausalLM::new(&qc, vb).unwrap();
    for (k, len) in PROMPT_LENS.into_iter().enumerate() {
        let t = ids(len, 30 + k as u64, 300);
        theirs.clear_kv_cache();
        let their = theirs.forward(&row(&t), 0).unwrap().flatten_all().unwrap();
        let d = max_diff(&last_logits(&ours, &t, Mode::Infer), &their);
        assert!(d <= 1e-4, "len {len}: {d}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
