//! GRPO's group baseline: each completion is scored against the other
//! completions sampled for the same prompt (spec section 7).

use std::collections::HashMap;

use crate::error::{CoreError, Result};

/// GRPO group-normalised advantages, one per completion.
///
/// For each group `g` (the completions of one prompt) with rewards `r_j`:
///
/// ```text
/// A_j = (r_j - mean_g) / (std_g + eps)      norm_by_std = true  (GRPO)
/// A_j =  r_j - mean_g                       norm_by_std = false (Dr.GRPO)
/// ```
///
/// `std_g` is the *sample* standard deviation (denominator `n_g - 1`).
///
/// - `rewards[j]` and `group_ids[j]` describe completion `j`; both slices must have
///   the same length. A group id is any `usize` label and the members of a group
///   need not be contiguous.
/// - A group with a single member gets advantage 0 (its sample std is undefined and
///   there is nothing to compare it with).
/// - A group whose rewards are all equal gets advantage 0 in both modes, whatever
///   `eps` is (no `0 / 0`).
/// - `eps` must be finite and `>= 0`.
///
/// Statistics are accumulated in `f64`. The output has the same length and order
/// as `rewards`.
pub fn group_normalized_advantages(
    rewards: &[f32],
    group_ids: &[usize],
    norm_by_std: bool,
    eps: f32,
) -> Result<Vec<f32>> {
    if group_ids.len() != rewards.len() {
        return Err(CoreError::length(
            "group_ids",
            rewards.len(),
            group_ids.len(),
        ));
    }
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(CoreError::invalid(format!(
            "eps must be finite and >= 0, got {eps}"
        )));
    }

    // Collect each group's rewards, keyed by label.
    let mut groups: HashMap<usize, Vec<f64>> = HashMap::new();
    for (&r, &g) in rewards.iter().zip(group_ids) {
        groups.entry(g).or_default().push(f64::from(r));
    }
    let stats: HashMap<usize, GroupStats> = groups
        .into_iter()
        .map(|(g, rs)| (g, GroupStats::of(&rs)))
        .collect();

    let advantages = rewards
        .iter()
        .zip(group_ids)
        .map(|(&r, g)| {
            let s = &stats[g];
            if s.degenerate {
                return 0.0;
            }
            let centred = f64::from(r) - s.mean;
            let a = if norm_by_std {
                centred / (s.sample_std + f64::from(eps))
            } else {
                centred
            };
            a as f32
        })
        .collect();
    Ok(advantages)
}

/// Mean and sample std of one group, plus whether its advantages are all zero by
/// definition.
struct GroupStats {
    mean: f64,
    sample_std: f64,
    /// One member, or all members equal. Checked exactly rather than via
    /// `std == 0`, because rounding in the mean can leave a tiny non-zero std and
    /// a tiny/tiny quotient of arbitrary size when `eps` is 0.
    degenerate: bool,
}

impl GroupStats {
    fn of(rs: &[f64]) -> Self {
        let n = rs.len() as f64;
        let mean = rs.iter().sum::<f64>() / n;
        let all_equal = rs.iter().all(|&r| r == rs[0]);
        if rs.len() < 2 || all_equal {
            return GroupStats {
                mean,
                sample_std: 0.0,
                degenerate: true,
            };
        }
        let ss: f64 = rs.iter().map(|r| (r - mean).powi(2)).sum();
        GroupStats {
            mean,
            sample_std: (ss / (n - 1.0)).sqrt(),
            degenerate: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_close;
    use proptest::prelude::*;

    #[test]
    fn two_groups_non_contiguous() {
        // Group 7: rewards at positions 0, 2, 4, 5 = [1, 0, 0, 1]
        //   mean = 2/4 = 0.5; deviations ±0.5; sample var = 4*0.25/3 = 1/3;
        //   sample std = 0.577350; A = ±0.5/0.577350 = ±0.866025.
        // Group 3: rewards at positions 1, 3 = [1, 0]
        //   mean = 0.5; sample var = 2*0.25/1 = 0.5; std = 0.707107;
        //   A = ±0.5/0.707107 = ±0.707107 = ±1/sqrt(2).
        const H: f32 = std::f32::consts::FRAC_1_SQRT_2;
        let rewards = [1.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let ids = [7, 3, 7, 3, 7, 7];
        let a = group_normalized_advantages(&rewards, &ids, true, 0.0).unwrap();
        assert_close(&a, &[0.866025, H, -0.866025, -H, -0.866025, 0.866025], 1e-5);
    }

    #[test]
    fn eps_is_added_to_the_std() {
        // [2, 0]: mean 1, sample std = sqrt((1+1)/1) = 1.414214;
        // eps = 0.5 -> A = ±1 / 1.914214 = ±0.522408.
        let a = group_normalized_advantages(&[2.0, 0.0], &[0, 0], true, 0.5).unwrap();
        assert_close(&a, &[0.522408, -0.522408], 1e-5);
    }

    #[test]
    fn dr_grpo_only_centres() {
        // Group 0: [1, 0, 0] mean = 1/3 -> [0.666667, -0.333333, -0.333333]
        // Group 1: [3, 1] mean = 2 -> [1, -1]
        let a =
            group_normalized_advantages(&[1.0, 3.0, 0.0, 1.0, 0.0], &[0, 1, 0, 1, 0], false, 1e-6)
                .unwrap();
        assert_close(&a, &[0.666667, 1.0, -0.333333, -1.0, -0.333333], 1e-5);
    }

    #[test]
    fn single_member_group_gets_zero() {
        // Group 5 has one member -> 0 in both modes; group 1 is [1, 0] -> ±0.707107
        // (= ±1/sqrt(2), as in `two_groups_non_contiguous`).
        const H: f32 = std::f32::consts::FRAC_1_SQRT_2;
        let r = [0.7, 1.0, 0.0];
        let ids = [5, 1, 1];
        let a = group_normalized_advantages(&r, &ids, true, 0.0).unwrap();
        assert_close(&a, &[0.0, H, -H], 1e-5);
        let a = group_normalized_advantages(&r, &ids, false, 0.0).unwrap();
        assert_close(&a, &[0.0, 0.5, -0.5], 1e-6);
    }

    #[test]
    fn all_equal_group_gets_exact_zero_even_with_zero_eps() {
        // 0.1 is not exactly representable; the check must not depend on the mean
        // reproducing it bit for bit.
        let a = group_normalized_advantages(&[0.1, 0.1, 0.1], &[0, 0, 0], true, 0.0).unwrap();
        assert_eq!(a, vec![0.0, 0.0, 0.0]);
        let a = group_normalized_advantages(&[1.0, 1.0], &[2, 2], false, 0.0).unwrap();
        assert_eq!(a, vec![0.0, 0.0]);
    }

    #[test]
    fn empty_input_gives_empty_output() {
        assert!(group_normalized_advantages(&[], &[], true, 1e-6)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn rejects_bad_input() {
        let e = group_normalized_advantages(&[1.0, 0.0], &[0], true, 1e-6).unwrap_err();
        assert_eq!(e, CoreError::length("group_ids", 2, 1));
        for eps in [-1e-6, f32::NAN, f32::INFINITY] {
            let e = group_normalized_advantages(&[1.0], &[0], true, eps).unwrap_err();
            assert!(matches!(e, CoreError::InvalidArgument(_)), "{e}");
        }
    }

    proptest! {
        #[test]
        fn advantages_sum_to_zero_per_group(
            items in proptest::collection::vec((0.0f32..1.0, 0usize..4), 0..40),
            norm in any::<bool>(),
        ) {
            let (rewards, ids): (Vec<f32>, Vec<usize>) = items.into_iter().unzip();
            let a = group_normalized_advantages(&rewards, &ids, norm, 1e-6).unwrap();
            prop_assert_eq!(a.len(), rewards.len());
            for g in 0..4 {
                let sum: f64 = a.iter().zip(&ids).filter(|(_, &i)| i == g).map(|(&x, _)| f64::from(x)).sum();
                prop_assert!(sum.abs() < 1e-4, "group {} sums to {}", g, sum);
            }
        }

        #[test]
        fn normalised_groups_have_unit_sample_std(
            rewards in proptest::collection::vec(-5.0f32..5.0, 2..20),
        ) {
            prop_assume!(rewards.iter().any(|&r| (r - rewards[0]).abs() > 1e-3));
            let ids = vec![0; rewards.len()];
            let a = group_normalized_advantages(&rewards, &ids, true, 0.0).unwrap();
            let n = a.len() as f64;
            let mean = a.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
            let var = a.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / (n - 1.0);
            prop_assert!((var.sqrt() - 1.0).abs() < 1e-3, "std = {}", var.sqrt());
        }
    }
}
