//! Unbiased pass@k for evaluation (Chen et al. 2021, "Evaluating Large Language
//! Models Trained on Code").

use crate::error::{CoreError, Result};

/// Unbiased estimate of pass@k from `n` samples of which `c` are correct: the
/// probability that a random subset of `k` of the `n` samples contains at least one
/// correct one,
///
/// ```text
/// pass@k = 1 - C(n - c, k) / C(n, k)
///        = 1 - prod_{i = n-c+1}^{n} (1 - k / i)
/// ```
///
/// The product form avoids the huge binomial coefficients. Returns exactly 1.0 when
/// `n - c < k` (every subset of size `k` holds a correct sample) and 0.0 when
/// `c == 0`.
///
/// # Errors
/// [`CoreError::InvalidArgument`] if `k == 0`, `k > n` or `c > n`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Result<f64> {
    if k == 0 {
        return Err(CoreError::invalid("pass@k needs k >= 1, got k = 0"));
    }
    if k > n {
        return Err(CoreError::invalid(format!(
            "pass@k needs k <= n, got k = {k} with n = {n} samples"
        )));
    }
    if c > n {
        return Err(CoreError::invalid(format!(
            "pass@k needs c <= n, got c = {c} correct out of n = {n} samples"
        )));
    }
    if n - c < k {
        return Ok(1.0);
    }
    let k = k as f64;
    let all_wrong: f64 = (n - c + 1..=n).map(|i| 1.0 - k / i as f64).product();
    Ok(1.0 - all_wrong)
}

/// Mean over problems of [`pass_at_k`] for k = 1..=n, from each problem's
/// (samples, correct) counts; problems with fewer than `n` samples are left out
/// (an evaluation cut short), and the curve is all zeros when none is left.
///
/// ```text
/// curve[k-1] = (1/|P|) sum_{p in P} pass@k(m_p, c_p),   P = {p : m_p >= n}
/// ```
pub fn pass_at_k_curve(counts: &[(usize, usize)], n: usize) -> Result<Vec<f64>> {
    let scored: Vec<_> = counts.iter().filter(|(m, _)| *m >= n).collect();
    (1..=n)
        .map(|k| {
            let mut sum = 0.0;
            for &&(m, c) in &scored {
                sum += pass_at_k(m, c, k)?;
            }
            Ok(sum / scored.len().max(1) as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn assert_close(got: f64, want: f64) {
        assert!((got - want).abs() < 1e-12, "got {got}, want {want}");
    }

    #[test]
    fn curve_averages_problems_with_enough_samples() {
        // (2 samples, 1 correct): pass@1 = 0.5, pass@2 = 1; (2, 0): 0, 0;
        // (1, 1) has fewer than n = 2 samples and is left out.
        let curve = pass_at_k_curve(&[(2, 1), (2, 0), (1, 1)], 2).unwrap();
        assert_eq!(curve, vec![0.25, 0.5]);
        assert_eq!(pass_at_k_curve(&[(1, 1)], 2).unwrap(), vec![0.0, 0.0]);
    }

    #[test]
    fn hand_computed_values() {
        // n=5, c=2, k=1: 1 - (1 - 1/4)(1 - 1/5) = 1 - 3/4 * 4/5 = 1 - 0.6 = 0.4 (= c/n)
        assert_close(pass_at_k(5, 2, 1).unwrap(), 0.4);
        // n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
        //   product form: 1 - (1 - 2/4)(1 - 2/5) = 1 - 0.5*0.6 = 0.7
        assert_close(pass_at_k(5, 2, 2).unwrap(), 0.7);
        // n=10, c=3, k=5: 1 - C(7,5)/C(10,5) = 1 - 21/252 = 0.916667
        assert_close(pass_at_k(10, 3, 5).unwrap(), 1.0 - 21.0 / 252.0);
    }

    #[test]
    fn extremes() {
        // No correct sample: 0 for every k.
        assert_eq!(pass_at_k(4, 0, 1).unwrap(), 0.0);
        assert_eq!(pass_at_k(4, 0, 4).unwrap(), 0.0);
        // All correct: 1.
        assert_eq!(pass_at_k(3, 3, 1).unwrap(), 1.0);
        // n - c = 2 < k = 3: every 3-subset holds a correct one.
        assert_eq!(pass_at_k(5, 3, 3).unwrap(), 1.0);
        // k = n with at least one correct: 1.
        assert_eq!(pass_at_k(5, 1, 5).unwrap(), 1.0);
        // Large n stays finite and exact enough: n=1000, c=1, k=1 -> 1/1000.
        assert_close(pass_at_k(1000, 1, 1).unwrap(), 0.001);
    }

    #[test]
    fn rejects_invalid_counts() {
        for (n, c, k) in [(5, 2, 0), (5, 2, 6), (5, 6, 1), (0, 0, 1)] {
            let e = pass_at_k(n, c, k).unwrap_err();
            assert!(matches!(e, CoreError::InvalidArgument(_)), "{e}");
        }
        assert_eq!(
            pass_at_k(5, 2, 6).unwrap_err().to_string(),
            "invalid argument: pass@k needs k <= n, got k = 6 with n = 5 samples"
        );
    }

    proptest! {
        #[test]
        fn in_unit_interval_and_monotone(n in 1usize..60, c_frac in 0.0f64..=1.0, k_frac in 0.0f64..=1.0) {
            let c = ((n as f64) * c_frac).round() as usize;
            let k = (((n as f64) * k_frac).round() as usize).max(1);
            let p = pass_at_k(n, c, k).unwrap();
            prop_assert!((0.0..=1.0).contains(&p), "pass@{} = {}", k, p);
            if k < n {
                let more_k = pass_at_k(n, c, k + 1).unwrap();
                prop_assert!(more_k >= p - 1e-12, "k: {} -> {}", p, more_k);
            }
            if c < n {
                let more_c = pass_at_k(n, c + 1, k).unwrap();
                prop_assert!(more_c >= p - 1e-12, "c: {} -> {}", p, more_c);
            }
        }

        #[test]
        fn pass_at_1_is_the_success_rate(n in 1usize..200, c_frac in 0.0f64..=1.0) {
            let c = ((n as f64) * c_frac).round() as usize;
            let p = pass_at_k(n, c, 1).unwrap();
            prop_assert!((p - c as f64 / n as f64).abs() < 1e-9);
        }
    }
}
