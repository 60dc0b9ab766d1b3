//! One RL step on a tiny model: advantages match the `barl-core` functions on the
//! same probe values, the update follows the advantage's sign, gradient
//! accumulation equals one big batch, a non-finite loss skips the step, and
//! the truncated importance weights of sampler log-probs scale the loss.

use barl_core::{
    chunk_step_of_tokens, math_bayesian_values, normalize_over_batch, progress_values,
    token_returns, AdvEstimator, LossAggMode,
};
use barl_model::testing::{byte_tokenizer, tiny_llama_config, tiny_llama_weights};
use barl_model::{score_no_grad, AnyModel, CausalLm, Tokenizer};
use barl_train::math::config::{OldLogprobs, TrainConfig};
use barl_train::math::step::{advantages, ppo_update, LogprobDiff, PromptItem, Rollouts};
use barl_train::optim::{AdamW, AdamWConfig};
use candle_core::{Device, Var};

fn model(seed: u64) -> AnyModel {
    AnyModel::from_weights(
        &tiny_llama_config(),
        &tiny_llama_weights(seed).unwrap(),
        &Device::Cpu,
    )
    .unwrap()
}

fn exact_equal(a: &str, b: &str) -> bool {
    a.trim() == b.trim()
}

/// Two prompts, two completions each; the first completion of each is right.
fn batch(tok: &Tokenizer) -> (Vec<PromptItem>, Rollouts) {
    let prompts = vec![
        PromptItem {
            id: "a".into(),
            ids: tok.encode("Q: 2+3?\nA:", true).unwrap(),
            gold: "5".into(),
        },
        PromptItem {
            id: "b".into(),
            ids: tok.encode("Q: 7+5?\nA:", true).unwrap(),
            gold: "12".into(),
        },
    ];
    let texts = [
        " 2 plus 3 is \\boxed{5}",
        " hmm \\boxed{6}",
        " seven and five make \\boxed{12}",
        " \\boxed{13} I think",
    ];
    let mut r = Rollouts::default();
    for (j, text) in texts.iter().enumerate() {
        let ids = tok.encode(text, false).unwrap();
        r.group.push(j / 2);
        r.prompt.push(prompts[j / 2].ids.clone());
        r.old_logp.push(vec![0.0; ids.len()]);
        r.response.push(ids);
        r.text.push(text.to_string());
        r.reward.push(if j % 2 == 0 { 1.0 } else { 0.0 });
        r.truncated.push(false);
    }
    (prompts, r)
}

fn cfg(est: AdvEstimator) -> TrainConfig {
    TrainConfig {
        adv_estimator: est,
        n_samples_per_prompt: 2,
        step_size: 5,
        beta: 1.0,
        ..TrainConfig::default()
    }
}

#[test]
fn grpo_advantages_are_the_group_normalised_rewards() {
    let tok = byte_tokenizer().unwrap();
    let m = model(1);
    let (prompts, r) = batch(&tok);
    let sig = advantages(
        &m,
        &tok,
        &prompts,
        &r,
        &cfg(AdvEstimator::Grpo),
        &exact_equal,
    )
    .unwrap();
    // Each group has rewards (1, 0): mean 0.5, sample std sqrt(0.5) = 0.70711,
    // so A = +-0.5 / 0.70711 = +-0.70711 on every token.
    for (j, adv) in sig.advantages.iter().enumerate() {
        assert_eq!(adv.len(), r.response[j].len());
        let want = if j % 2 == 0 {
            std::f32::consts::FRAC_1_SQRT_2
        } else {
            -std::f32::consts::FRAC_1_SQRT_2
        };
        assert!(adv.iter().all(|a| (a - want).abs() < 1e-5), "{j}: {adv:?}");
    }
    assert!(sig.probs.is_empty() && sig.mean_value().is_none());
}

#[test]
fn barl_and_progress_advantages_equal_the_core_functions_on_the_probe_values() {
    let tok = byte_tokenizer().unwrap();
    let m = model(2);
    let (prompts, r) = batch(&tok);
    for est in [AdvEstimator::Barl, AdvEstimator::Progress] {
        let c = cfg(est);
        let sig = advantages(&m, &tok, &prompts, &r, &c, &exact_equal).unwrap();
        assert_eq!(sig.probs.len(), r.len());
        let mut returns = Vec::new();
        for j in 0..r.len() {
            let probs = &sig.probs[j];
            let k = r.response[j].len().div_ceil(c.step_size);
            assert!(
                probs.iter().all(|row| row.len() == k + 1),
                "{est}: K + 1 columns"
            );
            let truth = &probs[sig.truth[j]];
            let values = match est {
                AdvEstimator::Barl => math_bayesian_values(probs, truth, c.beta).unwrap(),
                _ => progress_values(truth),
            };
            assert_eq!(values, sig.values[j]);
            let steps = chunk_step_of_tokens(r.response[j].len(), c.step_size).unwrap();
            returns.push(token_returns(r.reward[j], &values, &steps).unwrap());
        }
        let want = normalize_over_batch(&returns, c.adv_eps);
        assert_eq!(sig.advantages, want, "{est}");
        // BARL's hypotheses for prompt a: {5, 6} (truth 5 verified); prompt b:
        // {12, "13"}; Progress keeps the truth alone.
        let hyps = if est == AdvEstimator::Barl { 2 } else { 1 };
        assert_eq!(sig.num_hypotheses, vec![hyps, hyps], "{est}");
        // Probabilities are probabilities and the signal is not constant.
        assert!(sig
            .probs
            .iter()
            .flatten()
            .flatten()
            .all(|&p| p > 0.0 && p < 1.0));
        assert!(sig.advantages.iter().flatten().any(|&a| a.abs() > 0.1));
    }
}

/// The batch's first completion alone (its `old_logp` still to be set).
fn first_only(full: &Rollouts) -> Rollouts {
    let mut r = full.clone();
    r.group.truncate(1);
    r.prompt.truncate(1);
    r.response.truncate(1);
    r.text.truncate(1);
    r.reward.truncate(1);
    r.truncated.truncate(1);
    r
}

fn logp_sum(m: &AnyModel, r: &Rollouts, j: usize) -> f32 {
    score_no_grad(m, &[(&r.prompt[j], &r.response[j])]).unwrap()[0]
        .iter()
        .sum()
}

fn optimizer(m: &AnyModel, lr: f64) -> (AdamW, Vec<Var>) {
    let vars = m.vars();
    let opt = AdamW::new(
        vars.clone(),
        AdamWConfig {
            lr,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.0,
            grad_clip: 0.0,
        },
    )
    .unwrap();
    (opt, vars)
}

#[test]
fn the_update_raises_the_likelihood_of_positive_advantages_and_lowers_negative_ones() {
    let tok = byte_tokenizer().unwrap();
    let (_, full) = batch(&tok);
    for sign in [1.0f32, -1.0] {
        let m = model(3);
        // One completion; old log-probs from the model itself (on-policy).
        let mut r = first_only(&full);
        r.old_logp = score_no_grad(&m, &[(&r.prompt[0], &r.response[0])]).unwrap();
        let before = logp_sum(&m, &r, 0);
        let (mut opt, vars) = optimizer(&m, 1e-3);
        let adv = vec![vec![sign; r.response[0].len()]];
        let c = TrainConfig {
            train_batch_size: 1,
            micro_batch_size: 1,
            ..TrainConfig::default()
        };
        let st = ppo_update(&m, &mut opt, &vars, &r, &adv, None, &c).unwrap();
        assert_eq!((st.optimizer_steps, st.skipped), (1, 0));
        // On-policy the ratio is 1: loss = -mean(A) = -sign.
        assert!((st.pg_loss + sign as f64).abs() < 1e-4, "{}", st.pg_loss);
        let after = logp_sum(&m, &r, 0);
        assert!(
            (after - before) * sign > 0.0,
            "advantage {sign}: log-prob {before} -> {after}"
        );
    }
}

#[test]
fn accumulated_micro_batches_equal_one_batch() {
    let tok = byte_tokenizer().unwrap();
    let (_, mut r) = batch(&tok);
    let m0 = model(4);
    r.old_logp = r
        .prompt
        .iter()
        .zip(&r.response)
        .map(|(p, c)| score_no_grad(&m0, &[(p, c)]).unwrap().remove(0))
        .collect();
    let adv: Vec<Vec<f32>> = r
        .response
        .iter()
        .enumerate()
        .map(|(j, c)| vec![[0.9f32, -0.4, 0.3, -1.2][j]; c.len()])
        .collect();
    for mode in [LossAggMode::SeqMeanTokenMean, LossAggMode::TokenMean] {
        let mut weights = Vec::new();
        for micro in [4, 1] {
            let m = model(4);
            let (mut opt, vars) = optimizer(&m, 1e-2);
            let c = TrainConfig {
                train_batch_size: 4,
                micro_batch_size: micro,
                loss_agg_mode: mode,
                ..TrainConfig::default()
            };
            let st = ppo_update(&m, &mut opt, &vars, &r, &adv, None, &c).unwrap();
            assert_eq!(st.optimizer_steps, 1);
            weights.push(
                m.vars()
                    .iter()
                    .flat_map(|v| {
                        v.as_tensor()
                            .flatten_all()
                            .unwrap()
                            .to_vec1::<f32>()
                            .unwrap()
                    })
                    .collect::<Vec<f32>>(),
            );
        }
        let diff = weights[0]
            .iter()
            .zip(&weights[1])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        // Adam's first step is lr * g / (|g| + eps): tiny gradient differences
        // from summation order only show where |g| is ~0.
        assert!(diff < 1e-4, "{mode:?}: max weight difference {diff}");
    }
}

#[test]
fn a_non_finite_loss_skips_the_step_and_changes_nothing() {
    let tok = byte_tokenizer().unwrap();
    let (_, mut r) = batch(&tok);
    let m = model(5);
    r.old_logp = r.response.iter().map(|c| vec![0.0; c.len()]).collect();
    let before: Vec<f32> = m.vars()[0]
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let mut adv: Vec<Vec<f32>> = r.response.iter().map(|c| vec![1.0; c.len()]).collect();
    adv[2][0] = f32::NAN;
    let (mut opt, vars) = optimizer(&m, 1e-2);
    let c = TrainConfig {
        train_batch_size: 4,
        micro_batch_size: 2,
        ..TrainConfig::default()
    };
    let st = ppo_update(&m, &mut opt, &vars, &r, &adv, None, &c).unwrap();
    assert_eq!((st.optimizer_steps, st.skipped), (0, 1));
    assert_eq!(opt.step_count(), 0);
    let after: Vec<f32> = m.vars()[0]
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn server_log_probs_weight_each_token_by_the_truncated_ratio() {
    let tok = byte_tokenizer().unwrap();
    let (_, full) = batch(&tok);
    let r = first_only(&full);
    let c = TrainConfig {
        train_batch_size: 1,
        micro_batch_size: 1,
        ..TrainConfig::default()
    };
    let mut tis = c.clone();
    tis.rollout.old_logprobs = OldLogprobs::ServerTis;
    let adv = vec![vec![1.0; r.response[0].len()]];
    // The reference: old log-probs recomputed by the model (ratio 1, loss -A = -1).
    let m = model(5);
    let mine = score_no_grad(&m, &[(&r.prompt[0], &r.response[0])]).unwrap();
    let mut exact = r.clone();
    exact.old_logp = mine.clone();
    let (mut opt, vars) = optimizer(&m, 1e-3);
    let st = ppo_update(&m, &mut opt, &vars, &exact, &adv, None, &c).unwrap();
    assert!(st.tis_weight.is_none());
    let after_exact = logp_sum(&m, &exact, 0);
    // Sampler log-probs shifted by ln s: w = min(1 / s, cap = 2) on every
    // token, so loss = -w; s = 1 is the exact update again.
    let ln = |x: f32| x.ln();
    for (shift, w) in [(1.0f32, 1.0f32), (2.0, 0.5), (0.5, 2.0), (0.25, 2.0)] {
        let m = model(5);
        let mut t = r.clone();
        // The sampler's log-probs; the update's own forward is the old policy.
        t.old_logp = vec![mine[0].iter().map(|l| l + ln(shift)).collect()];
        let (mut opt, vars) = optimizer(&m, 1e-3);
        let st = ppo_update(&m, &mut opt, &vars, &t, &adv, None, &tis).unwrap();
        assert!(
            (st.pg_loss + w as f64).abs() < 1e-4,
            "shift {shift}: {}",
            st.pg_loss
        );
        assert!((st.tis_weight.unwrap() - w as f64).abs() < 1e-4);
        let LogprobDiff { mean, max } = st.server_diff.unwrap();
        assert!((mean - ln(shift).abs() as f64).abs() < 1e-4, "{mean}");
        assert!((max - ln(shift).abs() as f64).abs() < 1e-4, "{max}");
        if shift == 1.0 {
            // The same gradient as the exact update, so the same new weights.
            let got = logp_sum(&m, &t, 0);
            assert!((got - after_exact).abs() < 1e-4, "{got} vs {after_exact}");
        }
    }
}
