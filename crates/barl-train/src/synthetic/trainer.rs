//! Training one policy on the synthetic task with one method.
//!
//! The three methods share everything (model, initial weights, optimiser,
//! rollouts, PPO-clip loss) except how rewards become token advantages:
//! - `grpo` (Markovian RL): the episode outcome `R`, group-normalised over the
//!   rollouts of the same prompt, broadcast to every attempt token;
//! - `barl`: `q = R + V(k)` for the tokens of attempt `k`, with `V(k)` the
//!   Bayesian value over all `V^L` strings, whitened over the batch;
//! - `barl-prior`: the same over the `V` repeated strings.

use std::time::Instant;

use barl_core::{
    ppo_clip_loss, token_advantages, AdvEstimator, AdvantageBatch, AdvantageOptions, Whiten,
};
use barl_model::{log_softmax_last, TinyGpt};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::config::{BarlBaseline, BranchWorld, Method, SyntheticConfig};
use super::rollout::{
    branch_picks, probe_probs, sample_branches, sample_episodes, Decoding, Episodes,
};
use super::task::{hypotheses, Prior, TaskConfig};
use super::values::{episode_values, prompt_dependence, switch_rate, Credence, QRule};
use crate::optim::AdamW;
use crate::TrainError;

/// Metrics of one training step (names as common RL trainers print them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// Step number, 1-based.
    pub step: usize,
    /// `critic/score/mean`: mean episode outcome of the training rollouts.
    pub score_mean: f64,
    /// `critic/advantages/mean`.
    pub adv_mean: f64,
    /// `critic/advantages/max`.
    pub adv_max: f64,
    /// `critic/advantages/min`.
    pub adv_min: f64,
    /// `response_length/mean`: attempts per episode.
    pub attempts_mean: f64,
    /// `actor/pg_loss` (last mini-batch).
    pub pg_loss: f64,
    /// `actor/pg_clipfrac`.
    pub pg_clipfrac: f64,
    /// `actor/ppo_kl`.
    pub ppo_kl: f64,
    /// `actor/entropy` of the attempt tokens.
    pub entropy: f64,
    /// `actor/grad_norm` before clipping.
    pub grad_norm: f64,
    /// `barl/bayes_value/mean` over the steps of all episodes (BARL only).
    pub bayes_value_mean: Option<f64>,
    /// `barl/branch/count`: branch rollouts trained on this step.
    pub branch_count: usize,
    /// `barl/branch/score`: their mean outcome in their worlds (none: no branch).
    pub branch_score_mean: Option<f64>,
    /// `timing_s/gen`.
    pub time_gen: f64,
    /// `timing_s/probe`.
    pub time_probe: f64,
    /// `timing_s/update`.
    pub time_update: f64,
}

/// Success rates measured at one evaluation point.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    /// Training steps done when measured.
    pub step: usize,
    /// Greedy episodes (one per prompt) that succeeded, training prompts.
    pub train_success_greedy: f64,
    /// Sampled episodes that succeeded, training prompts.
    pub train_success: f64,
    /// Attempts used by sampled episodes, training prompts.
    pub train_attempts: f64,
    /// Greedy success on the test prompts (`None` without test prompts).
    pub test_success_greedy: Option<f64>,
    /// Sampled success on the test prompts.
    pub test_success: Option<f64>,
    /// Attempts used by sampled episodes on the test prompts.
    pub test_attempts: Option<f64>,
    /// [`switch_rate`] of the sampled test episodes (`None` if none made a
    /// second attempt).
    pub test_switch_rate: Option<f64>,
    /// How much the first attempt depends on the prompt, over the training
    /// prompts (see [`first_attempt_dependence`]).
    pub first_attempt_dependence: Option<f64>,
}

/// The record of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Method trained.
    pub method: Method,
    /// Seed of weights, rollouts and evaluation.
    pub seed: u64,
    /// One entry per step.
    pub steps: Vec<StepMetrics>,
    /// One entry per evaluation point, step 0 first.
    pub evals: Vec<EvalMetrics>,
    /// The final policy's greedy episode on each train then test prompt, as
    /// text: `"1: 000- 111+"` (attempts, `+` rewarded, `-` not).
    pub greedy_transcripts: Vec<String>,
}

/// One episode as text, e.g. `"2: 000- 111- 222+"`.
pub fn transcript(task: &TaskConfig, episodes: &Episodes, e: usize) -> String {
    let mut s = format!("{}:", episodes.prompts[e]);
    for k in 0..episodes.n_attempts[e] {
        s.push(' ');
        for &a in episodes.attempt(task, e, k) {
            s.push_str(&a.to_string());
        }
        let fb = episodes.tokens[e][task.attempt_pos(k, task.attempt_len)];
        s.push(if fb == task.success_token() { '+' } else { '-' });
    }
    s
}

/// What one evaluation measures on a set of prompts.
struct PromptEval {
    /// The greedy episodes, one per prompt.
    greedy_episodes: Episodes,
    greedy: f64,
    sampled: f64,
    attempts: f64,
    switch_rate: Option<f64>,
}

/// Evaluates `policy` on `prompts`: one greedy episode per prompt and
/// `episodes` sampled ones.
fn evaluate_prompts(
    policy: &TinyGpt,
    task: &TaskConfig,
    prompts: &[u32],
    episodes: usize,
    rng: &mut ChaCha8Rng,
) -> Result<PromptEval, TrainError> {
    let greedy = sample_episodes(policy, task, prompts, Decoding::Greedy, rng)?;
    let many: Vec<u32> = prompts
        .iter()
        .flat_map(|&c| std::iter::repeat_n(c, episodes))
        .collect();
    let sampled = sample_episodes(
        policy,
        task,
        &many,
        Decoding::Sample { temperature: 1.0 },
        rng,
    )?;
    let rate = |ep: &Episodes| ep.success.iter().filter(|&&s| s).count() as f64 / ep.len() as f64;
    Ok(PromptEval {
        greedy: rate(&greedy),
        greedy_episodes: greedy,
        sampled: rate(&sampled),
        attempts: sampled.n_attempts.iter().sum::<usize>() as f64 / sampled.len() as f64,
        switch_rate: switch_rate(task, &sampled),
    })
}

/// [`prompt_dependence`] of the policy's exact first-attempt distributions
/// over all `V^L` strings on the prompts of `episodes` (only their step 0, the
/// prompt alone, is read); `None` if the strings are too many to list.
fn first_attempt_dependence(
    policy: &TinyGpt,
    task: &TaskConfig,
    episodes: &Episodes,
) -> Result<Option<f64>, TrainError> {
    let Ok(all) = hypotheses(task, Prior::None) else {
        return Ok(None);
    };
    let probs = probe_probs(policy, task, episodes, &all)?;
    let first: Vec<Vec<f32>> = probs.into_iter().map(|steps| steps[0].clone()).collect();
    Ok(prompt_dependence(&first))
}

fn evaluate(
    policy: &TinyGpt,
    cfg: &SyntheticConfig,
    step: usize,
    rng: &mut ChaCha8Rng,
) -> Result<EvalMetrics, TrainError> {
    let task = &cfg.task;
    let train = evaluate_prompts(policy, task, &task.train_prompts, cfg.eval_episodes, rng)?;
    let mut out = EvalMetrics {
        step,
        train_success_greedy: train.greedy,
        train_success: train.sampled,
        train_attempts: train.attempts,
        first_attempt_dependence: first_attempt_dependence(policy, task, &train.greedy_episodes)?,
        ..Default::default()
    };
    if !task.test_prompts.is_empty() {
        let test = evaluate_prompts(policy, task, &task.test_prompts, cfg.eval_episodes, rng)?;
        out.test_success_greedy = Some(test.greedy);
        out.test_success = Some(test.sampled);
        out.test_attempts = Some(test.attempts);
        out.test_switch_rate = test.switch_rate;
    }
    Ok(out)
}

/// `out[e][k][i]` = credence `c_i(k)` of hypothesis `i` before attempt `k` of
/// episode `e`, from the source `which` names (unnormalised: the belief update
/// normalises).
pub fn credence_table(
    which: Credence,
    policy: &TinyGpt,
    initial: &TinyGpt,
    task: &TaskConfig,
    episodes: &Episodes,
    hyps: &[Vec<u32>],
) -> Result<Vec<Vec<Vec<f32>>>, TrainError> {
    Ok(match which {
        Credence::Policy => probe_probs(policy, task, episodes, hyps)?,
        Credence::Initial => probe_probs(initial, task, episodes, hyps)?,
        Credence::Uniform => episodes
            .n_attempts
            .iter()
            .map(|&n| vec![vec![1.0; hyps.len()]; n])
            .collect(),
    })
}

/// Token advantages of a rollout batch, one vector per episode covering its
/// `n_attempts * L` attempt tokens; and the mean Bayesian value (BARL only).
/// `initial` is the frozen initial policy (read for `Credence::Initial`).
pub fn advantages(
    policy: &TinyGpt,
    initial: &TinyGpt,
    cfg: &SyntheticConfig,
    method: Method,
    episodes: &Episodes,
) -> Result<(Vec<Vec<f32>>, Option<f64>), TrainError> {
    let task = &cfg.task;
    let l = task.attempt_len;
    let rewards = episodes.rewards();
    let groups: Vec<usize> = episodes.prompts.iter().map(|&c| c as usize).collect();
    // A branch's copied history is not its own action: only its sampled tokens
    // (from attempt `start`) train; token t of the episode is in step t / L.
    let step_of_token: Vec<Vec<usize>> = (0..episodes.len())
        .map(|e| {
            (episodes.start[e] * l..episodes.n_attempts[e] * l)
                .map(|t| t / l)
                .collect()
        })
        .collect();
    let opts = AdvantageOptions {
        eps: 1e-6,
        grpo_norm_by_std: cfg.grpo_norm_by_std,
        whiten: match cfg.barl_baseline {
            BarlBaseline::Batch => Whiten::Batch,
            BarlBaseline::Prompt => Whiten::Group,
        },
    };
    let (estimator, values, mean_v) = match method.prior() {
        None => (AdvEstimator::Grpo, Vec::new(), None),
        Some(prior) => {
            let hyps = hypotheses(task, prior)?;
            let credence = credence_table(cfg.credence, policy, initial, task, episodes, &hyps)?;
            let rule = QRule {
                discount: cfg.q_discount,
                attempt_cost: cfg.attempt_cost,
            };
            let values = (0..episodes.len())
                .map(|e| episode_values(task, episodes, e, &hyps, &credence[e], cfg.beta, rule))
                .collect::<Result<Vec<_>, _>>()?;
            let own: Vec<f32> = values
                .iter()
                .zip(&episodes.start)
                .flat_map(|(v, &k0)| v[k0..].iter().copied())
                .collect();
            let mean_v = own.iter().map(|&v| v as f64).sum::<f64>() / own.len().max(1) as f64;
            (AdvEstimator::Barl, values, Some(mean_v))
        }
    };
    let batch = AdvantageBatch {
        rewards: &rewards,
        groups: &groups,
        step_of_token: &step_of_token,
        values: &values,
    };
    let adv = token_advantages(estimator, &batch, &opts)?
        .into_iter()
        .zip(&episodes.start)
        .map(|(a, &k0)| {
            let mut full = vec![0.0; k0 * l];
            full.extend(a);
            full
        })
        .collect();
    Ok((adv, mean_v))
}

/// Log-probs `(B, T*L)` and entropies of the attempt tokens of `rows` under
/// `model` (tracked if `model` is).
fn attempt_logp(
    model: &TinyGpt,
    task: &TaskConfig,
    episodes: &Episodes,
    rows: &[usize],
) -> Result<(Tensor, Tensor), TrainError> {
    let s = task.seq_len();
    let (t, l) = (task.max_attempts, task.attempt_len);
    let dev = Device::Cpu;
    let input: Vec<u32> = rows
        .iter()
        .flat_map(|&e| episodes.tokens[e][..s - 1].iter().copied())
        .collect();
    let input = Tensor::from_vec(input, (rows.len(), s - 1), &dev)?;
    let (logits, _) = model.forward(&input, None)?;
    let lsm = log_softmax_last(&logits)?;
    // Logits at position p - 1 predict the token at p.
    let pos: Vec<u32> = (0..t)
        .flat_map(|k| (0..l).map(move |j| (task.attempt_pos(k, j) - 1) as u32))
        .collect();
    let sel = lsm.index_select(&Tensor::from_vec(pos, t * l, &dev)?, 1)?; // (B, T*L, V)
    let targets: Vec<u32> = rows
        .iter()
        .flat_map(|&e| {
            (0..t * l).map(move |i| {
                let (k, j) = (i / l, i % l);
                if k < episodes.n_attempts[e] {
                    episodes.tokens[e][task.attempt_pos(k, j)]
                } else {
                    0
                }
            })
        })
        .collect();
    let targets = Tensor::from_vec(targets, (rows.len(), t * l, 1), &dev)?;
    let logp = sel.gather(&targets, 2)?.squeeze(2)?;
    let entropy = (sel.exp()? * &sel)?.sum(2)?.neg()?;
    Ok((logp, entropy))
}

/// A `(rows, T*L)` tensor from per-episode vectors (zero-padded).
fn padded(values: &[&[f32]], width: usize) -> Result<Tensor, TrainError> {
    let mut flat = Vec::with_capacity(values.len() * width);
    for v in values {
        flat.extend_from_slice(&v[..v.len().min(width)]);
        flat.resize(flat.len() + width - v.len().min(width), 0.0);
    }
    Ok(Tensor::from_vec(flat, (values.len(), width), &Device::Cpu)?)
}

/// Trains one policy with `method` from `seed`; `on_step` sees every step.
/// The initial weights and rollout randomness depend on the seed only, so the
/// methods start from the same policy.
pub fn train_one(
    cfg: &SyntheticConfig,
    method: Method,
    seed: u64,
    on_step: &mut dyn FnMut(&StepMetrics),
) -> Result<RunResult, TrainError> {
    cfg.validate()?;
    let task = &cfg.task;
    let model = TinyGpt::new(&cfg.model_config(), seed, &Device::Cpu)?;
    // A second copy from the same seed: the optimiser never touches it.
    let initial = TinyGpt::new(&cfg.model_config(), seed, &Device::Cpu)?.detached();
    let mut opt = AdamW::new(model.vars().to_vec(), cfg.optim.clone())?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 1);
    // Evaluation draws from its own stream so eval frequency never changes training.
    let mut eval_rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 2);
    // Branches too, so that turning them on leaves the true rollouts' draws alone.
    let mut branch_rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 3);
    let width = task.max_attempts * task.attempt_len;
    let prompts: Vec<u32> = task
        .train_prompts
        .iter()
        .flat_map(|&c| std::iter::repeat_n(c, cfg.n_samples_per_prompt))
        .collect();
    let mut result = RunResult {
        method,
        seed,
        steps: Vec::with_capacity(cfg.steps),
        evals: vec![evaluate(&model.detached(), cfg, 0, &mut eval_rng)?],
        greedy_transcripts: Vec::new(),
    };
    for step in 1..=cfg.steps {
        let policy = model.detached();
        let t0 = Instant::now();
        let mut episodes = sample_episodes(
            &policy,
            task,
            &prompts,
            Decoding::Sample {
                temperature: cfg.temperature,
            },
            &mut rng,
        )?;
        let score_mean = episodes.success_rate();
        let attempts_mean =
            episodes.n_attempts.iter().sum::<usize>() as f64 / episodes.len() as f64;
        let (mut branch_count, mut branch_score_mean) = (0, None);
        if let (Some(prior), true) = (method.prior(), cfg.branches > 0) {
            let hyps = hypotheses(task, prior)?;
            let belief = match cfg.branch_world {
                BranchWorld::Belief => Some(probe_probs(&policy, task, &episodes, &hyps)?),
                BranchWorld::Uniform => None,
            };
            let picks = branch_picks(
                task,
                &episodes,
                &hyps,
                cfg.branches,
                belief.as_deref(),
                &mut branch_rng,
            );
            let branches = sample_branches(
                &policy,
                task,
                &episodes,
                &picks,
                Decoding::Sample {
                    temperature: cfg.temperature,
                },
                &mut branch_rng,
            )?;
            branch_count = branches.len();
            if !branches.is_empty() {
                branch_score_mean = Some(branches.success_rate());
            }
            episodes.extend(branches);
        }
        let t1 = Instant::now();
        let (adv, bayes_value_mean) = advantages(&policy, &initial, cfg, method, &episodes)?;
        let t2 = Instant::now();
        let all_adv: Vec<f32> = adv.iter().flatten().copied().collect();
        let mut m = StepMetrics {
            step,
            score_mean,
            adv_mean: all_adv.iter().map(|&a| a as f64).sum::<f64>() / all_adv.len().max(1) as f64,
            adv_max: all_adv.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64,
            adv_min: all_adv.iter().fold(f32::INFINITY, |a, &b| a.min(b)) as f64,
            attempts_mean,
            bayes_value_mean,
            branch_count,
            branch_score_mean,
            ..Default::default()
        };
        let mut order: Vec<usize> = (0..episodes.len()).collect();
        for _ in 0..cfg.ppo_epochs {
            order.shuffle(&mut rng);
            let parts = cfg.mini_batches.min(order.len());
            let size = order.len().div_ceil(parts);
            for rows in order.chunks(size) {
                let mask_rows: Vec<Vec<f32>> = rows
                    .iter()
                    .map(|&e| {
                        let l = task.attempt_len;
                        let mut m = vec![0.0; episodes.n_attempts[e] * l];
                        m[episodes.start[e] * l..].fill(1.0);
                        m
                    })
                    .collect();
                let mask = padded(
                    &mask_rows.iter().map(Vec::as_slice).collect::<Vec<_>>(),
                    width,
                )?;
                let old = padded(
                    &rows
                        .iter()
                        .map(|&e| episodes.logp[e].as_slice())
                        .collect::<Vec<_>>(),
                    width,
                )?;
                let a = padded(
                    &rows.iter().map(|&e| adv[e].as_slice()).collect::<Vec<_>>(),
                    width,
                )?;
                let (logp, entropy) = attempt_logp(&model, task, &episodes, rows)?;
                let out = ppo_clip_loss(
                    &logp,
                    &old,
                    &a,
                    &mask,
                    cfg.clip_ratio,
                    cfg.clip_ratio,
                    cfg.loss_agg_mode,
                )?;
                let grads = out.loss.backward()?;
                m.grad_norm = opt.step(&grads)?;
                m.pg_loss = out.loss.to_scalar::<f32>()? as f64;
                m.pg_clipfrac = out.clip_frac as f64;
                m.ppo_kl = out.approx_kl as f64;
                let n_tok = mask.sum_all()?.to_scalar::<f32>()?.max(1.0);
                m.entropy =
                    ((entropy.detach() * &mask)?.sum_all()?.to_scalar::<f32>()? / n_tok) as f64;
            }
        }
        let t3 = Instant::now();
        m.time_gen = (t1 - t0).as_secs_f64();
        m.time_probe = (t2 - t1).as_secs_f64();
        m.time_update = (t3 - t2).as_secs_f64();
        on_step(&m);
        result.steps.push(m);
        if step % cfg.eval_every == 0 || step == cfg.steps {
            result
                .evals
                .push(evaluate(&model.detached(), cfg, step, &mut eval_rng)?);
        }
    }
    let all: Vec<u32> = task
        .train_prompts
        .iter()
        .chain(&task.test_prompts)
        .copied()
        .collect();
    let greedy = sample_episodes(
        &model.detached(),
        task,
        &all,
        Decoding::Greedy,
        &mut eval_rng,
    )?;
    result.greedy_transcripts = (0..greedy.len())
        .map(|e| transcript(task, &greedy, e))
        .collect();
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each credence option reads its own source: the current policy's probes,
    /// the frozen initial policy's, or ones.
    #[test]
    fn credence_options_read_their_source() {
        let cfg = SyntheticConfig::default();
        let task = &cfg.task;
        let mut mc = cfg.model_config();
        mc.d_model = 16;
        mc.d_ff = 32;
        let policy = TinyGpt::new(&mc, 1, &Device::Cpu).unwrap().detached();
        let initial = TinyGpt::new(&mc, 2, &Device::Cpu).unwrap().detached();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let d = Decoding::Sample { temperature: 1.0 };
        let ep = sample_episodes(&policy, task, &[0, 1, 0, 1], d, &mut rng).unwrap();
        let hyps = hypotheses(task, Prior::Repeated).unwrap();
        let table = |c| credence_table(c, &policy, &initial, task, &ep, &hyps).unwrap();
        let from_policy = probe_probs(&policy, task, &ep, &hyps).unwrap();
        let from_initial = probe_probs(&initial, task, &ep, &hyps).unwrap();
        assert_ne!(from_policy, from_initial);
        assert_eq!(table(Credence::Policy), from_policy);
        assert_eq!(table(Credence::Initial), from_initial);
        let uniform = table(Credence::Uniform);
        for (e, steps) in uniform.iter().enumerate() {
            assert_eq!(steps.len(), ep.n_attempts[e]);
            assert!(steps.iter().flatten().all(|&c| c == 1.0));
        }
    }
    /// Branch picks: only successful episodes with an attempt to spare, at most
    /// `per_prompt` per prompt, each with a world it has not tried.
    #[test]
    fn branch_picks_follow_the_rules() {
        let task = TaskConfig::default();
        let ep = Episodes::from_strings(
            &task,
            &[
                (0, &["000"]),
                (0, &["111", "000"]),
                (0, &["000"]),               // over the cap of 2
                (1, &["000", "222", "111"]), // no attempt left
                (1, &["222", "000", "000"]), // failed
            ],
        );
        let hyps = hypotheses(&task, Prior::Repeated).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for _ in 0..20 {
            let picks = branch_picks(&task, &ep, &hyps, 2, None, &mut rng);
            let parents: Vec<usize> = picks.iter().map(|p| p.0).collect();
            assert_eq!(parents, vec![0, 1]);
            assert!(picks[0].1 == [1, 1, 1] || picks[0].1 == [2, 2, 2]);
            assert_eq!(picks[1].1, vec![2, 2, 2]);
        }
        // Drawn from the belief: episode 0 believes 111 not at all before its
        // (successful) attempt 0, so its world is always 222.
        let mut belief: Vec<Vec<Vec<f32>>> = ep
            .n_attempts
            .iter()
            .map(|&n| vec![vec![1.0; 3]; n])
            .collect();
        belief[0][0] = vec![0.9, 0.0, 0.1];
        for _ in 0..40 {
            let picks = branch_picks(&task, &ep, &hyps, 2, Some(&belief), &mut rng);
            assert_eq!(picks[0].1, vec![2, 2, 2]);
            assert_eq!(picks[1].1, vec![2, 2, 2]);
        }
        // With 111 and 222 believed equally, both worlds come up.
        belief[0][0] = vec![0.0, 0.5, 0.5];
        let worlds: std::collections::HashSet<Vec<u32>> = (0..40)
            .map(|_| {
                branch_picks(&task, &ep, &hyps, 2, Some(&belief), &mut rng)[0]
                    .1
                    .clone()
            })
            .collect();
        assert_eq!(worlds.len(), 2);
    }

    /// A branch's copied history gets no advantage; its own tokens do.
    #[test]
    fn branch_history_is_not_trained() {
        let cfg = SyntheticConfig {
            branches: 4,
            ..SyntheticConfig::default()
        };
        let task = &cfg.task;
        let mut mc = cfg.model_config();
        mc.d_model = 16;
        mc.d_ff = 32;
        let policy = TinyGpt::new(&mc, 1, &Device::Cpu).unwrap().detached();
        let d = Decoding::Sample { temperature: 1.0 };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let prompts: Vec<u32> = (0..240).map(|i| i % 2).collect();
        let mut ep = sample_episodes(&policy, task, &prompts, d, &mut rng).unwrap();
        let hyps = hypotheses(task, Prior::Repeated).unwrap();
        let picks = branch_picks(task, &ep, &hyps, 4, None, &mut rng);
        assert!(!picks.is_empty());
        let n_main = ep.len();
        ep.extend(sample_branches(&policy, task, &ep, &picks, d, &mut rng).unwrap());
        let (adv, _) = advantages(&policy, &policy, &cfg, Method::BarlPrior, &ep).unwrap();
        for (e, a) in adv.iter().enumerate().skip(n_main) {
            let own = ep.start[e] * task.attempt_len;
            assert_eq!(a.len(), ep.n_attempts[e] * task.attempt_len);
            assert!(a[..own].iter().all(|&x| x == 0.0));
            assert!(a[own..].iter().any(|&x| x != 0.0));
        }
    }
}
