//! From rewards and step values to per-token advantages (spec sections 2, 3, 7).
//!
//! BARL and Progress give every token of step `k` the return
//! `q_t = R(c) + V(k)` ([`token_returns`]) and whiten those returns over the whole
//! batch ([`normalize_over_batch`]). GRPO computes one advantage per completion
//! ([`crate::grpo`]) and copies it to the completion's tokens
//! ([`broadcast_to_tokens`]). Steps are fixed-size token chunks
//! ([`num_chunk_steps`], [`chunk_step_of_tokens`]).

use crate::error::{CoreError, Result};

crate::named_enum! {
    /// Which estimator turns rewards into advantages.
    pub enum AdvEstimator ("advantage estimator") {
        /// Outcome reward only, normalised within each prompt's group (Markovian RL).
        Grpo = "grpo",
        /// Dense progress reward of the truth alone: BARL with the single hypothesis `y*`.
        Progress = "progress",
        /// Bayes-adaptive value over all hypotheses.
        Barl = "barl",
    }
}

/// Number of steps after the prompt when a completion of `num_tokens` response
/// tokens is cut into chunks of `step_size` tokens:
/// `K = ceil(num_tokens / step_size)` (0 tokens gives `K = 0`).
///
/// Step `k` ends at response token `k * step_size`, step 0 being the bare prompt,
/// and the last step ends at the last token, so it may be shorter than
/// `step_size`. A completion therefore has `K + 1` step values `V(0..=K)`.
/// The reference uses `step_size = 128`.
///
/// # Errors
/// [`CoreError::InvalidArgument`] if `step_size == 0`.
pub fn num_chunk_steps(num_tokens: usize, step_size: usize) -> Result<usize> {
    check_step_size(step_size)?;
    Ok(num_tokens.div_ceil(step_size))
}

/// The step of every response token: token `t` (0-based) belongs to step
/// `t / step_size + 1` (integer division), i.e. the step it leads *into*; no token
/// belongs to step 0, the bare prompt. The last token is in step
/// [`num_chunk_steps`]`(num_tokens, step_size)`.
///
/// Returns a vector of length `num_tokens`.
///
/// # Errors
/// [`CoreError::InvalidArgument`] if `step_size == 0`.
pub fn chunk_step_of_tokens(num_tokens: usize, step_size: usize) -> Result<Vec<usize>> {
    check_step_size(step_size)?;
    Ok((0..num_tokens).map(|t| t / step_size + 1).collect())
}

fn check_step_size(step_size: usize) -> Result<()> {
    if step_size == 0 {
        return Err(CoreError::invalid("step_size must be at least 1, got 0"));
    }
    Ok(())
}

/// Per-token return `q_t = outcome + V(step_of_token[t])` (spec section 3, step 6).
///
/// `outcome` is the completion's outcome reward `R(c)`, `step_values[k] = V(k)` for
/// `k = 0..=K` and `step_of_token[t]` the step of token `t` (e.g. from
/// [`chunk_step_of_tokens`]). Returns one value per token.
///
/// # Errors
/// [`CoreError::IndexOutOfRange`] if a step index is `>= step_values.len()`.
pub fn token_returns(
    outcome: f32,
    step_values: &[f32],
    step_of_token: &[usize],
) -> Result<Vec<f32>> {
    step_of_token
        .iter()
        .enumerate()
        .map(|(t, &k)| match step_values.get(k) {
            Some(&v) => Ok(outcome + v),
            None => Err(CoreError::IndexOutOfRange {
                what: format!("step_of_token[{t}]"),
                index: k,
                len: step_values.len(),
            }),
        })
        .collect()
}

/// Batch whitening used by BARL and Progress (spec section 3, step 7):
///
/// ```text
/// A_t = (q_t - mean) / (std + eps)
/// ```
///
/// where `mean` and the *population* std (denominator `N`) are taken over all `N`
/// tokens of all sequences of the batch: there is no per-prompt baseline.
/// `token_values[j]` holds the values of sequence `j`; sequences may have
/// different lengths, and empty ones are kept (as empty outputs). The output has
/// exactly the shape of the input.
///
/// - An empty batch (or one whose sequences are all empty) gives an empty result.
/// - A batch whose values are all equal gives all zeros.
/// - `eps` is expected to be `>= 0`; if `std + eps` is not positive and finite the
///   result is all zeros rather than NaN or infinity.
///
/// Statistics are accumulated in `f64`.
pub fn normalize_over_batch(token_values: &[Vec<f32>], eps: f32) -> Vec<Vec<f32>> {
    let zeros = || {
        token_values
            .iter()
            .map(|seq| vec![0.0; seq.len()])
            .collect()
    };
    let all = || token_values.iter().flatten().map(|&x| f64::from(x));
    let n = all().count();
    let Some(first) = all().next() else {
        return zeros();
    };
    // Exact check instead of `std == 0`: rounding in the mean could leave a tiny
    // std and turn equal values into arbitrary +-1 advantages.
    if all().all(|x| x == first) {
        return zeros();
    }
    let mean = all().sum::<f64>() / n as f64;
    let var = all().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
    let denom = var.sqrt() + f64::from(eps);
    if !(denom.is_finite() && denom > 0.0) {
        return zeros();
    }
    token_values
        .iter()
        .map(|seq| {
            seq.iter()
                .map(|&x| ((f64::from(x) - mean) / denom) as f32)
                .collect()
        })
        .collect()
}

/// Copies one value per sequence to each of its tokens:
/// `out[j] = vec![seq_values[j]; lengths[j]]` (GRPO's completion advantage becomes
/// every token's advantage).
///
/// # Errors
/// [`CoreError::LengthMismatch`] if `lengths.len() != seq_values.len()`.
pub fn broadcast_to_tokens(seq_values: &[f32], lengths: &[usize]) -> Result<Vec<Vec<f32>>> {
    if lengths.len() != seq_values.len() {
        return Err(CoreError::length(
            "lengths",
            seq_values.len(),
            lengths.len(),
        ));
    }
    Ok(seq_values
        .iter()
        .zip(lengths)
        .map(|(&v, &len)| vec![v; len])
        .collect())
}

crate::named_enum! {
    /// Which tokens BARL's and Progress's returns are whitened against.
    #[derive(Default)]
    pub enum Whiten ("whitening baseline") {
        /// Mean and std over all tokens of the batch (the reference).
        #[default]
        Batch = "batch",
        /// Mean and std over the tokens of the completions of the same prompt.
        Group = "group",
    }
}

/// A batch of completions as [`token_advantages`] reads it.
#[derive(Clone, Copy, Debug)]
pub struct AdvantageBatch<'a> {
    /// Outcome reward `R_j` of completion `j`.
    pub rewards: &'a [f32],
    /// Prompt group of completion `j` (any labels; members need not be contiguous).
    pub groups: &'a [usize],
    /// `step_of_token[j][t]`: the step of the `t`-th trained token of
    /// completion `j`; its length is how many tokens get an advantage.
    pub step_of_token: &'a [Vec<usize>],
    /// `values[j][k] = V_j(k)` (Progress and BARL; ignored by GRPO).
    pub values: &'a [Vec<f32>],
}

/// Settings of [`token_advantages`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdvantageOptions {
    /// Added to the std before dividing.
    pub eps: f32,
    /// GRPO divides by the group's std (otherwise it only subtracts the mean).
    pub grpo_norm_by_std: bool,
    /// Progress and BARL: whiten over the batch or within each prompt's group.
    pub whiten: Whiten,
}

/// Per-token advantages of a batch under `estimator`, the one place both
/// trainers turn rewards and step values into advantages:
///
/// ```text
/// GRPO:           A_t^j = (R_j - mean_g R) / (std_g R + eps)      for every token t of j
/// Progress, BARL: q_t^j = R_j + V_j(k(t))                         (token_returns)
///                 A_t^j = (q_t^j - mean q) / (std q + eps)        over the batch's tokens
///                                                                 (or j's group's: Whiten::Group)
/// ```
///
/// GRPO's `std_g` is the sample std ([`crate::group_normalized_advantages`]);
/// the whitening uses the population std ([`normalize_over_batch`]). The
/// output has one row per completion, `step_of_token[j].len()` long.
///
/// # Errors
/// [`CoreError::LengthMismatch`] if the slices disagree on the number of
/// completions (`values` too, for Progress and BARL);
/// [`CoreError::IndexOutOfRange`] if a token's step has no value.
pub fn token_advantages(
    estimator: AdvEstimator,
    batch: &AdvantageBatch,
    opts: &AdvantageOptions,
) -> Result<Vec<Vec<f32>>> {
    let n = batch.rewards.len();
    for (what, len) in [
        ("groups", batch.groups.len()),
        ("step_of_token", batch.step_of_token.len()),
    ] {
        if len != n {
            return Err(CoreError::length(what, n, len));
        }
    }
    if estimator == AdvEstimator::Grpo {
        let adv = crate::group_normalized_advantages(
            batch.rewards,
            batch.groups,
            opts.grpo_norm_by_std,
            opts.eps,
        )?;
        let lengths: Vec<usize> = batch.step_of_token.iter().map(Vec::len).collect();
        return broadcast_to_tokens(&adv, &lengths);
    }
    if batch.values.len() != n {
        return Err(CoreError::length("values", n, batch.values.len()));
    }
    let returns = (0..n)
        .map(|j| token_returns(batch.rewards[j], &batch.values[j], &batch.step_of_token[j]))
        .collect::<Result<Vec<_>>>()?;
    Ok(match opts.whiten {
        Whiten::Batch => normalize_over_batch(&returns, opts.eps),
        Whiten::Group => {
            let mut adv = vec![Vec::new(); n];
            let mut labels = batch.groups.to_vec();
            labels.sort_unstable();
            labels.dedup();
            for g in labels {
                let rows: Vec<usize> = (0..n).filter(|&j| batch.groups[j] == g).collect();
                let group: Vec<Vec<f32>> = rows.iter().map(|&j| returns[j].clone()).collect();
                for (&j, a) in rows.iter().zip(normalize_over_batch(&group, opts.eps)) {
                    adv[j] = a;
                }
            }
            adv
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::value::{Error as DeError, StrDeserializer};
    use serde::Deserialize;

    #[test]
    fn estimator_names_round_trip() {
        for (v, name) in [
            (AdvEstimator::Grpo, "grpo"),
            (AdvEstimator::Progress, "progress"),
            (AdvEstimator::Barl, "barl"),
        ] {
            assert_eq!(v.to_string(), name);
            assert_eq!(name.parse::<AdvEstimator>().unwrap(), v);
            // serde uses the same names.
            let de = AdvEstimator::deserialize(StrDeserializer::<DeError>::new(name)).unwrap();
            assert_eq!(de, v);
        }
    }

    #[test]
    fn estimator_parse_error_lists_valid_names() {
        let e = "BARL".parse::<AdvEstimator>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown advantage estimator `BARL`; valid names are: grpo, progress, barl"
        );
        assert!(AdvEstimator::deserialize(StrDeserializer::<DeError>::new("ppo")).is_err());
    }

    #[test]
    fn chunk_steps_of_300_tokens() {
        // 300 / 128 = 2.34 -> K = 3 (steps end at tokens 128, 256, 300).
        assert_eq!(num_chunk_steps(300, 128).unwrap(), 3);
        let steps = chunk_step_of_tokens(300, 128).unwrap();
        assert_eq!(steps.len(), 300);
        assert_eq!(steps[0], 1);
        assert_eq!(steps[127], 1); // 127/128 = 0 -> step 1
        assert_eq!(steps[128], 2); // 128/128 = 1 -> step 2
        assert_eq!(steps[255], 2); // 255/128 = 1 -> step 2
        assert_eq!(steps[256], 3); // 256/128 = 2 -> step 3
        assert_eq!(steps[299], 3); // 299/128 = 2 -> step 3 = K
    }

    #[test]
    fn chunk_steps_edge_cases() {
        assert_eq!(num_chunk_steps(0, 128).unwrap(), 0);
        assert!(chunk_step_of_tokens(0, 128).unwrap().is_empty());
        // Exact multiple: 256 tokens -> K = 2, last token 255 in step 2.
        assert_eq!(num_chunk_steps(256, 128).unwrap(), 2);
        assert_eq!(chunk_step_of_tokens(256, 128).unwrap()[255], 2);
        // Shorter than one chunk: one step.
        assert_eq!(num_chunk_steps(5, 128).unwrap(), 1);
        // step_size 1: every token is its own step.
        assert_eq!(chunk_step_of_tokens(3, 1).unwrap(), vec![1, 2, 3]);
        // step_size 2 on 5 tokens: [1, 1, 2, 2, 3], K = 3.
        assert_eq!(chunk_step_of_tokens(5, 2).unwrap(), vec![1, 1, 2, 2, 3]);
        assert_eq!(num_chunk_steps(5, 2).unwrap(), 3);
        for e in [
            num_chunk_steps(10, 0).unwrap_err(),
            chunk_step_of_tokens(10, 0).unwrap_err(),
        ] {
            assert_eq!(
                e.to_string(),
                "invalid argument: step_size must be at least 1, got 0"
            );
        }
    }

    #[test]
    fn token_returns_add_outcome_and_step_value() {
        // V = [0.5, 0.25, -0.5]; tokens in steps [1, 1, 2]; R = 1
        // -> [1 + 0.25, 1 + 0.25, 1 - 0.5] = [1.25, 1.25, 0.5]
        let q = token_returns(1.0, &[0.5, 0.25, -0.5], &[1, 1, 2]).unwrap();
        assert_eq!(q, vec![1.25, 1.25, 0.5]);
        assert!(token_returns(1.0, &[0.5], &[]).unwrap().is_empty());
        let e = token_returns(0.0, &[0.5, 0.25], &[1, 2]).unwrap_err();
        assert_eq!(
            e,
            CoreError::IndexOutOfRange {
                what: "step_of_token[1]".into(),
                index: 2,
                len: 2
            }
        );
    }

    #[test]
    fn normalize_ragged_batch_by_hand() {
        // Tokens: 0, 2 | 4 | (empty) | 2, 2  -> N = 5
        // mean = (0+2+4+2+2)/5 = 2
        // population var = (4 + 0 + 4 + 0 + 0)/5 = 1.6, std = 1.264911
        // A = (x - 2)/1.264911 -> 0 -> -1.581139, 4 -> 1.581139, 2 -> 0
        let batch = vec![vec![0.0, 2.0], vec![4.0], vec![], vec![2.0, 2.0]];
        let a = normalize_over_batch(&batch, 0.0);
        let want = [vec![-1.581139, 0.0], vec![1.581139], vec![], vec![0.0, 0.0]];
        assert_eq!(a.len(), want.len());
        for (got, w) in a.iter().zip(&want) {
            assert_eq!(got.len(), w.len());
            for (g, w) in got.iter().zip(w) {
                assert!((g - w).abs() < 1e-5, "{a:?}");
            }
        }
    }

    #[test]
    fn normalize_uses_eps() {
        // [1, 3]: mean 2, population std 1; eps = 1 -> A = ±1/2
        let a = normalize_over_batch(&[vec![1.0], vec![3.0]], 1.0);
        assert_eq!(a, vec![vec![-0.5], vec![0.5]]);
    }

    #[test]
    fn normalize_edge_cases() {
        assert!(normalize_over_batch(&[], 1e-6).is_empty());
        assert_eq!(
            normalize_over_batch(&[vec![], vec![]], 1e-6),
            vec![Vec::<f32>::new(), vec![]]
        );
        // All equal (even with eps = 0): zeros, no NaN.
        assert_eq!(
            normalize_over_batch(&[vec![0.1, 0.1], vec![0.1]], 0.0),
            vec![vec![0.0, 0.0], vec![0.0]]
        );
        // A single token is trivially all equal.
        assert_eq!(normalize_over_batch(&[vec![3.0]], 1e-6), vec![vec![0.0]]);
        // A negative eps cancelling the std gives zeros, not infinities:
        // [0, 2] has std 1, eps = -1 -> denominator 0.
        assert_eq!(
            normalize_over_batch(&[vec![0.0, 2.0]], -1.0),
            vec![vec![0.0, 0.0]]
        );
    }

    #[test]
    fn broadcast_copies_values() {
        let b = broadcast_to_tokens(&[0.5, -1.0, 2.0], &[2, 0, 1]).unwrap();
        assert_eq!(b, vec![vec![0.5, 0.5], vec![], vec![2.0]]);
        assert!(broadcast_to_tokens(&[], &[]).unwrap().is_empty());
        let e = broadcast_to_tokens(&[0.5], &[1, 2]).unwrap_err();
        assert_eq!(e, CoreError::length("lengths", 1, 2));
    }

    proptest! {
        #[test]
        fn normalized_batch_has_zero_mean_unit_std(
            batch in proptest::collection::vec(proptest::collection::vec(-10.0f32..10.0, 0..6), 1..6),
        ) {
            let flat: Vec<f32> = batch.iter().flatten().copied().collect();
            prop_assume!(flat.iter().any(|&x| (x - flat[0]).abs() > 1e-3));
            let a = normalize_over_batch(&batch, 0.0);
            for (seq, out) in batch.iter().zip(&a) {
                prop_assert_eq!(seq.len(), out.len());
            }
            let out: Vec<f64> = a.iter().flatten().map(|&x| f64::from(x)).collect();
            let n = out.len() as f64;
            let mean = out.iter().sum::<f64>() / n;
            let std = (out.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
            prop_assert!(mean.abs() < 1e-5, "mean = {}", mean);
            prop_assert!((std - 1.0).abs() < 1e-4, "std = {}", std);
        }

        #[test]
        fn every_token_step_is_within_k(n in 0usize..1000, step in 1usize..300) {
            let k = num_chunk_steps(n, step).unwrap();
            let steps = chunk_step_of_tokens(n, step).unwrap();
            prop_assert_eq!(steps.len(), n);
            prop_assert!(steps.iter().all(|&s| (1..=k).contains(&s)));
            prop_assert_eq!(steps.last().copied().unwrap_or(0), k);
        }
    }

    fn close(a: &[Vec<f32>], b: &[Vec<f32>]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.len(), y.len(), "{a:?} vs {b:?}");
            for (u, v) in x.iter().zip(y) {
                assert!((u - v).abs() < 1e-4, "{a:?} vs {b:?}");
            }
        }
    }

    const OPTS: AdvantageOptions = AdvantageOptions {
        eps: 0.0,
        grpo_norm_by_std: true,
        whiten: Whiten::Batch,
    };

    #[test]
    fn grpo_token_advantages_by_hand() {
        // Group 0: rewards 1, 0 (mean 0.5, sample std 0.7071); group 1: all 1.
        let steps = [vec![1, 1], vec![1], vec![1], vec![1, 1, 2]];
        let batch = AdvantageBatch {
            rewards: &[1.0, 0.0, 1.0, 1.0],
            groups: &[0, 0, 1, 1],
            step_of_token: &steps,
            values: &[],
        };
        let a = token_advantages(AdvEstimator::Grpo, &batch, &OPTS).unwrap();
        let h = std::f32::consts::FRAC_1_SQRT_2;
        close(&a, &[vec![h, h], vec![-h], vec![0.0], vec![0.0; 3]]);
    }

    #[test]
    fn barl_token_advantages_by_hand() {
        // q = R + V(k): [1 + 0.5, 1 + 0.0] and [0 + 0.2]; mean 0.9, deviations
        // 0.6, 0.1, -0.7, population std sqrt(0.86 / 3) = 0.53541.
        let steps = [vec![0, 1], vec![0]];
        let values = [vec![0.5, 0.0], vec![0.2]];
        let batch = AdvantageBatch {
            rewards: &[1.0, 0.0],
            groups: &[0, 1],
            step_of_token: &steps,
            values: &values,
        };
        let a = token_advantages(AdvEstimator::Barl, &batch, &OPTS).unwrap();
        let sd = (0.86f32 / 3.0).sqrt();
        close(&a, &[vec![0.6 / sd, 0.1 / sd], vec![-0.7 / sd]]);
        // Progress reads its values the same way.
        let p = token_advantages(AdvEstimator::Progress, &batch, &OPTS).unwrap();
        close(&p, &a);
        // Within groups: group 0's two tokens are whitened alone (+1, -1), group
        // 1's single token has nothing to compare with (0).
        let group = AdvantageOptions {
            whiten: Whiten::Group,
            ..OPTS
        };
        let g = token_advantages(AdvEstimator::Barl, &batch, &group).unwrap();
        close(&g, &[vec![1.0, -1.0], vec![0.0]]);
    }

    #[test]
    fn token_advantages_check_their_input() {
        let steps = [vec![1]];
        let batch = AdvantageBatch {
            rewards: &[1.0],
            groups: &[0],
            step_of_token: &steps,
            values: &[],
        };
        // BARL without values, and a step past the last value.
        assert!(matches!(
            token_advantages(AdvEstimator::Barl, &batch, &OPTS),
            Err(CoreError::LengthMismatch { .. })
        ));
        let values = [vec![0.5]];
        let short = AdvantageBatch {
            values: &values,
            ..batch
        };
        assert!(matches!(
            token_advantages(AdvEstimator::Barl, &short, &OPTS),
            Err(CoreError::IndexOutOfRange { .. })
        ));
        let bad = AdvantageBatch {
            groups: &[0, 1],
            ..batch
        };
        assert!(matches!(
            token_advantages(AdvEstimator::Grpo, &bad, &OPTS),
            Err(CoreError::LengthMismatch { .. })
        ));
    }
}
