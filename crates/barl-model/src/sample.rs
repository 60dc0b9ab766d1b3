//! Batched sampling with a KV cache.
//!
//! Prompts of different lengths are left-padded into one batch and prefilled
//! in one pass; each step then feeds one token per live sequence. A sequence
//! ends on any stop token (which is kept as its last token) or after
//! `max_new_tokens`. Finished sequences are dropped from the batch (and their
//! cache rows compacted away) once they make up an eighth of it, so they soon
//! stop costing compute.
//!
//! Token choice: greedy (`temperature == 0`, ties to the lowest id) or
//! sampling from `softmax(z / temperature)` restricted first to the `top_k`
//! largest logits, then to the smallest set of tokens whose probability mass
//! reaches `top_p` (the order Hugging Face applies them in).
//!
//! Randomness: sequence `i` of a call draws from its own ChaCha8 stream
//! (`seed`, stream `first_stream + i`), so results depend only on the seed and
//! the prompt's index, not on how the batch is composed or compacted; a caller
//! that splits a long list into several calls passes each call's offset in
//! `first_stream` and gets the same samples as from one call.
//!
//! Reported log-probs ([`LogProbKind`]): by default the model's own
//! `log softmax(z)[token]` at temperature 1 without truncation, which is what
//! PPO's old log-probs and [`crate::score::score`] compute; optionally the
//! log-probability under the actual sampling distribution.

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::kernels::{exp_f32, exp_shifted};
use crate::layers::{CausalLm, KvCache, Mode};
use crate::score::check_ids;
use crate::ModelError;

/// Which log-probability [`sample`] reports for each token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogProbKind {
    /// `log softmax(z)[token]`: the policy at temperature 1, untruncated.
    #[default]
    Model,
    /// Log-probability under the distribution actually sampled from (after
    /// temperature, top-k and top-p); 0 for greedy choices.
    Sampling,
}

/// How [`sample`] chooses tokens and when it stops.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleConfig {
    /// Upper bound on new tokens per sequence.
    pub max_new_tokens: usize,
    /// Softmax temperature; 0 means greedy.
    pub temperature: f32,
    /// Keep only the `top_k` largest logits; 0 disables.
    pub top_k: usize,
    /// Nucleus sampling mass in (0, 1]; 1 disables.
    pub top_p: f32,
    /// A sequence ends right after emitting any of these.
    pub stop_tokens: Vec<u32>,
    /// Seed of the per-sequence random streams.
    pub seed: u64,
    /// Stream of the call's first sequence (sequence `i` uses `first_stream + i`).
    pub first_stream: u64,
    /// Which log-probs to report.
    pub logprobs: LogProbKind,
}

impl Default for SampleConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            stop_tokens: Vec::new(),
            seed: 0,
            first_stream: 0,
            logprobs: LogProbKind::Model,
        }
    }
}

impl SampleConfig {
    /// Greedy decoding of at most `max_new_tokens`.
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            max_new_tokens,
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// Checks temperature and top-p; the message names the field.
    pub fn validate(&self) -> Result<(), ModelError> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(ModelError::Config(format!(
                "temperature must be finite and >= 0, got {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(ModelError::Config(format!(
                "top_p must be in (0, 1], got {}",
                self.top_p
            )));
        }
        Ok(())
    }
}

/// Why a sequence ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// It emitted a stop token (the last of its tokens).
    Stop,
    /// It reached `max_new_tokens`.
    Length,
}

/// One sampled continuation.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// The new token ids (a stop token included).
    pub tokens: Vec<u32>,
    /// One log-prob per token, as chosen by [`SampleConfig::logprobs`].
    pub logprobs: Vec<f32>,
    pub finish: FinishReason,
}

/// Samples a continuation of each prompt (non-empty token id lists of any
/// lengths), all in one batch. The result is in prompt order.
pub fn sample<M, P>(
    model: &M,
    prompts: &[P],
    cfg: &SampleConfig,
) -> Result<Vec<Completion>, ModelError>
where
    M: CausalLm + ?Sized,
    P: AsRef<[u32]>,
{
    cfg.validate()?;
    let vocab = model.config().vocab_size;
    for (i, p) in prompts.iter().enumerate() {
        if p.as_ref().is_empty() {
            return Err(ModelError::Config(format!("prompt {i} is empty")));
        }
        check_ids(p.as_ref(), vocab, &format!("prompt {i}"))?;
    }
    let n = prompts.len();
    let mut out: Vec<Completion> = (0..n)
        .map(|_| Completion {
            tokens: Vec::new(),
            logprobs: Vec::new(),
            finish: FinishReason::Length,
        })
        .collect();
    if n == 0 || cfg.max_new_tokens == 0 {
        return Ok(out);
    }
    let dev = model.device();
    let width = prompts.iter().map(|p| p.as_ref().len()).max().unwrap_or(0);
    let mut flat = vec![0u32; n * width];
    let mut pads = Vec::with_capacity(n);
    for (i, p) in prompts.iter().enumerate() {
        let p = p.as_ref();
        let pad = width - p.len();
        flat[i * width + pad..(i + 1) * width].copy_from_slice(p);
        pads.push(pad);
    }
    let mut cache = KvCache::with_left_padding(model.config(), pads, width + cfg.max_new_tokens);
    let mut logits = last_logits(model, &Tensor::from_vec(flat, (n, width), dev)?, &mut cache)?;
    // `rows[r]` is the prompt index of cache row `r`.
    // Cache row `r` holds prompt `rows[r]`, which draws from `rngs[r]`.
    let mut rows: Vec<usize> = (0..n).collect();
    let mut rngs: Vec<ChaCha8Rng> = (0..n)
        .map(|i| {
            let mut r = ChaCha8Rng::seed_from_u64(cfg.seed);
            r.set_stream(cfg.first_stream.wrapping_add(i as u64));
            r
        })
        .collect();
    let mut done = vec![false; n];
    loop {
        // Token choice is independent per row: run the rows in parallel.
        let picks: Vec<Option<(u32, f32)>> = rngs
            .par_iter_mut()
            .zip(logits.par_chunks(vocab))
            .zip(rows.par_iter())
            .map(|((rng, z), &i)| (!done[i]).then(|| choose(z, cfg, rng)))
            .collect();
        let mut next = Vec::with_capacity(rows.len());
        for (&i, pick) in rows.iter().zip(picks) {
            // A finished row awaiting compaction gets a dummy token.
            let Some((tok, lp)) = pick else {
                next.push(0);
                continue;
            };
            let c = &mut out[i];
            c.tokens.push(tok);
            c.logprobs.push(lp);
            if cfg.stop_tokens.contains(&tok) {
                c.finish = FinishReason::Stop;
                done[i] = true;
            } else if c.tokens.len() >= cfg.max_new_tokens {
                done[i] = true;
            }
            next.push(tok);
        }
        let finished = rows.iter().filter(|&&i| done[i]).count();
        if finished == rows.len() {
            break;
        }
        if finished > 0 && finished * 8 >= rows.len() {
            let keep: Vec<usize> = (0..rows.len()).filter(|&r| !done[rows[r]]).collect();
            cache.retain_rows(&keep)?;
            next = keep.iter().map(|&r| next[r]).collect();
            rows = keep.iter().map(|&r| rows[r]).collect();
            let mut old: Vec<Option<ChaCha8Rng>> = rngs.into_iter().map(Some).collect();
            rngs = keep
                .iter()
                .map(|&r| old[r].take().expect("kept once"))
                .collect();
        }
        let step = Tensor::from_vec(next, (rows.len(), 1), dev)?;
        logits = last_logits(model, &step, &mut cache)?;
    }
    Ok(out)
}

/// Runs `tokens` through the model on `cache` and returns the logits of each
/// row's last position, flattened `(rows * vocab)`.
fn last_logits<M: CausalLm + ?Sized>(
    model: &M,
    tokens: &Tensor,
    cache: &mut KvCache,
) -> Result<Vec<f32>, ModelError> {
    let h = model.hidden(tokens, Some(cache), Mode::Infer)?;
    let t = h.dim(1)?;
    let z = model.logits(&h.narrow(1, t - 1, 1)?.contiguous()?, Mode::Infer)?;
    Ok(z.flatten_all()?.to_vec1::<f32>()?)
}

/// `sum_i exp(z_i - max)` (accumulated in f64) and `max`.
fn exp_sum(z: &[f32]) -> (f64, f32) {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (z.iter().map(|&x| exp_f32(x - m) as f64).sum(), m)
}

/// `log softmax(z)[tok] = z[tok] - max - ln sum exp(z - max)`, with
/// `(sum, max)` from [`exp_sum`] unless the caller already has them.
fn model_log_prob(z: &[f32], tok: usize, known: Option<(f64, f32)>) -> f32 {
    let (sum, max) = known.unwrap_or_else(|| exp_sum(z));
    ((z[tok] - max) as f64 - sum.ln()) as f32
}

/// Picks the next token from one row of logits; returns it with the log-prob
/// [`SampleConfig::logprobs`] asks for.
fn choose(z: &[f32], cfg: &SampleConfig, rng: &mut ChaCha8Rng) -> (u32, f32) {
    if cfg.temperature == 0.0 {
        let mut best = 0;
        for (i, &x) in z.iter().enumerate() {
            if x > z[best] {
                best = i;
            }
        }
        let lp = match cfg.logprobs {
            LogProbKind::Model => model_log_prob(z, best, None),
            LogProbKind::Sampling => 0.0,
        };
        return (best as u32, lp);
    }
    // Candidates as (unnormalised probability, id), probabilities relative
    // to the largest scaled logit.
    let inv_t = 1.0 / cfg.temperature;
    let zmax = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut e = vec![0f32; z.len()];
    exp_shifted(z, zmax, inv_t, &mut e);
    if cfg.top_k == 0 && cfg.top_p >= 1.0 {
        return choose_untruncated(z, &e, zmax, cfg, rng);
    }
    let mut cand: Vec<(f32, u32)> = e.iter().enumerate().map(|(i, &p)| (p, i as u32)).collect();
    // At temperature 1 these are the softmax numerators: reuse their sum.
    let model_sum = if cfg.temperature == 1.0 && cfg.logprobs == LogProbKind::Model {
        Some(cand.iter().map(|c| c.0 as f64).sum::<f64>())
    } else {
        None
    };
    let desc = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if cfg.top_k > 0 && cfg.top_k < cand.len() {
        cand.select_nth_unstable_by(cfg.top_k - 1, desc);
        cand.truncate(cfg.top_k);
    }
    if cfg.top_p < 1.0 {
        // The nucleus lies within the m most probable candidates as soon as
        // their mass reaches top_p; grow m until it does, sorting only them.
        let total: f64 = cand.iter().map(|c| c.0 as f64).sum();
        let goal = cfg.top_p as f64 * total;
        let mut m = cand.len().min(64);
        loop {
            if m < cand.len() {
                cand.select_nth_unstable_by(m - 1, desc);
            }
            cand[..m].sort_unstable_by(desc);
            let mut acc = 0.0;
            let cut = cand[..m].iter().position(|c| {
                acc += c.0 as f64;
                acc >= goal
            });
            match cut {
                Some(k) => {
                    cand.truncate(k + 1);
                    break;
                }
                None if m == cand.len() => break,
                None => m = (m * 4).min(cand.len()),
            }
        }
    }
    let mass: f64 = cand.iter().map(|c| c.0 as f64).sum();
    let u = rng.gen::<f64>() * mass;
    let mut acc = 0.0;
    let mut pick = cand[cand.len() - 1];
    for &c in &cand {
        acc += c.0 as f64;
        if u < acc {
            pick = c;
            break;
        }
    }
    let lp = match cfg.logprobs {
        LogProbKind::Model => model_log_prob(z, pick.1 as usize, model_sum.map(|s| (s, zmax))),
        LogProbKind::Sampling => (pick.0 as f64 / mass).ln() as f32,
    };
    (pick.1, lp)
}

/// [`choose`] without top-k or top-p, from the numerators `e` of
/// `softmax(z / temperature)`: inverse-CDF sampling over blocks of 256
/// tokens, whose sums (8 partial sums each, so they vectorise) locate the
/// pick before the one block is scanned token by token.
fn choose_untruncated(
    z: &[f32],
    e: &[f32],
    zmax: f32,
    cfg: &SampleConfig,
    rng: &mut ChaCha8Rng,
) -> (u32, f32) {
    const B: usize = 256;
    let sums: Vec<f64> = e
        .chunks(B)
        .map(|b| {
            let mut acc = [0f64; 8];
            for (i, &p) in b.iter().enumerate() {
                acc[i % 8] += p as f64;
            }
            acc.iter().sum()
        })
        .collect();
    let mass: f64 = sums.iter().sum();
    let u = rng.gen::<f64>() * mass;
    let mut acc = 0.0;
    let mut pick = e.len() - 1;
    'blocks: for (bi, &s) in sums.iter().enumerate() {
        if u < acc + s {
            for (i, &p) in e[bi * B..(bi * B + B).min(e.len())].iter().enumerate() {
                acc += p as f64;
                if u < acc {
                    pick = bi * B + i;
                    break 'blocks;
                }
            }
            // Round-off left u past this block's own running sum: its last token.
            pick = (bi * B + B).min(e.len()) - 1;
            break;
        }
        acc += s;
    }
    let lp = match cfg.logprobs {
        // At temperature 1 the numerators are softmax(z)'s: reuse their sum.
        LogProbKind::Model => {
            let known = (cfg.temperature == 1.0).then_some((mass, zmax));
            model_log_prob(z, pick, known)
        }
        LogProbKind::Sampling => (e[pick] as f64 / mass).ln() as f32,
    };
    (pick as u32, lp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(1)
    }

    #[test]
    fn greedy_picks_the_first_maximum_with_its_log_prob() {
        let z = [1.0f32, 3.0, 3.0, -1.0];
        let (t, lp) = choose(&z, &SampleConfig::greedy(1), &mut rng());
        assert_eq!(t, 1);
        // log softmax: 3 - ln(e^1 + 2 e^3 + e^-1) = 3 - ln(2.71828 + 40.17107 + 0.36788) = 3 - 3.76714
        assert!((lp - (3.0 - 3.767_14)).abs() < 1e-4, "{lp}");
    }

    #[test]
    fn top_k_and_top_p_restrict_the_support() {
        // Probabilities at temperature 1 are proportional to e^z.
        let z = [0.0f32, 5.0, 4.0, 1.0, 4.5];
        let mut seen = [0usize; 5];
        let cfg = SampleConfig {
            top_k: 2,
            logprobs: LogProbKind::Sampling,
            ..SampleConfig::default()
        };
        let mut r = rng();
        for _ in 0..400 {
            let (t, lp) = choose(&z, &cfg, &mut r);
            seen[t as usize] += 1;
            // Two kept tokens: p(1) = 1 / (1 + e^-0.5) = 0.6225, p(4) = 0.3775.
            let want = if t == 1 { 0.622_459f32 } else { 0.377_541 };
            assert!((lp.exp() - want).abs() < 1e-5);
        }
        assert_eq!(seen[0] + seen[2] + seen[3], 0);
        assert!(seen[1] > 180 && seen[4] > 100, "{seen:?}");
        // top_p 0.5: the largest probability e^5 / (1 + e^5 + e^4 + e + e^4.5)
        // = 148.41 / 293.42 = 0.506 already reaches 0.5, so only token 1 is left.
        let cfg = SampleConfig {
            top_p: 0.5,
            ..SampleConfig::default()
        };
        for _ in 0..50 {
            assert_eq!(choose(&z, &cfg, &mut r).0, 1);
        }
    }

    #[test]
    fn untruncated_sampling_follows_the_softmax_across_blocks() {
        // 600 tokens (three blocks of the block search), mass on 3, 300, 599
        // with logits 0, 1, 2: p = (1, e, e^2) / (1 + e + e^2) = 0.0900,
        // 0.2447, 0.6652; at temperature 2, (1, e^.5, e) / (1 + e^.5 + e)
        // = 0.1863, 0.3072, 0.5065.
        let mut z = vec![-1e4f32; 600];
        (z[3], z[300], z[599]) = (0.0, 1.0, 2.0);
        for (t, want) in [
            (1.0f32, [0.0900, 0.2447, 0.6652]),
            (2.0, [0.1863, 0.3072, 0.5065]),
        ] {
            let cfg = SampleConfig {
                temperature: t,
                logprobs: LogProbKind::Sampling,
                ..SampleConfig::default()
            };
            let mut seen = [0usize; 3];
            let mut r = rng();
            for _ in 0..4000 {
                let (tok, lp) = choose(&z, &cfg, &mut r);
                let i = [3, 300, 599]
                    .iter()
                    .position(|&x| x == tok)
                    .expect("a token with mass");
                seen[i] += 1;
                assert!((lp.exp() as f64 - want[i]).abs() < 1e-4, "{t} {tok} {lp}");
            }
            for i in 0..3 {
                // 4000 draws: the standard error of a frequency is below 0.008.
                let f = seen[i] as f64 / 4000.0;
                assert!((f - want[i]).abs() < 0.03, "{t}: {seen:?}");
            }
        }
        // The model's log-prob at temperature 1: z - ln(sum e^z) = 2 - 2.40761.
        let (tok, lp) = choose(&z, &SampleConfig::default(), &mut rng());
        let want = z[tok as usize] - 2.407_606;
        assert!((lp - want).abs() < 1e-5, "{tok} {lp} {want}");
    }
}
