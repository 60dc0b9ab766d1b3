//! BARL's Bayesian step values on the synthetic task, and the metrics that show
//! the mechanism (switching after a failure, prompt-dependent first attempts).
//!
//! The paper's estimator (spec section 3), with steps = attempts:
//! `V(k) = sum_i w_i(k) Q_i(k)`, `w_i(k) ∝ c_i(k) L_i(k)`,
//! `L_i(k) = prod_{k' < k} exp(-beta |r(k') - r_i(k')|)`.
//! The paper leaves open where the credence `c_i` comes from in this task and
//! how `Q_i` treats later attempts; both are options here.

use barl_core::bayesian_values;

use super::rollout::Episodes;
use super::task::TaskConfig;
use crate::TrainError;

barl_core::named_enum! {
    /// Source of the credence `c_i(k)` of hypothesis `i` before attempt `k`.
    #[derive(Default)]
    pub enum Credence ("credence") {
        /// The current policy's probability that attempt `k` is `s_i` (the literal
        /// reading; it makes credence and action distribution the same thing).
        #[default]
        Policy = "policy",
        /// The training-data posterior `p(M | D)`: uniform over the hypotheses, so
        /// the weights move only with the evidence of the feedback.
        Uniform = "uniform",
        /// The same probability under a frozen copy of the initial policy.
        Initial = "initial",
    }
}

/// How `Q_i(k)`, the return under hypothesis `i` of attempts `k..`, is counted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QRule {
    /// Discount per attempt: a match `j - k` attempts later is worth `gamma^(j-k)`.
    pub discount: f32,
    /// Cost of every attempt the episode would use under the hypothesis
    /// (attempts `k..=j` up to its first match `j`, else up to the rollout's end).
    pub attempt_cost: f32,
}

/// `Q_i(k)` for one hypothesis string `h` and the attempts of one rollout:
/// with `j` the first attempt `>= k` equal to `h`,
/// `Q(k) = gamma^(j-k) - cost * (j - k + 1)`, and `-cost * (n - k)` if none.
pub fn hypothesis_returns(attempts: &[&[u32]], h: &[u32], rule: QRule) -> Vec<f32> {
    let n = attempts.len();
    (0..n)
        .map(|k| match attempts[k..].iter().position(|a| *a == h) {
            Some(d) => rule.discount.powi(d as i32) - rule.attempt_cost * (d + 1) as f32,
            None => -rule.attempt_cost * (n - k) as f32,
        })
        .collect()
}

/// `V(k)` for the steps `k = 0..n_attempts` of episode `e`: the reward of the
/// transition into step `k` is that of attempt `k - 1`, observed `r(k)` and
/// predicted `r_i(k) = 1[attempt_{k-1} = s_i]`; `credence[k][i] = c_i(k)`.
pub fn episode_values(
    task: &TaskConfig,
    episodes: &Episodes,
    e: usize,
    hyps: &[Vec<u32>],
    credence: &[Vec<f32>],
    beta: f32,
    rule: QRule,
) -> Result<Vec<f32>, TrainError> {
    let n = episodes.n_attempts[e];
    let attempts: Vec<&[u32]> = (0..n).map(|k| episodes.attempt(task, e, k)).collect();
    let by_hyp: Vec<Vec<f32>> = (0..hyps.len())
        .map(|i| (0..n).map(|k| credence[k][i]).collect())
        .collect();
    let observed: Vec<f32> = (0..n)
        .map(|k| {
            if k == 0 {
                0.0
            } else {
                episodes.reward(e, attempts[k - 1])
            }
        })
        .collect();
    let predicted: Vec<Vec<f32>> = hyps
        .iter()
        .map(|h| {
            (0..n)
                .map(|k| f32::from(u8::from(k > 0 && attempts[k - 1] == h.as_slice())))
                .collect()
        })
        .collect();
    let q: Vec<Vec<f32>> = hyps
        .iter()
        .map(|h| hypothesis_returns(&attempts, h, rule))
        .collect();
    Ok(bayesian_values(&by_hyp, &predicted, &observed, &q, beta)?)
}

/// Share of episodes, among those that made a second attempt, in which every
/// attempt after a failure differs from all the failed ones before it (all
/// attempts of an episode but its last failed). `None` if no episode made a
/// second attempt.
pub fn switch_rate(task: &TaskConfig, episodes: &Episodes) -> Option<f64> {
    let mut eligible = 0usize;
    let mut switched = 0usize;
    for e in 0..episodes.len() {
        let n = episodes.n_attempts[e];
        if n < 2 {
            continue;
        }
        eligible += 1;
        let attempts: Vec<&[u32]> = (0..n).map(|k| episodes.attempt(task, e, k)).collect();
        if (1..n).all(|k| !attempts[..k].contains(&attempts[k])) {
            switched += 1;
        }
    }
    (eligible > 0).then(|| switched as f64 / eligible as f64)
}

/// How much the first attempt depends on the prompt: the total-variation
/// distance `1/2 sum_s |pi(s | a) - pi(s | b)|` between the first-attempt
/// distributions of two prompts, averaged over all pairs of `dists` (one
/// distribution over the same strings per prompt). 0 = the same first attempt
/// whatever the prompt (a fixed probe), 1 = disjoint. `None` for fewer than two.
pub fn prompt_dependence(dists: &[Vec<f32>]) -> Option<f64> {
    let mut total = 0f64;
    let mut pairs = 0usize;
    for a in 0..dists.len() {
        for b in a + 1..dists.len() {
            let tv: f64 = dists[a]
                .iter()
                .zip(&dists[b])
                .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
                .sum::<f64>()
                / 2.0;
            total += tv;
            pairs += 1;
        }
    }
    (pairs > 0).then(|| total / pairs as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::task::{hypotheses, Prior};

    fn episodes(task: &TaskConfig, rows: &[(u32, &[&str])]) -> Episodes {
        Episodes::from_strings(task, rows)
    }

    const FREE: QRule = QRule {
        discount: 1.0,
        attempt_cost: 0.0,
    };

    fn close(got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!(
                (f64::from(*g) - w).abs() < 1e-5,
                "got {got:?}, want {want:?}"
            );
        }
    }

    /// Prompt 1, attempts `000- 000- 111+`, hypotheses {000, 111, 222}, beta 1.
    /// Q (gamma 1, no cost): Q_000 = [1, 1, 0], Q_111 = [1, 1, 1], Q_222 = 0.
    /// Likelihoods: 000 predicted a reward twice and got none, so
    /// L_000 = [1, e^-1, e^-2]; L_111 = L_222 = 1.
    #[test]
    fn values_of_a_repeated_failure_for_each_credence() {
        let task = TaskConfig::default();
        let ep = episodes(&task, &[(1, &["000", "000", "111"])]);
        let hyps = hypotheses(&task, Prior::Repeated).unwrap();
        let e1 = (-1f64).exp();
        let e2 = (-2f64).exp();
        // Uniform credence: V(0) = 2/3, V(1) = (e^-1 + 1) / (e^-1 + 2),
        // V(2) = 1 / (e^-2 + 2).
        let uniform = vec![vec![1.0; 3]; 3];
        let v = episode_values(&task, &ep, 0, &hyps, &uniform, 1.0, FREE).unwrap();
        close(&v, &[2.0 / 3.0, (e1 + 1.0) / (e1 + 2.0), 1.0 / (e2 + 2.0)]);
        // A policy's (or the initial policy's) probe probabilities as credence:
        // c(0) = (.5, .3, .2), c(1) = (.1, .6, .3), c(2) = (.2, .2, .6).
        // V(0) = .5 + .3 = .8; V(1) = (.1 e^-1 + .6) / (.1 e^-1 + .9);
        // V(2) = .2 / (.2 e^-2 + .2 + .6).
        let probes = vec![
            vec![0.5, 0.3, 0.2],
            vec![0.1, 0.6, 0.3],
            vec![0.2, 0.2, 0.6],
        ];
        let v = episode_values(&task, &ep, 0, &hyps, &probes, 1.0, FREE).unwrap();
        close(
            &v,
            &[
                0.8,
                (0.1 * e1 + 0.6) / (0.1 * e1 + 0.9),
                0.2 / (0.2 * e2 + 0.8),
            ],
        );
        // beta 0: nothing is learnt from the feedback, V(1) = 2/3 under uniform.
        let v = episode_values(&task, &ep, 0, &hyps, &uniform, 0.0, FREE).unwrap();
        close(&v, &[2.0 / 3.0, 2.0 / 3.0, 1.0 / 3.0]);
    }

    /// Prompt 1, attempts `000- 222- 111+`, gamma 0.5, cost 0.1, uniform.
    /// Q_000 = [1 - .1, -.2, -.1], Q_222 = [.5 - .2, 1 - .1, -.1],
    /// Q_111 = [.25 - .3, .5 - .2, 1 - .1]; L_000 = [1, e^-1, e^-1],
    /// L_222 = [1, 1, e^-1], L_111 = 1.
    #[test]
    fn discount_and_attempt_cost_enter_q() {
        let task = TaskConfig::default();
        let ep = episodes(&task, &[(1, &["000", "222", "111"])]);
        let hyps = hypotheses(&task, Prior::Repeated).unwrap();
        let rule = QRule {
            discount: 0.5,
            attempt_cost: 0.1,
        };
        let attempts: Vec<&[u32]> = (0..3).map(|k| ep.attempt(&task, 0, k)).collect();
        close(
            &hypothesis_returns(&attempts, &hyps[1], rule),
            &[-0.05, 0.3, 0.9],
        );
        let e1 = (-1f64).exp();
        let uniform = vec![vec![1.0; 3]; 3];
        let v = episode_values(&task, &ep, 0, &hyps, &uniform, 1.0, rule).unwrap();
        close(
            &v,
            &[
                (0.9 + 0.3 - 0.05) / 3.0,
                (-0.2 * e1 + 0.3 + 0.9) / (e1 + 2.0),
                (0.9 - 0.2 * e1) / (1.0 + 2.0 * e1),
            ],
        );
    }

    #[test]
    fn switch_rate_counts_episodes_that_never_repeat_a_failure() {
        let task = TaskConfig::default();
        let ep = episodes(
            &task,
            &[
                (2, &["000", "111", "222"]), // switched twice
                (2, &["000", "000", "222"]), // repeated its failure
                (2, &["222"]),               // no second attempt: not counted
                (2, &["011", "222"]),        // switched
                (2, &["000", "111", "000"]), // third attempt repeats the first
            ],
        );
        assert_eq!(switch_rate(&task, &ep), Some(0.5));
        let single = episodes(&task, &[(0, &["000"]), (1, &["111"])]);
        assert_eq!(switch_rate(&task, &single), None);
    }

    #[test]
    fn prompt_dependence_is_the_mean_total_variation() {
        assert_eq!(
            prompt_dependence(&[vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]]),
            Some(1.0)
        );
        // Pairs: TV(a, b) = .5, TV(a, c) = 0, TV(b, c) = .5; mean 1/3.
        let a = vec![0.5, 0.5, 0.0];
        let b = vec![0.5, 0.0, 0.5];
        let d = prompt_dependence(&[a.clone(), b, a]).unwrap();
        assert!((d - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(prompt_dependence(&[vec![1.0]]), None);
    }
}
