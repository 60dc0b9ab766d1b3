//! The LLM engine's speed on this machine (`barl bench engine`): sampling
//! throughput at several batch sizes, prefill throughput, one training step
//! (forward + backward + AdamW) with its peak memory, and the BARL probe path
//! (prefix scoring) against re-encoding. Each figure is the median of `runs`.

use std::time::Instant;

use barl_model::layers::KvCache;
use barl_model::{sample, score, score_no_grad, CausalLm, Mode, PrefixScorer, SampleConfig};
use candle_core::Tensor;
use serde_json::json;

use super::engine::Engine;
use crate::optim::{AdamW, AdamWConfig};
use crate::TrainError;

/// What to measure (the flags of `barl bench engine`).
#[derive(Clone, Debug)]
pub struct EngineBench {
    pub runs: usize,
    /// Batch sizes for sampling.
    pub batches: Vec<usize>,
    /// New tokens per sampled sequence (no stop token).
    pub new_tokens: usize,
    pub prefill_len: usize,
    /// Whether to time a training step, of `train_batch` x `train_len` tokens.
    pub train: bool,
    pub train_batch: usize,
    pub train_len: usize,
    /// Only the training step (no sampling, prefill or prefix scoring).
    pub train_only: bool,
    /// Prefix scoring: hypotheses per step, steps, tokens per step.
    pub hypotheses: usize,
    pub steps: usize,
    pub chunk: usize,
    pub greedy: bool,
}

impl EngineBench {
    /// Every count at least 1 (a training sequence at least 2 tokens).
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.runs == 0 || self.batches.contains(&0) || self.new_tokens == 0 || self.train_len < 2
        {
            return Err(TrainError::Setting(
                "--runs, --batches, --new-tokens must be >= 1 and --train-len >= 2".into(),
            ));
        }
        Ok(())
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn timed<T>(f: impl FnOnce() -> Result<T, TrainError>) -> Result<(f64, T), TrainError> {
    let t = Instant::now();
    let out = f()?;
    Ok((t.elapsed().as_secs_f64(), out))
}

/// Peak resident memory since the last [`reset_peak_rss`], in bytes (Linux).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the kernel's peak-RSS counter (`echo 5 > /proc/self/clear_refs`).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Deterministic pseudo-text token ids (not special tokens: ids from 100 up).
fn ids(n: usize, salt: u64, vocab: usize) -> Vec<u32> {
    let span = (vocab.saturating_sub(100)).max(1) as u64;
    (0..n as u64)
        .map(|i| (100 + (i.wrapping_mul(2654435761).wrapping_add(salt * 97)) % span) as u32)
        .collect()
}

/// Runs every measurement, passing each result line to `say`, and returns
/// them all as JSON.
pub fn engine_bench(
    engine: &Engine,
    a: &EngineBench,
    say: &mut dyn FnMut(String),
) -> Result<serde_json::Value, TrainError> {
    a.validate()?;
    let m = &engine.model;
    let cfg = m.config().clone();
    let vocab = cfg.vocab_size;
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    say(format!(
        "{:?}, {} layers, hidden {}, threads {threads}, median of {} runs",
        cfg.arch, cfg.num_hidden_layers, cfg.hidden_size, a.runs
    ));

    if a.train_only {
        return Ok(
            json!({"threads": threads, "runs": a.runs, "train_step": train_step(m, a, say)?}),
        );
    }
    let prompt = engine.encode(
        &engine
            .render_chat(&[(
                "user".into(),
                "Tell me a long story about a lighthouse keeper.".into(),
            )])
            .unwrap_or_else(|_| "Tell me a long story about a lighthouse keeper.".into()),
        true,
    )?;
    let mut sampling = Vec::new();
    for &b in &a.batches {
        let prompts = vec![prompt.clone(); b];
        let scfg = SampleConfig {
            max_new_tokens: a.new_tokens,
            temperature: if a.greedy { 0.0 } else { 1.0 },
            stop_tokens: Vec::new(),
            seed: 7,
            ..SampleConfig::default()
        };
        let mut times = Vec::new();
        let mut first = Vec::new();
        for _ in 0..a.runs {
            let (t, out) = timed(|| Ok(sample(m, &prompts, &scfg)?))?;
            let produced: usize = out.iter().map(|c| c.tokens.len()).sum();
            if produced != b * a.new_tokens {
                return Err(TrainError::Bench(format!(
                    "batch {b}: produced {produced} tokens, expected {}",
                    b * a.new_tokens
                )));
            }
            times.push(t);
            first = out[0].tokens.clone();
        }
        let t = median(times);
        let tps = (b * a.new_tokens) as f64 / t;
        say(format!(
            "sample  batch {b:>3}: {tps:>9.1} tokens/s ({t:.2} s for {} tokens)",
            b * a.new_tokens
        ));
        sampling.push(
            json!({"batch": b, "new_tokens": a.new_tokens, "seconds": t, "tokens_per_s": tps,
                "prompt_tokens": prompt.len(), "first_completion": first}),
        );
    }
    let b1 = sampling.first().and_then(|s| s["tokens_per_s"].as_f64());
    let blast = sampling.last().and_then(|s| s["tokens_per_s"].as_f64());
    if let (Some(x), Some(y)) = (b1, blast) {
        say(format!(
            "batch {} / batch {}: {:.2}x",
            a.batches.last().unwrap_or(&1),
            a.batches[0],
            y / x
        ));
    }

    // Prefill: one prompt through the model, logits of the last position only.
    let dev = m.device().clone();
    let long = ids(a.prefill_len, 1, vocab);
    let mut times = Vec::new();
    for _ in 0..a.runs {
        let toks = Tensor::from_vec(long.clone(), (1, long.len()), &dev)?;
        let (t, _) = timed(|| {
            let mut cache = KvCache::new(&cfg, 1, long.len());
            let h = m.hidden(&toks, Some(&mut cache), Mode::Infer)?;
            let last = h.narrow(1, long.len() - 1, 1)?;
            Ok(m.logits(&last, Mode::Infer)?)
        })?;
        times.push(t);
    }
    let prefill_t = median(times);
    let prefill_tps = a.prefill_len as f64 / prefill_t;
    say(format!(
        "prefill {} tokens: {prefill_tps:>9.1} tokens/s ({prefill_t:.3} s)",
        a.prefill_len
    ));

    let train = if a.train {
        train_step(m, a, say)?
    } else {
        serde_json::Value::Null
    };

    // BARL probes: a prefix growing by `chunk` tokens per step, `hypotheses`
    // short answers scored after each step; cached vs re-encoding everything.
    let prefix0 = ids(32, 3, vocab);
    let chunks: Vec<Vec<u32>> = (0..a.steps)
        .map(|k| ids(a.chunk, 100 + k as u64, vocab))
        .collect();
    let hyps: Vec<Vec<u32>> = (0..a.hypotheses)
        .map(|h| ids(8, 500 + h as u64, vocab))
        .collect();
    let mut cached_t = Vec::new();
    let mut fresh_t = Vec::new();
    let mut max_diff = 0f32;
    for _ in 0..a.runs {
        let (t, cached) = timed(|| {
            let mut ps = PrefixScorer::new(m, &prefix0)?;
            let mut all = Vec::new();
            for c in &chunks {
                ps.extend(c)?;
                all.push(ps.score(&hyps)?);
            }
            Ok(all)
        })?;
        cached_t.push(t);
        let (t, fresh) = timed(|| {
            let mut prefix = prefix0.clone();
            let mut all = Vec::new();
            for c in &chunks {
                prefix.extend_from_slice(c);
                let pairs: Vec<(&[u32], &[u32])> = hyps
                    .iter()
                    .map(|h| (prefix.as_slice(), h.as_slice()))
                    .collect();
                let lps = score_no_grad(m, &pairs)?;
                all.push(
                    lps.iter()
                        .map(|v| v.iter().sum::<f32>())
                        .collect::<Vec<f32>>(),
                );
            }
            Ok(all)
        })?;
        fresh_t.push(t);
        for (x, y) in cached.iter().flatten().zip(fresh.iter().flatten()) {
            max_diff = max_diff.max((x - y).abs());
        }
    }
    let (ct, ft) = (median(cached_t), median(fresh_t));
    say(format!(
        "prefix scoring {} hyps x {} steps of {} tokens: cached {ct:.2} s, re-encoding {ft:.2} s, {:.1}x (max |diff| {max_diff:.2e})",
        a.hypotheses,
        a.steps,
        a.chunk,
        ft / ct
    ));

    Ok(json!({
        "threads": threads,
        "runs": a.runs,
        "greedy": a.greedy,
        "prompt_ids": prompt,
        "sampling": sampling,
        "prefill": {"tokens": a.prefill_len, "seconds": prefill_t, "tokens_per_s": prefill_tps},
        "train_step": train,
        "prefix_scoring": {"hypotheses": a.hypotheses, "steps": a.steps, "chunk": a.chunk,
            "cached_s": ct, "reencode_s": ft, "speedup": ft / ct, "max_abs_diff": max_diff},
    }))
}

/// One training step (`a.train_batch` x `a.train_len` tokens): log-probs of
/// whole sequences, mean NLL, backward, AdamW over the model's trainable
/// variables (a LoRA model's: the adapter only); median time and peak RSS.
fn train_step<M: CausalLm + ?Sized>(
    m: &M,
    a: &EngineBench,
    say: &mut dyn FnMut(String),
) -> Result<serde_json::Value, TrainError> {
    let vocab = m.config().vocab_size;
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = (0..a.train_batch)
        .map(|i| {
            let s = ids(a.train_len, 10 + i as u64, vocab);
            (s[..1].to_vec(), s[1..].to_vec())
        })
        .collect();
    let vars = m.vars();
    let trainable: usize = vars.iter().map(|v| v.elem_count()).sum();
    let mut opt = AdamW::new(
        vars.clone(),
        AdamWConfig {
            lr: 1e-6,
            ..AdamWConfig::default()
        },
    )?;
    let rss_reset = reset_peak_rss();
    let mut times = Vec::new();
    for _ in 0..a.runs {
        let (t, _) = timed(|| {
            let s = score(m, &pairs, false)?;
            let loss = ((s.logprobs * &s.mask)?.sum_all()?
                / s.mask.sum_all()?.to_scalar::<f32>()? as f64)?
                .neg()?;
            let store = loss.backward()?;
            // Gradients of ops on variables keep the graph (all activations)
            // alive: detach them and drop the graph before the optimizer's
            // temporaries are allocated.
            let grads: Vec<Option<Tensor>> = vars
                .iter()
                .map(|v| store.get(v.as_tensor()).map(Tensor::detach))
                .collect();
            drop(store);
            drop(loss);
            opt.step_grads(&grads)?;
            Ok(())
        })?;
        times.push(t);
    }
    let t = median(times);
    let peak = if rss_reset { peak_rss() } else { None };
    say(format!(
        "train step {} x {} tokens, {:.2}M trainable parameters: {t:.2} s, peak RSS {}",
        a.train_batch,
        a.train_len,
        trainable as f64 / 1e6,
        peak.map(|p| format!("{:.2} GB", p as f64 / 1e9))
            .unwrap_or_else(|| "n/a".into())
    ));
    Ok(
        json!({"batch": a.train_batch, "len": a.train_len, "seconds": t, "peak_rss_bytes": peak,
        "trainable_parameters": trainable}),
    )
}
