//! One RL step on math problems: sample, grade, probe, advantages, PPO update.
//!
//! The three parts are separate functions so that a driver can time them
//! (`timing_s/gen|probe|update`) and tests can check each against `barl-core`:
//! - [`rollout`]: `n` completions per prompt from the engine, graded by the verifier;
//! - [`advantages`]: GRPO (group-normalised outcome), Progress (`q_t = R + p_*(K) - p_*(k)`)
//!   or BARL (`q_t = R + V(k)`), the last two whitened over the batch (spec sections 3, 7);
//! - [`ppo_update`]: PPO-clip over micro-batches with gradient accumulation, optional
//!   KL to a frozen reference, one AdamW step per train batch.

use barl_core::{
    aggregate_loss, chunk_step_of_tokens, kl_penalty, math_bayesian_values, ppo_clip_loss,
    progress_values, token_advantages, AdvEstimator, AdvantageBatch, AdvantageOptions, LossAggMode,
    Whiten,
};
use barl_math::extract::{extract_answer, ExtractOptions};
use barl_model::{
    sample, score, score_no_grad, CausalLm, Completion, FinishReason, SampleConfig, Tokenizer,
};
use candle_core::{Tensor, Var};

use super::config::{OldLogprobs, TrainConfig};
use super::hypotheses::build_hypotheses;
use super::probe::{probe_ids, probe_probs_shared};
use crate::optim::AdamW;
use crate::TrainError;

/// A prompt of the batch: its token ids and gold answer.
#[derive(Clone, Debug)]
pub struct PromptItem {
    pub id: String,
    pub ids: Vec<u32>,
    pub gold: String,
}

/// The sampled completions of one step, `n` per prompt, prompt-major.
#[derive(Clone, Debug, Default)]
pub struct Rollouts {
    /// Index of the completion's prompt in the step's batch.
    pub group: Vec<usize>,
    pub prompt: Vec<Vec<u32>>,
    pub response: Vec<Vec<u32>>,
    /// `log pi_old(token)` at temperature 1, from the sampler.
    pub old_logp: Vec<Vec<f32>>,
    pub text: Vec<String>,
    /// Outcome reward `R(c)` in {0, 1}.
    pub reward: Vec<f32>,
    /// The response hit `max_response_len`.
    pub truncated: Vec<bool>,
}

impl Rollouts {
    pub fn len(&self) -> usize {
        self.response.len()
    }

    pub fn is_empty(&self) -> bool {
        self.response.is_empty()
    }

    /// Response tokens in the batch.
    pub fn num_tokens(&self) -> usize {
        self.response.iter().map(Vec::len).sum()
    }
}

/// Samples `n_samples_per_prompt` completions of each prompt and grades them.
///
/// Completion `j` of the step draws from sampler stream `first_stream + j`; the
/// caller passes `first_stream = step * rollout_batch_size * n` so that each step
/// (and a resumed run) sees the same randomness.
pub fn rollout<M: CausalLm + ?Sized>(
    model: &M,
    tokenizer: &Tokenizer,
    prompts: &[PromptItem],
    cfg: &TrainConfig,
    stop_tokens: &[u32],
    first_stream: u64,
    grade: &dyn Fn(&str, &str) -> bool,
) -> Result<Rollouts, TrainError> {
    let n = cfg.n_samples_per_prompt;
    let ids: Vec<&[u32]> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.ids.as_slice(), n))
        .collect();
    let sc = SampleConfig {
        max_new_tokens: cfg.max_response_len,
        temperature: cfg.temperature,
        top_p: cfg.top_p,
        stop_tokens: stop_tokens.to_vec(),
        seed: cfg.seed,
        first_stream,
        ..SampleConfig::default()
    };
    let completions = sample(model, &ids, &sc)?;
    grade_completions(tokenizer, prompts, completions, cfg, grade)
}

/// Rollouts of `completions` (`n_samples_per_prompt` per prompt,
/// prompt-major, from any sampler): decoded, answers extracted and graded.
pub fn grade_completions(
    tokenizer: &Tokenizer,
    prompts: &[PromptItem],
    completions: Vec<Completion>,
    cfg: &TrainConfig,
    grade: &dyn Fn(&str, &str) -> bool,
) -> Result<Rollouts, TrainError> {
    let n = cfg.n_samples_per_prompt;
    let mut out = Rollouts::default();
    for (j, c) in completions.into_iter().enumerate() {
        let p = &prompts[j / n];
        let text = tokenizer.decode(&c.tokens, true)?;
        let truncated = c.finish == FinishReason::Length;
        let opts = ExtractOptions::default().for_response(truncated, cfg.credit_truncated);
        let answer = extract_answer(&text, &opts);
        let ok = answer.as_deref().is_some_and(|a| grade(a, &p.gold));
        out.group.push(j / n);
        out.prompt.push(p.ids.clone());
        out.truncated.push(truncated);
        out.response.push(c.tokens);
        out.old_logp.push(c.logprobs);
        out.text.push(text);
        out.reward.push(if ok { 1.0 } else { 0.0 });
    }
    Ok(out)
}

/// Advantages of a step and what the probes saw.
#[derive(Clone, Debug, Default)]
pub struct Signal {
    /// One advantage per response token.
    pub advantages: Vec<Vec<f32>>,
    /// Progress/BARL: `probs[j][i][k] = p_i(k)` of completion `j` (GRPO: empty).
    pub probs: Vec<Vec<Vec<f32>>>,
    /// Progress/BARL: the row of `probs[j]` that is the truth.
    pub truth: Vec<usize>,
    /// Progress/BARL: the step values `V(k)` of each completion.
    pub values: Vec<Vec<f32>>,
    /// Hypotheses per prompt (BARL; 1 for Progress).
    pub num_hypotheses: Vec<usize>,
}

impl Signal {
    /// Mean of `V(k)` over all steps of all completions (None for GRPO).
    pub fn mean_value(&self) -> Option<f64> {
        let all: Vec<f64> = self.values.iter().flatten().map(|&v| v as f64).collect();
        (!all.is_empty()).then(|| all.iter().sum::<f64>() / all.len() as f64)
    }
}

/// The token advantages of `r` under the configured estimator
/// ([`token_advantages`]: GRPO's group-normalised outcome reward on every
/// token; Progress's `q_t = R + p_*(K) - p_*(k)` ([`progress_values`]) or BARL's
/// `q_t = R + V(k)` ([`math_bayesian_values`] over the prompt's hypotheses),
/// each token in step `k` ([`chunk_step_of_tokens`]), whitened over the batch).
///
/// Hypotheses are built per prompt from its `n` completions (spec section 4); the
/// answer probes run on the inference path through one KV cache per completion.
pub fn advantages<M: CausalLm + ?Sized>(
    model: &M,
    tokenizer: &Tokenizer,
    prompts: &[PromptItem],
    r: &Rollouts,
    cfg: &TrainConfig,
    equal: &dyn Fn(&str, &str) -> bool,
) -> Result<Signal, TrainError> {
    let steps = r
        .response
        .iter()
        .map(|x| chunk_step_of_tokens(x.len(), cfg.step_size))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sig = Signal::default();
    // GRPO needs only the rewards; Progress and BARL probe every completion.
    if cfg.adv_estimator != AdvEstimator::Grpo {
        sig.probs = vec![Vec::new(); r.len()];
        sig.truth = vec![0; r.len()];
        sig.values = vec![Vec::new(); r.len()];
        for (g, p) in prompts.iter().enumerate() {
            let members: Vec<usize> = (0..r.len()).filter(|&j| r.group[j] == g).collect();
            let (answers, truth) = if cfg.adv_estimator == AdvEstimator::Barl {
                let texts: Vec<String> = members.iter().map(|&j| r.text[j].clone()).collect();
                let h = build_hypotheses(
                    &texts,
                    &p.gold,
                    equal,
                    cfg.max_hypothesis_len,
                    cfg.max_hypotheses,
                );
                (h.answers, h.truth)
            } else {
                (vec![p.gold.clone()], 0)
            };
            let (suffix, hyp_ids) = probe_ids(tokenizer, &cfg.probe_suffix, &answers)?;
            sig.num_hypotheses.push(answers.len());
            let responses: Vec<&[u32]> =
                members.iter().map(|&j| r.response[j].as_slice()).collect();
            let all_probs =
                probe_probs_shared(model, &p.ids, &responses, cfg.step_size, &suffix, &hyp_ids)?;
            for (&j, probs) in members.iter().zip(all_probs) {
                sig.values[j] = if cfg.adv_estimator == AdvEstimator::Barl {
                    math_bayesian_values(&probs, &probs[truth], cfg.beta)?
                } else {
                    progress_values(&probs[truth])
                };
                sig.probs[j] = probs;
                sig.truth[j] = truth;
            }
        }
    }
    let batch = AdvantageBatch {
        rewards: &r.reward,
        groups: &r.group,
        step_of_token: &steps,
        values: &sig.values,
    };
    let opts = AdvantageOptions {
        eps: cfg.adv_eps,
        grpo_norm_by_std: true,
        whiten: Whiten::Batch,
    };
    sig.advantages = token_advantages(cfg.adv_estimator, &batch, &opts)?;
    Ok(sig)
}

/// What one PPO update measured (means over micro-batches, token-weighted).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpdateStats {
    pub pg_loss: f64,
    pub pg_clipfrac: f64,
    pub ppo_kl: f64,
    pub entropy: f64,
    /// Mean KL estimate to the reference (when `kl_coef > 0`).
    pub kl: f64,
    /// Global gradient norm before clipping, mean over optimizer steps taken.
    pub grad_norm: f64,
    /// Optimizer steps taken and skipped (non-finite loss or gradient).
    pub optimizer_steps: usize,
    pub skipped: usize,
    /// `server-tis`: the token mean of the truncated importance weight, and
    /// the gap `|log p_barl - log p_server|` the update's forward saw.
    pub tis_weight: Option<f64>,
    pub server_diff: Option<LogprobDiff>,
}

/// How far a sampler's log-probs of the sampled tokens are from barl's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogprobDiff {
    /// Mean of `|log p_sampler - log p_barl|` over all response tokens.
    pub mean: f64,
    pub max: f64,
}

/// PPO-clip on the rollouts with their token advantages.
///
/// The batch is cut into train batches of `train_batch_size` completions (in
/// order), each into micro-batches of `micro_batch_size`; gradients of the
/// micro-batches are summed with weights that make the sum equal the train
/// batch's loss under `loss_agg_mode`, then one AdamW step is taken (skipped,
/// with nothing changed, if the loss or the gradient norm is not finite). This
/// repeats `ppo_epochs` times. `ref_logp`, when given, holds the frozen
/// reference's log-probs for the KL term `kl_coef * KL_est`.
///
/// With `rollout.old_logprobs = "server-tis"` (truncated importance sampling)
/// `r.old_logp` holds the sampler's log-probs; the old policy of the ratio is
/// the forward's own, detached, and token `t`'s advantage is scaled by
/// `w_t = min(exp(log p(t) - log p_server(t)), tis_cap)`: for
/// `w >= 0`, `-min(r A w, clip(r) A w) = w * -min(r A, clip(r) A)`, so this is
/// the weighted PPO term exactly.
pub fn ppo_update<M: CausalLm + ?Sized>(
    model: &M,
    opt: &mut AdamW,
    vars: &[Var],
    r: &Rollouts,
    adv: &[Vec<f32>],
    ref_logp: Option<&[Vec<f32>]>,
    cfg: &TrainConfig,
) -> Result<UpdateStats, TrainError> {
    let mut st = UpdateStats::default();
    let (mut tok_total, mut norm_sum) = (0f64, 0f64);
    let tis = cfg.rollout.old_logprobs == OldLogprobs::ServerTis;
    let (mut w_sum, mut diff_sum, mut diff_max) = (0f64, 0f64, 0f64);
    let order: Vec<usize> = (0..r.len()).collect();
    for _ in 0..cfg.ppo_epochs {
        for batch in order.chunks(cfg.train_batch_size) {
            let seqs = batch.len() as f64;
            let toks: f64 = batch.iter().map(|&j| r.response[j].len() as f64).sum();
            let mut grads: Vec<Option<Tensor>> = vec![None; vars.len()];
            let mut finite = true;
            for micro in batch.chunks(cfg.micro_batch_size) {
                let m_toks: f64 = micro.iter().map(|&j| r.response[j].len() as f64).sum();
                if m_toks == 0.0 {
                    continue;
                }
                // Weight of this micro-batch's mean in the train batch's mean.
                let weight = match cfg.loss_agg_mode {
                    LossAggMode::TokenMean => m_toks / toks,
                    _ => micro.len() as f64 / seqs,
                };
                let pairs: Vec<(&[u32], &[u32])> = micro
                    .iter()
                    .map(|&j| (r.prompt[j].as_slice(), r.response[j].as_slice()))
                    .collect();
                let s = score(model, &pairs, true)?;
                let dev = s.logprobs.device().clone();
                let (b, l) = s.logprobs.dims2()?;
                let pad = |rows: &mut dyn Iterator<Item = &Vec<f32>>| -> Vec<f32> {
                    rows.flat_map(|row| {
                        let mut v = row.clone();
                        v.resize(l, 0.0);
                        v
                    })
                    .collect()
                };
                let old = Tensor::from_vec(
                    pad(&mut micro.iter().map(|&j| &r.old_logp[j])),
                    (b, l),
                    &dev,
                )?;
                let a = Tensor::from_vec(pad(&mut micro.iter().map(|&j| &adv[j])), (b, l), &dev)?;
                let (old, a) = if tis {
                    // `old` holds the server's log-probs here.
                    let cur = s.logprobs.detach();
                    let gap = (&cur - &old)?;
                    let w = gap.exp()?.clamp(0.0, cfg.rollout.tis_cap)?;
                    w_sum += (&w * &s.mask)?.sum_all()?.to_scalar::<f32>()? as f64;
                    let abs = (gap.abs()? * &s.mask)?;
                    diff_sum += abs.sum_all()?.to_scalar::<f32>()? as f64;
                    diff_max = diff_max.max(abs.max_all()?.to_scalar::<f32>()? as f64);
                    (cur, (a * w)?)
                } else {
                    (old, a)
                };
                let out = ppo_clip_loss(
                    &s.logprobs,
                    &old,
                    &a,
                    &s.mask,
                    cfg.clip_ratio_low,
                    cfg.clip_ratio_high,
                    cfg.loss_agg_mode,
                )?;
                let pg = out.loss.to_scalar::<f32>()?;
                let mut loss = out.loss;
                if let (Some(rl), true) = (ref_logp, cfg.kl_coef > 0.0) {
                    let rt =
                        Tensor::from_vec(pad(&mut micro.iter().map(|&j| &rl[j])), (b, l), &dev)?;
                    let kl = kl_penalty(&s.logprobs, &rt, cfg.kl_estimator)?;
                    let kl_loss = aggregate_loss(&kl, &s.mask, cfg.loss_agg_mode)?;
                    st.kl += kl_loss.to_scalar::<f32>()? as f64 * m_toks;
                    loss = (loss + (kl_loss * cfg.kl_coef)?)?;
                }
                let value = loss.to_scalar::<f32>()?;
                if !value.is_finite() {
                    finite = false;
                    break;
                }
                let ent = match &s.entropy {
                    Some(e) => e.mul(&s.mask)?.sum_all()?.to_scalar::<f32>()? as f64,
                    None => 0.0,
                };
                st.pg_loss += pg as f64 * m_toks;
                st.pg_clipfrac += out.clip_frac as f64 * m_toks;
                st.ppo_kl += out.approx_kl as f64 * m_toks;
                st.entropy += ent;
                tok_total += m_toks;
                let g = (loss * weight)?.backward()?;
                for (acc, var) in grads.iter_mut().zip(vars) {
                    if let Some(gv) = g.get(var.as_tensor()) {
                        let gv = gv.detach();
                        *acc = Some(match acc.take() {
                            Some(prev) => (prev + gv)?.detach(),
                            None => gv,
                        });
                    }
                }
            }
            if finite {
                let mut sq = 0f64;
                for g in grads.iter().flatten() {
                    sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
                }
                finite = sq.is_finite();
            }
            if !finite {
                st.skipped += 1;
                continue;
            }
            norm_sum += opt.step_grads(&grads)?;
            st.optimizer_steps += 1;
        }
    }
    if tis {
        let n = tok_total.max(1.0);
        st.tis_weight = Some(w_sum / n);
        st.server_diff = Some(LogprobDiff {
            mean: diff_sum / n,
            max: diff_max,
        });
    }
    if tok_total > 0.0 {
        st.pg_loss /= tok_total;
        st.pg_clipfrac /= tok_total;
        st.ppo_kl /= tok_total;
        st.entropy /= tok_total;
        st.kl /= tok_total;
    }
    if st.optimizer_steps > 0 {
        st.grad_norm = norm_sum / st.optimizer_steps as f64;
    }
    Ok(st)
}

/// The frozen reference's log-probs of every completion (no gradient).
pub fn reference_logprobs<M: CausalLm + ?Sized>(
    reference: &M,
    r: &Rollouts,
    micro_batch_size: usize,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let mut out = Vec::with_capacity(r.len());
    let idx: Vec<usize> = (0..r.len()).collect();
    for micro in idx.chunks(micro_batch_size.max(1)) {
        let pairs: Vec<(&[u32], &[u32])> = micro
            .iter()
            .map(|&j| (r.prompt[j].as_slice(), r.response[j].as_slice()))
            .collect();
        out.extend(score_no_grad(reference, &pairs)?);
    }
    Ok(out)
}

/// Fraction of responses that hit `max_response_len`.
pub fn clip_ratio(r: &Rollouts) -> f64 {
    if r.is_empty() {
        return 0.0;
    }
    r.truncated.iter().filter(|&&t| t).count() as f64 / r.len() as f64
}
