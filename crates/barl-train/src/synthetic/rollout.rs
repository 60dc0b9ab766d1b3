//! Sampling episodes of the synthetic task, and the answer probes `p_i(k)`.
//!
//! Episodes of a batch run in lockstep: the token layout is fixed (see
//! [`super::task`]), so one KV cache serves the whole batch. An episode that
//! already succeeded keeps receiving filler tokens that nothing reads.

use barl_model::{log_softmax_last, TinyGpt};
use candle_core::{Device, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::task::TaskConfig;
use crate::TrainError;

/// A batch of finished episodes.
#[derive(Clone, Debug)]
pub struct Episodes {
    /// Prompt symbol of each episode.
    pub prompts: Vec<u32>,
    /// Full token sequence of each episode, `seq_len` long; positions after the
    /// episode's end hold the fail token.
    pub tokens: Vec<Vec<u32>>,
    /// Attempts made (1..=T).
    pub n_attempts: Vec<usize>,
    /// Whether some attempt was rewarded (the episode outcome `R`).
    pub success: Vec<bool>,
    /// Sampler log-probability of every attempt token, `T * L` per episode;
    /// entries past `n_attempts * L` are 0.
    pub logp: Vec<Vec<f32>>,
    /// The string the episode's world rewards: the prompt's target, or for a
    /// branch another hypothesis' string.
    pub targets: Vec<Vec<u32>>,
    /// First attempt the episode sampled itself; the attempts before it are a
    /// history copied from another episode (a branch). 0 for ordinary episodes.
    pub start: Vec<usize>,
}

impl Episodes {
    /// Number of episodes.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }

    /// Attempt `k` of episode `e`.
    pub fn attempt<'a>(&'a self, task: &TaskConfig, e: usize, k: usize) -> &'a [u32] {
        let p = task.attempt_pos(k, 0);
        &self.tokens[e][p..p + task.attempt_len]
    }

    /// Reward of `attempt` in episode `e`'s world (1.0 or 0.0).
    pub fn reward(&self, e: usize, attempt: &[u32]) -> f32 {
        f32::from(u8::from(self.targets[e] == attempt))
    }

    /// Appends the episodes of `other`.
    pub fn extend(&mut self, other: Episodes) {
        self.prompts.extend(other.prompts);
        self.tokens.extend(other.tokens);
        self.n_attempts.extend(other.n_attempts);
        self.success.extend(other.success);
        self.logp.extend(other.logp);
        self.targets.extend(other.targets);
        self.start.extend(other.start);
    }

    /// An empty batch.
    pub fn empty() -> Episodes {
        Episodes {
            prompts: vec![],
            tokens: vec![],
            n_attempts: vec![],
            success: vec![],
            logp: vec![],
            targets: vec![],
            start: vec![],
        }
    }

    /// Episodes of the default task (V = L = T = 3) from attempt strings such
    /// as `"000"`; the feedback tokens follow the task's reward.
    #[cfg(test)]
    pub(crate) fn from_strings(task: &TaskConfig, rows: &[(u32, &[&str])]) -> Episodes {
        let mut out = Episodes::empty();
        for &(c, attempts) in rows {
            let mut tokens = vec![task.fail_token(); task.seq_len()];
            tokens[0] = c;
            let mut success = false;
            for (k, a) in attempts.iter().enumerate() {
                let a: Vec<u32> = a.bytes().map(|b| u32::from(b - b'0')).collect();
                tokens[task.attempt_pos(k, 0)..][..3].copy_from_slice(&a);
                success = task.reward(c, &a) > 0.0;
                tokens[task.attempt_pos(k, 3)] = if success {
                    task.success_token()
                } else {
                    task.fail_token()
                };
            }
            out.prompts.push(c);
            out.tokens.push(tokens);
            out.n_attempts.push(attempts.len());
            out.success.push(success);
            out.logp.push(vec![0.0; 9]);
            out.targets.push(task.target(c));
            out.start.push(0);
        }
        out
    }

    /// Share of episodes that succeeded (0 for an empty batch).
    pub fn success_rate(&self) -> f64 {
        self.success.iter().filter(|&&s| s).count() as f64 / self.len().max(1) as f64
    }

    /// Outcome reward `R` of each episode (1.0 or 0.0).
    pub fn rewards(&self) -> Vec<f32> {
        self.success
            .iter()
            .map(|&s| f32::from(u8::from(s)))
            .collect()
    }
}

/// How to pick each symbol.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decoding {
    /// Highest-probability symbol (ties to the lowest id).
    Greedy,
    /// Sample from the softmax of `logits / temperature`.
    Sample { temperature: f32 },
}

/// Log-softmax of one row of logits, in f64.
fn log_probs(row: &[f32], temperature: f32) -> Vec<f64> {
    let t = f64::from(temperature.max(1e-6));
    let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let lse = row
        .iter()
        .map(|&x| ((x as f64 - max) / t).exp())
        .sum::<f64>()
        .ln();
    row.iter().map(|&x| (x as f64 - max) / t - lse).collect()
}

/// Draws one symbol; returns it and its log-probability under the sampling
/// distribution (under the model's own distribution for greedy).
fn pick(row: &[f32], decoding: Decoding, rng: &mut ChaCha8Rng) -> (u32, f32) {
    match decoding {
        Decoding::Greedy => {
            let lp = log_probs(row, 1.0);
            let mut best = 0;
            for (i, &x) in row.iter().enumerate() {
                if x > row[best] {
                    best = i;
                }
            }
            (best as u32, lp[best] as f32)
        }
        Decoding::Sample { temperature } => {
            let lp = log_probs(row, temperature);
            let u: f64 = rng.gen();
            let mut acc = 0.0;
            for (i, &l) in lp.iter().enumerate() {
                acc += l.exp();
                if u < acc {
                    return (i as u32, l as f32);
                }
            }
            // Rounding left u above the total: take the last symbol.
            let last = lp.len() - 1;
            (last as u32, lp[last] as f32)
        }
    }
}

fn last_logits(logits: &Tensor) -> Result<Vec<Vec<f32>>, TrainError> {
    let t = logits.dim(1)?;
    Ok(logits.narrow(1, t - 1, 1)?.squeeze(1)?.to_vec2::<f32>()?)
}

fn column(tokens: &[u32], device: &Device, width: usize) -> Result<Tensor, TrainError> {
    let b = tokens.len() / width;
    Ok(Tensor::from_vec(tokens.to_vec(), (b, width), device)?)
}

/// Plays one episode per prompt with `policy` (use a detached model).
pub fn sample_episodes(
    policy: &TinyGpt,
    task: &TaskConfig,
    prompts: &[u32],
    decoding: Decoding,
    rng: &mut ChaCha8Rng,
) -> Result<Episodes, TrainError> {
    let mut ep = Episodes::empty();
    for &c in prompts {
        let mut tokens = vec![task.fail_token(); task.seq_len()];
        tokens[0] = c;
        ep.prompts.push(c);
        ep.tokens.push(tokens);
        ep.n_attempts.push(0);
        ep.success.push(false);
        ep.logp
            .push(vec![0f32; task.max_attempts * task.attempt_len]);
        ep.targets.push(task.target(c));
        ep.start.push(0);
    }
    play(policy, task, ep, 0, decoding, rng)
}

/// Branches of finished episodes into other hypotheses' worlds. For each
/// `(e, target)` in `picks`: episode `e` of `parents` up to its rewarded last
/// attempt `j`, with that attempt's feedback turned into a failure, continued
/// by `policy` from attempt `j + 1` in the world where `target` is the
/// rewarded string. This is a rollout under hypothesis `M_i` from the history
/// where the true answer failed, a context the true task never produces once
/// the policy answers right. Picks whose parent has no attempt left are skipped.
pub fn sample_branches(
    policy: &TinyGpt,
    task: &TaskConfig,
    parents: &Episodes,
    picks: &[(usize, Vec<u32>)],
    decoding: Decoding,
    rng: &mut ChaCha8Rng,
) -> Result<Episodes, TrainError> {
    let mut out = Episodes::empty();
    // Lockstep play needs one start attempt per call: group by it.
    for k0 in 1..task.max_attempts {
        let mut ep = Episodes::empty();
        for (e, target) in picks {
            let e = *e;
            if parents.n_attempts[e] != k0 || !parents.success[e] {
                continue;
            }
            let mut tokens = parents.tokens[e].clone();
            tokens[task.attempt_pos(k0 - 1, task.attempt_len)] = task.fail_token();
            ep.prompts.push(parents.prompts[e]);
            ep.tokens.push(tokens);
            ep.n_attempts.push(k0);
            ep.success.push(false);
            ep.logp.push(parents.logp[e].clone());
            ep.targets.push(target.clone());
            ep.start.push(k0);
        }
        out.extend(play(policy, task, ep, k0, decoding, rng)?);
    }
    Ok(out)
}

/// Plays the episodes of `ep` from attempt `k0` on; their tokens before
/// `history_len(k0)` are given. Episodes end at their first rewarded attempt.
fn play(
    policy: &TinyGpt,
    task: &TaskConfig,
    mut ep: Episodes,
    k0: usize,
    decoding: Decoding,
    rng: &mut ChaCha8Rng,
) -> Result<Episodes, TrainError> {
    let b = ep.len();
    let (l, t_max) = (task.attempt_len, task.max_attempts);
    if b == 0 || k0 >= t_max {
        return Ok(ep);
    }
    let device = Device::Cpu;
    let fail = task.fail_token();
    let h = task.history_len(k0);
    let history: Vec<u32> = ep.tokens.iter().flat_map(|t| t[..h].to_vec()).collect();
    let (logits, mut cache) = policy.forward(&column(&history, &device, h)?, None)?;
    let mut rows = last_logits(&logits)?;
    let Episodes {
        tokens,
        logp,
        n_attempts,
        success,
        targets,
        ..
    } = &mut ep;
    for k in k0..t_max {
        for j in 0..l {
            let mut picked = Vec::with_capacity(b);
            for e in 0..b {
                let (a, lp) = pick(&rows[e], decoding, rng);
                if !success[e] {
                    tokens[e][task.attempt_pos(k, j)] = a;
                    logp[e][k * l + j] = lp;
                }
                picked.push(tokens[e][task.attempt_pos(k, j)]);
            }
            let last_symbol = j + 1 == l;
            if !last_symbol {
                let (logits, c) = policy.forward(&column(&picked, &device, 1)?, Some(&cache))?;
                cache = c;
                rows = last_logits(&logits)?;
                continue;
            }
            // End of attempt k: reward, feedback token, maybe stop.
            let mut feed = Vec::with_capacity(2 * b);
            for e in 0..b {
                if !success[e] {
                    n_attempts[e] = k + 1;
                    let rewarded = tokens[e][task.attempt_pos(k, 0)..][..l] == targets[e][..];
                    let fb = if rewarded {
                        success[e] = true;
                        task.success_token()
                    } else {
                        fail
                    };
                    tokens[e][task.attempt_pos(k, l)] = fb;
                }
                feed.push(picked[e]);
                feed.push(tokens[e][task.attempt_pos(k, l)]);
            }
            if k + 1 < t_max && success.iter().any(|s| !s) {
                let (logits, c) = policy.forward(&column(&feed, &device, 2)?, Some(&cache))?;
                cache = c;
                rows = last_logits(&logits)?;
            }
        }
        if success.iter().all(|&s| s) {
            break;
        }
    }
    Ok(ep)
}

/// Largest number of sequences in one probe forward pass (bounds memory).
const PROBE_CHUNK: usize = 2048;

/// The answer probes: `out[e][k][i]` is the policy's exact probability that
/// attempt `k` of episode `e` equals hypothesis `i`, given the history before
/// it (prompt, earlier attempts and their feedback), for `k < n_attempts[e]`:
/// `p_i(k) = prod_j pi(s_i[j] | history, s_i[..j])`.
///
/// Hypotheses sharing their first `L - 1` symbols share one probe sequence
/// `history ++ s_i[..L-1]`: its logits at the last `L` positions give every
/// factor. All steps of all episodes go through one batched forward pass
/// (chunked), right-padded, which causal attention makes harmless.
pub fn probe_probs(
    policy: &TinyGpt,
    task: &TaskConfig,
    episodes: &Episodes,
    hypotheses: &[Vec<u32>],
) -> Result<Vec<Vec<Vec<f32>>>, TrainError> {
    let l = task.attempt_len;
    // Distinct prefixes of length L-1 and, per hypothesis, which one it uses.
    let mut prefixes: Vec<&[u32]> = Vec::new();
    let mut prefix_of = Vec::with_capacity(hypotheses.len());
    for h in hypotheses {
        let p = &h[..l - 1];
        let idx = match prefixes.iter().position(|q| *q == p) {
            Some(i) => i,
            None => {
                prefixes.push(p);
                prefixes.len() - 1
            }
        };
        prefix_of.push(idx);
    }
    // One probe sequence per (episode, step, prefix).
    let mut jobs: Vec<(usize, usize, usize)> = Vec::new();
    for e in 0..episodes.len() {
        for k in 0..episodes.n_attempts[e] {
            for u in 0..prefixes.len() {
                jobs.push((e, k, u));
            }
        }
    }
    let mut lp_rows: Vec<Vec<Vec<f32>>> = Vec::with_capacity(jobs.len()); // [job][j][symbol]
    for chunk in jobs.chunks(PROBE_CHUNK) {
        let width = chunk
            .iter()
            .map(|&(_, k, _)| task.history_len(k) + l - 1)
            .max()
            .unwrap_or(1);
        let mut flat = Vec::with_capacity(chunk.len() * width);
        for &(e, k, u) in chunk {
            let hist = &episodes.tokens[e][..task.history_len(k)];
            let start = flat.len();
            flat.extend_from_slice(hist);
            flat.extend_from_slice(prefixes[u]);
            flat.resize(start + width, task.fail_token());
        }
        let input = Tensor::from_vec(flat, (chunk.len(), width), &Device::Cpu)?;
        let (logits, _) = policy.forward(&input, None)?;
        let lp = log_softmax_last(&logits)?.to_vec3::<f32>()?;
        for (row, &(_, k, _)) in lp.into_iter().zip(chunk) {
            let first = task.history_len(k) - 1;
            lp_rows.push(row[first..first + l].to_vec());
        }
    }
    let u_count = prefixes.len();
    let mut out: Vec<Vec<Vec<f32>>> = Vec::with_capacity(episodes.len());
    let mut job = 0;
    for e in 0..episodes.len() {
        let mut steps = Vec::with_capacity(episodes.n_attempts[e]);
        for _ in 0..episodes.n_attempts[e] {
            let probs = hypotheses
                .iter()
                .zip(&prefix_of)
                .map(|(h, &u)| {
                    let rows = &lp_rows[job + u];
                    let sum: f32 = h
                        .iter()
                        .enumerate()
                        .map(|(j, &s)| rows[j][s as usize])
                        .sum();
                    sum.exp()
                })
                .collect();
            steps.push(probs);
            job += u_count;
        }
        out.push(steps);
    }
    Ok(out)
}

/// The branch rollouts of a step: for each prompt, the first `per_prompt`
/// episodes that succeeded with an attempt to spare, each paired with a world
/// drawn uniformly from the hypotheses it has not tried (the posterior given
/// that every tried string, the true answer included, failed).
///
/// With `belief` (`belief[e][k][i]`, the policy's credence in hypothesis `i`
/// before attempt `k`, as [`probe_probs`] gives it), the world is drawn in
/// proportion to the credence before the attempt that succeeded instead:
/// the posterior under the policy's own belief.
pub fn branch_picks(
    task: &TaskConfig,
    episodes: &Episodes,
    hyps: &[Vec<u32>],
    per_prompt: usize,
    belief: Option<&[Vec<Vec<f32>>]>,
    rng: &mut ChaCha8Rng,
) -> Vec<(usize, Vec<u32>)> {
    let mut taken: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    let mut picks = Vec::new();
    for e in 0..episodes.len() {
        let n = episodes.n_attempts[e];
        if !episodes.success[e] || n >= task.max_attempts {
            continue;
        }
        let count = taken.entry(episodes.prompts[e]).or_default();
        if *count >= per_prompt {
            continue;
        }
        let tried: Vec<&[u32]> = (0..n).map(|k| episodes.attempt(task, e, k)).collect();
        let open: Vec<usize> = (0..hyps.len())
            .filter(|&i| !tried.contains(&hyps[i].as_slice()))
            .collect();
        if open.is_empty() {
            continue;
        }
        *count += 1;
        let weights: Vec<f64> = match belief {
            Some(b) => open.iter().map(|&i| f64::from(b[e][n - 1][i])).collect(),
            None => vec![1.0; open.len()],
        };
        picks.push((e, hyps[open[weighted_index(&weights, rng)]].clone()));
    }
    picks
}

/// An index drawn with probability proportional to `weights` (uniform when
/// they sum to zero or are not finite).
fn weighted_index(weights: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let total: f64 = weights.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return rng.gen_range(0..weights.len());
    }
    let mut u = rng.gen::<f64>() * total;
    for (i, &w) in weights.iter().enumerate() {
        if u < w {
            return i;
        }
        u -= w;
    }
    // Rounding: the last index with weight.
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // episodes, steps and symbols are read by index
mod tests {
    use super::*;

    #[test]
    fn weighted_index_follows_the_weights_and_falls_back_to_uniform() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let draws: Vec<usize> = (0..2000)
            .map(|_| weighted_index(&[1.0, 0.0, 3.0], &mut rng))
            .collect();
        let share2 = draws.iter().filter(|&&i| i == 2).count() as f64 / 2000.0;
        assert!(!draws.contains(&1));
        assert!((share2 - 0.75).abs() < 0.04, "{share2}");
        let zero: std::collections::HashSet<usize> = (0..200)
            .map(|_| weighted_index(&[0.0, 0.0], &mut rng))
            .collect();
        assert_eq!(zero.len(), 2);
    }
    use crate::synthetic::task::{hypotheses, Prior};
    use barl_model::TinyGptConfig;
    use rand::SeedableRng;

    fn model(task: &TaskConfig) -> TinyGpt {
        let cfg = TinyGptConfig {
            vocab_size: task.vocab_size(),
            n_outputs: task.alphabet_size,
            max_len: task.seq_len(),
            d_model: 16,
            n_layers: 1,
            n_heads: 2,
            d_ff: 32,
            tied_head: false,
        };
        TinyGpt::new(&cfg, 11, &Device::Cpu).unwrap().detached()
    }

    #[test]
    fn episodes_follow_the_rules() {
        let task = TaskConfig::default();
        let m = model(&task);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let prompts = vec![0, 1, 2, 0, 1, 2, 0, 1];
        let ep = sample_episodes(
            &m,
            &task,
            &prompts,
            Decoding::Sample { temperature: 1.0 },
            &mut rng,
        )
        .unwrap();
        for e in 0..ep.len() {
            let n = ep.n_attempts[e];
            assert!((1..=3).contains(&n));
            for k in 0..n {
                let r = task.reward(prompts[e], ep.attempt(&task, e, k));
                let fb = ep.tokens[e][task.attempt_pos(k, 3)];
                // Feedback token matches the reward, and only the last attempt can succeed.
                assert_eq!(fb == task.success_token(), r == 1.0);
                assert_eq!(r == 1.0, ep.success[e] && k + 1 == n);
                for j in 0..3 {
                    let lp = ep.logp[e][k * 3 + j];
                    assert!(lp < 0.0 && lp > -20.0);
                }
            }
            if !ep.success[e] {
                assert_eq!(n, 3);
            }
        }
    }

    #[test]
    fn same_seed_same_episodes() {
        let task = TaskConfig::default();
        let m = model(&task);
        let d = Decoding::Sample { temperature: 1.0 };
        let a =
            sample_episodes(&m, &task, &[0, 1, 2], d, &mut ChaCha8Rng::seed_from_u64(4)).unwrap();
        let b =
            sample_episodes(&m, &task, &[0, 1, 2], d, &mut ChaCha8Rng::seed_from_u64(4)).unwrap();
        assert_eq!(a.tokens, b.tokens);
        assert_eq!(a.logp, b.logp);
    }

    /// A branch copies its parent's history up to the rewarded attempt, turns
    /// that feedback into a failure, and plays on in its own world: its later
    /// feedback follows its target, not the prompt's.
    #[test]
    fn branches_continue_in_their_world() {
        let task = TaskConfig::default();
        let m = model(&task);
        let d = Decoding::Sample { temperature: 1.0 };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let prompts: Vec<u32> = (0..240).map(|i| i % 2).collect();
        let ep = sample_episodes(&m, &task, &prompts, d, &mut rng).unwrap();
        let picks: Vec<(usize, Vec<u32>)> = (0..ep.len())
            .filter(|&e| ep.success[e] && ep.n_attempts[e] < 3)
            .map(|e| (e, vec![2, 2, 2]))
            .collect();
        assert!(picks.len() >= 4, "too few parents: {}", picks.len());
        let br = sample_branches(&m, &task, &ep, &picks, d, &mut rng).unwrap();
        assert_eq!(br.len(), picks.len());
        let mut parents: Vec<usize> = picks.iter().map(|p| p.0).collect();
        // Branches come grouped by their first own attempt.
        parents.sort_by_key(|&e| ep.n_attempts[e]);
        for (b, &e) in parents.iter().enumerate() {
            let k0 = ep.n_attempts[e];
            assert_eq!(br.start[b], k0);
            assert_eq!(br.targets[b], vec![2, 2, 2]);
            let h = task.history_len(k0);
            let mut want = ep.tokens[e][..h].to_vec();
            want[h - 1] = task.fail_token();
            assert_eq!(br.tokens[b][..h], want[..]);
            assert!(br.n_attempts[b] > k0);
            for k in k0..br.n_attempts[b] {
                let rewarded = br.attempt(&task, b, k) == [2, 2, 2];
                assert_eq!(
                    br.tokens[b][task.attempt_pos(k, 3)] == task.success_token(),
                    rewarded
                );
                assert_eq!(rewarded, br.success[b] && k + 1 == br.n_attempts[b]);
            }
        }
    }

    /// The probes must equal a second computation: the product of the
    /// per-token probabilities read off a separate full forward pass of each
    /// `history ++ s_i` sequence, and over all `V^L` strings they sum to 1.
    #[test]
    fn probes_equal_direct_sequence_probabilities() {
        let task = TaskConfig::default();
        let m = model(&task);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let ep = sample_episodes(
            &m,
            &task,
            &[0, 2, 1],
            Decoding::Sample { temperature: 1.0 },
            &mut rng,
        )
        .unwrap();
        let hyps = hypotheses(&task, Prior::None).unwrap();
        let probs = probe_probs(&m, &task, &ep, &hyps).unwrap();
        for e in 0..ep.len() {
            assert_eq!(probs[e].len(), ep.n_attempts[e]);
            for k in 0..ep.n_attempts[e] {
                let total: f32 = probs[e][k].iter().sum();
                assert!((total - 1.0).abs() < 1e-4, "sum {total}");
                for (i, h) in hyps.iter().enumerate().step_by(5) {
                    let mut seq = ep.tokens[e][..task.history_len(k)].to_vec();
                    seq.extend_from_slice(h);
                    let n = seq.len();
                    let input = Tensor::from_vec(seq, (1, n), &Device::Cpu).unwrap();
                    let lp = log_softmax_last(&m.forward(&input, None).unwrap().0)
                        .unwrap()
                        .squeeze(0)
                        .unwrap()
                        .to_vec2::<f32>()
                        .unwrap();
                    let start = task.history_len(k) - 1;
                    let direct: f32 = (0..3)
                        .map(|j| lp[start + j][h[j] as usize])
                        .sum::<f32>()
                        .exp();
                    assert!((direct - probs[e][k][i]).abs() < 1e-5);
                }
            }
        }
        // The prior's three strings are a subset of the same numbers.
        let rep = hypotheses(&task, Prior::Repeated).unwrap();
        let p_rep = probe_probs(&m, &task, &ep, &rep).unwrap();
        assert!((p_rep[0][0][2] - probs[0][0][26]).abs() < 1e-6);
        assert!((p_rep[0][0][1] - probs[0][0][13]).abs() < 1e-6);
    }
}
