//! The Bayes-adaptive value of a step (spec section 3).
//!
//! A rollout is scored under several hypotheses about the task at once. Each
//! hypothesis `i` keeps a likelihood `L_i(k)` of what the rollout has observed so
//! far; combined with the model's own credence `c_i(k)` it gives a posterior
//! weight `w_i(k)`, and the value of step `k` is the posterior mean of the
//! hypotheses' values `Q_i(k)`.
//!
//! Matrices are `&[Vec<f32>]` with one row per hypothesis `i = 0..m` and one
//! column per step `k = 0..=K`; every row has the same length `K + 1`.

use crate::error::{CoreError, Result};

/// The Bayes-adaptive value `V(k)` of every step `k = 0..=K` of one completion.
///
/// This is the general estimator; [`math_bayesian_values`] and the synthetic task
/// only differ in how they fill its inputs. With `m` hypotheses:
///
/// ```text
/// L_i(0) = 1
/// L_i(k) = L_i(k-1) * exp(-beta * |r(k) - r_i(k)|)        k >= 1
/// w_i(k) = L_i(k) c_i(k) / sum_j L_j(k) c_j(k)
/// V(k)   = sum_i w_i(k) Q_i(k)
/// ```
///
/// Shapes and conventions:
/// - `credence[i][k] = c_i(k)`: the model's belief in hypothesis `i` at step `k`
///   (expected `>= 0`), shape `m x (K+1)`.
/// - `predicted_reward[i][k] = r_i(k)` and `observed_reward[k] = r(k)` are the
///   rewards of the transition *into* step `k`, so column/index 0 is ignored and
///   may hold anything (even NaN). Shapes `m x (K+1)` and `K+1`.
/// - `q_values[i][k] = Q_i(k)`, the value of continuing from step `k` if
///   hypothesis `i` is the true task, shape `m x (K+1)`.
/// - `beta >= 0` is the strength of the belief update; `beta = 0` weights the
///   hypotheses by credence alone.
///
/// Returns a vector of length `K + 1 = observed_reward.len()`. With no hypotheses
/// (`m = 0`) every value is 0. When the normaliser `sum_j L_j(k) c_j(k)` is zero,
/// negative or not finite (all credences zero, or a NaN among the credences or
/// predicted rewards), `V(k) = 0`; non-finite `Q` values of weighted hypotheses
/// propagate to the output.
///
/// The likelihoods are kept in log space (`log L_i(k) = -beta * sum |r - r_i|`) and
/// rescaled so the largest weighted one is 1 before exponentiating, which is the
/// same posterior but cannot underflow to `0 / 0` on long or surprising
/// rollouts. All sums are in `f64`.
///
/// # Errors
/// [`CoreError::LengthMismatch`] if `predicted_reward` or `q_values` does not have
/// `m` rows or any row does not have `K + 1` entries;
/// [`CoreError::InvalidArgument`] if `beta` is negative or not finite.
pub fn bayesian_values(
    credence: &[Vec<f32>],
    predicted_reward: &[Vec<f32>],
    observed_reward: &[f32],
    q_values: &[Vec<f32>],
    beta: f32,
) -> Result<Vec<f32>> {
    if !(beta.is_finite() && beta >= 0.0) {
        return Err(CoreError::invalid(format!(
            "beta must be finite and >= 0, got {beta}"
        )));
    }
    let m = credence.len();
    let steps = observed_reward.len();
    check_matrix("credence", credence, m, steps)?;
    check_matrix("predicted_reward", predicted_reward, m, steps)?;
    check_matrix("q_values", q_values, m, steps)?;

    let beta = f64::from(beta);
    let mut log_likelihood = vec![0.0f64; m];
    let mut values = Vec::with_capacity(steps);
    for k in 0..steps {
        // Step 0 has seen no transition yet, so L_i(0) = 1 (log 0).
        if k > 0 {
            let observed = f64::from(observed_reward[k]);
            for (log_l, predicted) in log_likelihood.iter_mut().zip(predicted_reward) {
                *log_l -= beta * (observed - f64::from(predicted[k])).abs();
            }
        }
        let weighted =
            credence
                .iter()
                .zip(q_values)
                .zip(&log_likelihood)
                .map(|((c, q), &log_l)| Weighted {
                    log_likelihood: log_l,
                    credence: f64::from(c[k]),
                    value: f64::from(q[k]),
                });
        values.push(posterior_mean(weighted));
    }
    Ok(values)
}

/// One hypothesis at one step, as seen by [`posterior_mean`].
#[derive(Clone, Copy)]
struct Weighted {
    log_likelihood: f64,
    credence: f64,
    value: f64,
}

/// `sum_i L_i c_i Q_i / sum_i L_i c_i`, or 0 when the normaliser is not positive and
/// finite.
fn posterior_mean(hypotheses: impl Iterator<Item = Weighted> + Clone) -> f32 {
    // Hypotheses without credence contribute nothing; skipping them also avoids
    // `inf * 0` when their likelihood is far above the shift.
    let contributing = hypotheses.filter(|h| h.credence != 0.0);
    // Shift so the largest likelihood among contributing hypotheses becomes 1.
    // NaNs are ignored here; they resurface in the normaliser below.
    let shift = contributing
        .clone()
        .map(|h| h.log_likelihood)
        .filter(|l| l.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    if shift == f64::NEG_INFINITY {
        // No contributing hypothesis has a finite likelihood: nothing to average.
        return 0.0;
    }
    let (mut numerator, mut normaliser) = (0.0f64, 0.0f64);
    for h in contributing {
        let weight = (h.log_likelihood - shift).exp() * h.credence;
        numerator += weight * h.value;
        normaliser += weight;
    }
    if normaliser.is_finite() && normaliser > 0.0 {
        (numerator / normaliser) as f32
    } else {
        0.0
    }
}

/// Checks that `matrix` has `rows` rows of `cols` entries each.
fn check_matrix(name: &str, matrix: &[Vec<f32>], rows: usize, cols: usize) -> Result<()> {
    if matrix.len() != rows {
        return Err(CoreError::length(
            format!("{name} (number of hypotheses)"),
            rows,
            matrix.len(),
        ));
    }
    for (i, row) in matrix.iter().enumerate() {
        if row.len() != cols {
            return Err(CoreError::length(
                format!("{name} row {i} (number of steps)"),
                cols,
                row.len(),
            ));
        }
    }
    Ok(())
}

/// The Bayes-adaptive values for math reasoning (the reference form).
///
/// `probs[i][k] = p_i(k)` is the answer-probe probability of hypothesis `i` after
/// step `k` (shape `m x (K+1)`), `truth[k] = p_*(k)` that of the ground truth
/// (length `K+1`). The inputs of [`bayesian_values`] are then
///
/// ```text
/// c_i(k) = p_i(k)
/// r_i(k) = d_i(k) = p_i(k) - p_i(k-1)     (progress of hypothesis i)
/// r(k)   = d_*(k) = p_*(k) - p_*(k-1)     (observed progress of the truth)
/// Q_i(k) = p_i(K) - p_i(k)                (its remaining progress, gamma = 1)
/// ```
///
/// Returns `V(k)` for `k = 0..=K` (empty if `truth` is empty). A step where every
/// `p_i(k)` is 0 has `V(k) = 0` (see [`bayesian_values`]).
///
/// # Errors
/// [`CoreError::LengthMismatch`] if a row of `probs` does not have `truth.len()`
/// entries; [`CoreError::InvalidArgument`] if `beta` is negative or not finite.
pub fn math_bayesian_values(probs: &[Vec<f32>], truth: &[f32], beta: f32) -> Result<Vec<f32>> {
    check_matrix("probs", probs, probs.len(), truth.len())?;
    let predicted: Vec<Vec<f32>> = probs.iter().map(|p| progress_rewards(p)).collect();
    let observed = progress_rewards(truth);
    let q: Vec<Vec<f32>> = probs.iter().map(|p| progress_values(p)).collect();
    bayesian_values(probs, &predicted, &observed, &q, beta)
}

/// `d(k) = p(k) - p(k-1)` for `k >= 1`, with an unused 0 at index 0.
fn progress_rewards(p: &[f32]) -> Vec<f32> {
    let mut d = Vec::with_capacity(p.len());
    if !p.is_empty() {
        d.push(0.0);
    }
    d.extend(p.windows(2).map(|w| w[1] - w[0]));
    d
}

/// Progress value with the truth only (the Progress baseline, spec section 7):
/// `V(k) = p_*(K) - p_*(k)` for `k = 0..=K`, where `truth[k] = p_*(k)`.
///
/// This is [`math_bayesian_values`] with the single hypothesis `y*` whenever
/// `p_*(k) > 0`. An empty `truth` gives an empty result.
pub fn progress_values(truth: &[f32]) -> Vec<f32> {
    match truth.last() {
        Some(&last) => truth.iter().map(|&p| last - p).collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_close;
    use proptest::prelude::*;

    /// Two hypotheses, steps k = 0, 1, 2 (K = 2), used by several tests.
    /// Hypothesis 0 predicts reward 1 for the step into k = 1 but 0 is observed.
    fn two_by_three() -> [Vec<Vec<f32>>; 3] {
        let credence = vec![vec![0.5, 0.6, 0.7], vec![0.5, 0.4, 0.3]];
        let predicted = vec![vec![9.0, 1.0, 0.0], vec![9.0, 0.0, 0.0]];
        let q = vec![vec![1.0, 1.0, 3.0], vec![0.0, 2.0, 1.0]];
        [credence, predicted, q]
    }

    #[test]
    fn two_hypotheses_three_steps_by_hand() {
        let [c, r, q] = two_by_three();
        let observed = [9.0, 0.0, 0.0];
        let v = bayesian_values(&c, &r, &observed, &q, 1.0).unwrap();
        // k = 0: L = [1, 1]; L*c = [0.5, 0.5]; w = [0.5, 0.5]
        //        V = 0.5*1 + 0.5*0 = 0.5
        // k = 1: |0 - 1| = 1 -> L0 = exp(-1) = 0.367879; |0 - 0| = 0 -> L1 = 1
        //        L*c = [0.367879*0.6, 1*0.4] = [0.220728, 0.4], sum = 0.620728
        //        w = [0.355595, 0.644405]
        //        V = 0.355595*1 + 0.644405*2 = 1.644405
        // k = 2: no new disagreement: L0 = 0.367879, L1 = 1
        //        L*c = [0.367879*0.7, 0.3] = [0.257516, 0.3], sum = 0.557516
        //        w = [0.461898, 0.538102]
        //        V = 0.461898*3 + 0.538102*1 = 1.923797
        assert_close(&v, &[0.5, 1.644405, 1.923797], 1e-5);
    }

    #[test]
    fn index_zero_of_rewards_is_ignored() {
        let [c, mut r, q] = two_by_three();
        r[0][0] = f32::NAN;
        r[1][0] = -3.0;
        let v = bayesian_values(&c, &r, &[f32::NAN, 0.0, 0.0], &q, 1.0).unwrap();
        // Same numbers as `two_hypotheses_three_steps_by_hand`.
        assert_close(&v, &[0.5, 1.644405, 1.923797], 1e-5);
    }

    #[test]
    fn beta_zero_is_credence_weighting() {
        let [c, r, q] = two_by_three();
        let v = bayesian_values(&c, &r, &[0.0, 0.0, 0.0], &q, 0.0).unwrap();
        // V(k) = sum c_i Q_i / sum c_i, and each credence column sums to 1:
        // k=0: 0.5*1 + 0.5*0 = 0.5; k=1: 0.6*1 + 0.4*2 = 1.4; k=2: 0.7*3 + 0.3*1 = 2.4
        assert_close(&v, &[0.5, 1.4, 2.4], 1e-6);
    }

    #[test]
    fn contradicted_hypothesis_loses_weight() {
        // Equal credence throughout; hypothesis 0 always predicts what is observed,
        // hypothesis 1 is off by 1 at every step. Q_0 = 1, Q_1 = 0, so V = w_0.
        // With beta = 1: w_1(k) = exp(-k) / (1 + exp(-k)):
        //   k=1: 0.367879/1.367879 = 0.268941 -> V = 0.731059
        //   k=2: 0.135335/1.135335 = 0.119203 -> V = 0.880797
        //   k=3: 0.049787/1.049787 = 0.047426 -> V = 0.952574
        let c = vec![vec![0.5; 4], vec![0.5; 4]];
        let r = vec![vec![0.0, 1.0, 0.0, 1.0], vec![0.0, 0.0, 1.0, 0.0]];
        let observed = [0.0, 1.0, 0.0, 1.0];
        let q = vec![vec![1.0; 4], vec![0.0; 4]];
        let v = bayesian_values(&c, &r, &observed, &q, 1.0).unwrap();
        assert_close(&v, &[0.5, 0.731059, 0.880797, 0.952574], 1e-5);
    }

    #[test]
    fn zero_credence_column_gives_zero_value() {
        // At k = 0 both credences are 0 -> V(0) = 0 by convention.
        // At k = 1 they are [0.5, 0.5] with no disagreement -> V = (2 + 4)/2 = 3.
        let c = vec![vec![0.0, 0.5], vec![0.0, 0.5]];
        let r = vec![vec![0.0, 0.0], vec![0.0, 0.0]];
        let q = vec![vec![2.0, 2.0], vec![4.0, 4.0]];
        let v = bayesian_values(&c, &r, &[0.0, 0.0], &q, 1.0).unwrap();
        assert_eq!(v, vec![0.0, 3.0]);
    }

    #[test]
    fn zero_credence_hypothesis_is_ignored() {
        // Hypothesis 0 has no credence, so V = Q_1 even though hypothesis 0 fits
        // the evidence far better.
        let c = vec![vec![0.0, 0.0], vec![1.0, 1.0]];
        let r = vec![vec![0.0, 0.0], vec![0.0, 1000.0]];
        let q = vec![vec![5.0, 5.0], vec![-1.0, 2.0]];
        let v = bayesian_values(&c, &r, &[0.0, 0.0], &q, 1.0).unwrap();
        assert_eq!(v, vec![-1.0, 2.0]);
    }

    #[test]
    fn strong_evidence_does_not_underflow() {
        // beta = 1000: L0 = exp(-1000), L1 = exp(-2000) both underflow to 0 in
        // f64, but the posterior is still w = [1/(1+exp(-1000)), ~0] = [1, 0].
        let c = vec![vec![0.5, 0.5], vec![0.5, 0.5]];
        let r = vec![vec![0.0, 1.0], vec![0.0, 2.0]];
        let q = vec![vec![0.0, 0.25], vec![0.0, 0.75]];
        let v = bayesian_values(&c, &r, &[0.0, 0.0], &q, 1000.0).unwrap();
        assert_eq!(v, vec![0.0, 0.25]);
    }

    #[test]
    fn nan_in_normaliser_gives_zero() {
        // A NaN credence at k = 1 makes the normaliser NaN -> V(1) = 0;
        // k = 0 is unaffected: V(0) = (1*1 + 1*3)/2 = 2.
        let c = vec![vec![1.0, f32::NAN], vec![1.0, 1.0]];
        let r = vec![vec![0.0, 0.0], vec![0.0, 0.0]];
        let q = vec![vec![1.0, 1.0], vec![3.0, 3.0]];
        let v = bayesian_values(&c, &r, &[0.0, 0.0], &q, 1.0).unwrap();
        assert_eq!(v, vec![2.0, 0.0]);
    }

    #[test]
    fn no_hypotheses_gives_zeros() {
        let v = bayesian_values(&[], &[], &[0.0, 1.0, 0.0], &[], 1.0).unwrap();
        assert_eq!(v, vec![0.0, 0.0, 0.0]);
        assert!(bayesian_values(&[], &[], &[], &[], 1.0).unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_shapes_and_beta() {
        let [c, r, q] = two_by_three();
        let obs = [0.0, 0.0, 0.0];
        // Ragged row.
        let mut ragged = q.clone();
        ragged[1].pop();
        let e = bayesian_values(&c, &r, &obs, &ragged, 1.0).unwrap_err();
        assert_eq!(
            e,
            CoreError::length("q_values row 1 (number of steps)", 3, 2)
        );
        // Wrong number of hypotheses.
        let e = bayesian_values(&c, &r[..1], &obs, &q, 1.0).unwrap_err();
        assert_eq!(
            e,
            CoreError::length("predicted_reward (number of hypotheses)", 2, 1)
        );
        // Observed rewards of the wrong length.
        let e = bayesian_values(&c, &r, &obs[..2], &q, 1.0).unwrap_err();
        assert!(matches!(e, CoreError::LengthMismatch { .. }), "{e}");
        for beta in [-0.1, f32::NAN, f32::INFINITY] {
            let e = bayesian_values(&c, &r, &obs, &q, beta).unwrap_err();
            assert!(matches!(e, CoreError::InvalidArgument(_)), "{e}");
        }
    }

    #[test]
    fn math_form_by_hand() {
        // p_0 = [0.2, 0.5, 0.9] (equals the truth), p_1 = [0.4, 0.3, 0.1].
        // d_0 = d_* = [_, 0.3, 0.4]; d_1 = [_, -0.1, -0.2]
        // Q_0 = [0.7, 0.4, 0]; Q_1 = [-0.3, -0.2, 0]
        // k=0: w ∝ [0.2, 0.4] = [1/3, 2/3]; V = (0.7 - 0.6)/3 = 0.033333
        // k=1: L_1 = exp(-|0.3 + 0.1|) = exp(-0.4) = 0.670320
        //      L*c = [0.5, 0.3*0.670320] = [0.5, 0.201096], sum 0.701096
        //      w = [0.713169, 0.286831]; V = 0.713169*0.4 - 0.286831*0.2 = 0.227901
        // k=2: all Q are 0 -> V = 0
        let probs = vec![vec![0.2, 0.5, 0.9], vec![0.4, 0.3, 0.1]];
        let v = math_bayesian_values(&probs, &[0.2, 0.5, 0.9], 1.0).unwrap();
        assert_close(&v, &[0.033333, 0.227901, 0.0], 1e-5);
    }

    #[test]
    fn math_form_with_only_the_truth_is_progress() {
        // progress: p_*(K) = 0.8 -> [0.8-0.1, 0.8-0.3, 0.8-0.2, 0] = [0.7, 0.5, 0.6, 0]
        let truth = [0.1, 0.3, 0.2, 0.8];
        let progress = progress_values(&truth);
        assert_close(&progress, &[0.7, 0.5, 0.6, 0.0], 1e-6);
        let v = math_bayesian_values(&[truth.to_vec()], &truth, 1.0).unwrap();
        assert_close(&v, &[0.7, 0.5, 0.6, 0.0], 1e-6);
    }

    #[test]
    fn math_form_edge_cases() {
        assert!(math_bayesian_values(&[], &[], 1.0).unwrap().is_empty());
        // No hypotheses: zeros.
        assert_eq!(
            math_bayesian_values(&[], &[0.1, 0.2], 1.0).unwrap(),
            vec![0.0, 0.0]
        );
        let e = math_bayesian_values(&[vec![0.1]], &[0.1, 0.2], 1.0).unwrap_err();
        assert_eq!(e, CoreError::length("probs row 0 (number of steps)", 2, 1));
        let e = math_bayesian_values(&[], &[], -1.0).unwrap_err();
        assert!(matches!(e, CoreError::InvalidArgument(_)), "{e}");
    }

    #[test]
    fn progress_values_edge_cases() {
        assert!(progress_values(&[]).is_empty());
        // A single step (K = 0) has nothing left to gain.
        assert_eq!(progress_values(&[0.4]), vec![0.0]);
    }

    /// (credence, predicted_reward, observed_reward, q_values, beta)
    type Case = (Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<f32>, Vec<Vec<f32>>, f32);

    fn hypotheses_and_steps() -> impl Strategy<Value = Case> {
        (1usize..5, 1usize..6).prop_flat_map(|(m, steps)| {
            let matrix = |lo: f32, hi: f32| {
                proptest::collection::vec(proptest::collection::vec(lo..hi, steps), m)
            };
            (
                matrix(0.01, 1.0),
                matrix(-1.0, 1.0),
                proptest::collection::vec(-1.0f32..1.0, steps),
                matrix(-3.0, 3.0),
                0.0f32..50.0,
            )
        })
    }

    proptest! {
        #[test]
        fn value_is_a_convex_combination_of_q((c, r, obs, q, beta) in hypotheses_and_steps()) {
            let v = bayesian_values(&c, &r, &obs, &q, beta).unwrap();
            prop_assert_eq!(v.len(), obs.len());
            for (k, &vk) in v.iter().enumerate() {
                let lo = q.iter().map(|row| row[k]).fold(f32::INFINITY, f32::min);
                let hi = q.iter().map(|row| row[k]).fold(f32::NEG_INFINITY, f32::max);
                prop_assert!(vk >= lo - 1e-5 && vk <= hi + 1e-5, "V({}) = {} not in [{}, {}]", k, vk, lo, hi);
            }
        }

        #[test]
        fn single_true_hypothesis_matches_progress(truth in proptest::collection::vec(0.01f32..1.0, 1..8)) {
            let v = math_bayesian_values(std::slice::from_ref(&truth), &truth, 1.0).unwrap();
            let p = progress_values(&truth);
            for (a, b) in v.iter().zip(&p) {
                prop_assert!((a - b).abs() < 1e-6);
            }
        }
    }
}
