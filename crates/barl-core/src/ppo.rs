//! Policy losses on candle tensors: PPO-clip, its aggregation over tokens and
//! sequences, and per-token KL estimates (spec sections 3 and 7).
//!
//! Every tensor is `(B, T)`: `B` sequences padded to `T` tokens, on one device.
//! `mask` is 1.0 for response tokens and 0.0 for padding. Only `logp` (the current
//! policy's token log-probabilities) carries gradients; the other inputs are
//! detached, so passing tensors that happen to be on the autograd graph is safe.

use candle_core::{bail, DType, Tensor};

crate::named_enum! {
    /// How per-token losses are reduced to one scalar.
    pub enum LossAggMode ("loss aggregation mode") {
        /// Mean over all response tokens of the batch (long sequences weigh more).
        TokenMean = "token-mean",
        /// Mean over each sequence's tokens, then over sequences (the reference).
        SeqMeanTokenMean = "seq-mean-token-mean",
        /// Sum over each sequence's tokens, then mean over sequences.
        SeqMeanTokenSum = "seq-mean-token-sum",
    }
}

crate::named_enum! {
    /// Which sample estimator of `KL(pi || pi_ref)` [`kl_penalty`] uses.
    pub enum KlEstimator ("KL estimator") {
        /// `log_ratio`: unbiased, high variance, can be negative.
        K1 = "k1",
        /// `0.5 * log_ratio^2`: biased, low variance, `>= 0`.
        K2 = "k2",
        /// `exp(-log_ratio) + log_ratio - 1`: unbiased, low variance, `>= 0`.
        K3 = "k3",
    }
}

/// Reduces a `(B, T)` per-token loss to a scalar (rank-0) tensor.
///
/// With `l` = `loss`, `m` = `mask` and `n_j = sum_t m[j, t]`:
///
/// ```text
/// token-mean:          sum_{j,t} l*m / max(sum_j n_j, 1)
/// seq-mean-token-mean: mean over {j : n_j > 0} of (sum_t l[j,t]*m[j,t] / n_j)
/// seq-mean-token-sum:  mean over {j : n_j > 0} of  sum_t l[j,t]*m[j,t]
/// ```
///
/// Sequences without tokens are left out of the sequence means; with no token at
/// all every mode gives 0. The result is differentiable with respect to `loss`:
/// the mask only enters through products and constant divisors.
///
/// # Errors
/// If `loss` is not rank 2 or `mask` does not have its shape, or on a device error.
pub fn aggregate_loss(
    loss: &Tensor,
    mask: &Tensor,
    mode: LossAggMode,
) -> candle_core::Result<Tensor> {
    let (batch, _) = check_2d("loss", loss)?;
    check_same_shape("mask", mask, "loss", loss)?;
    let mask = mask.detach().to_dtype(loss.dtype())?;
    let masked = loss.mul(&mask)?;
    let tokens_per_seq = row_sums(&mask)?;

    if mode == LossAggMode::TokenMean {
        let total: f64 = tokens_per_seq.iter().sum();
        return masked.sum_all()?.affine(1.0 / total.max(1.0), 0.0);
    }
    // Sequence modes: a weighted sum of per-sequence sums, with weight 0 for empty
    // sequences so that they drop out of the mean.
    let non_empty = tokens_per_seq.iter().filter(|&&n| n > 0.0).count();
    // Built in f32, which every device supports, then cast to the loss's dtype.
    let weights: Vec<f32> = tokens_per_seq
        .iter()
        .map(|&n| {
            let w = if n <= 0.0 {
                0.0
            } else if mode == LossAggMode::SeqMeanTokenMean {
                1.0 / (n * non_empty as f64)
            } else {
                1.0 / non_empty as f64
            };
            w as f32
        })
        .collect();
    let weights = Tensor::from_vec(weights, batch, loss.device())?.to_dtype(loss.dtype())?;
    masked.sum(1)?.mul(&weights)?.sum_all()
}

/// The PPO-clip loss with its diagnostics.
#[derive(Debug, Clone)]
pub struct PpoLoss {
    /// Aggregated loss, a scalar (rank-0) tensor differentiable through `logp`.
    pub loss: Tensor,
    /// Share of response tokens whose gradient the clip cuts.
    pub clip_frac: f32,
    /// Masked token mean of `old_logp - logp` (the k1 estimate of `KL(old || new)`).
    pub approx_kl: f32,
}

/// PPO-clip policy loss (spec section 3).
///
/// Per token, with `A` the advantage:
///
/// ```text
/// ratio = exp(logp - old_logp)
/// l_t   = -min(ratio * A, clip(ratio, 1 - clip_low, 1 + clip_high) * A)
/// ```
///
/// then reduced with [`aggregate_loss`] under `mode`. The reference uses
/// `clip_low = clip_high = 0.2` and `seq-mean-token-mean`.
///
/// - Gradients flow through `logp` only (`old_logp`, `advantages` and `mask` are
///   detached). Where the clipped branch is *strictly* the minimum, the token's
///   gradient is exactly 0; elsewhere `d l_t / d logp_t = -A * ratio` (also at the
///   clip boundary, where both branches are equal).
/// - `clip_frac`: the mask-weighted share of tokens where the clipped branch is
///   strictly the minimum (0 if the mask is empty).
/// - `approx_kl`: the mask-weighted mean of `old_logp - logp` (0 if the mask is
///   empty).
///
/// # Errors
/// If the inputs are not all `(B, T)` of one shape, if `clip_low` or `clip_high`
/// is negative or not finite, or on a device error.
pub fn ppo_clip_loss(
    logp: &Tensor,
    old_logp: &Tensor,
    advantages: &Tensor,
    mask: &Tensor,
    clip_low: f64,
    clip_high: f64,
    mode: LossAggMode,
) -> candle_core::Result<PpoLoss> {
    check_2d("logp", logp)?;
    check_same_shape("old_logp", old_logp, "logp", logp)?;
    check_same_shape("advantages", advantages, "logp", logp)?;
    check_same_shape("mask", mask, "logp", logp)?;
    for (name, value) in [("clip_low", clip_low), ("clip_high", clip_high)] {
        if !(value.is_finite() && value >= 0.0) {
            bail!("{name} must be finite and >= 0, got {value}");
        }
    }
    let old_logp = old_logp.detach();
    let advantages = advantages.detach();
    let mask = mask.detach();

    let log_ratio = logp.sub(&old_logp)?;
    let ratio = log_ratio.exp()?;
    let unclipped = ratio.mul(&advantages)?;
    // Built from the detached ratio: where this branch wins strictly, the ratio is
    // outside the clip range and the objective is flat in logp anyway. Selecting it
    // with `where_cond` (rather than `minimum`, which splits the gradient of ties in
    // half) gives the exact gradient at the clip boundary too.
    let clipped = ratio
        .detach()
        .clamp(1.0 - clip_low, 1.0 + clip_high)?
        .mul(&advantages)?;
    let cut = clipped.lt(&unclipped)?;
    let per_token = cut.where_cond(&clipped, &unclipped)?.neg()?;
    let loss = aggregate_loss(&per_token, &mask, mode)?;

    let clip_frac = masked_mean(&cut, &mask)?;
    let approx_kl = masked_mean(&log_ratio.detach().neg()?, &mask)?;
    Ok(PpoLoss {
        loss,
        clip_frac,
        approx_kl,
    })
}

/// Per-token sample estimates of `KL(pi || pi_ref)` from tokens sampled from `pi`,
/// with `log_ratio = logp - ref_logp`:
///
/// ```text
/// k1 = log_ratio
/// k2 = 0.5 * log_ratio^2
/// k3 = exp(-log_ratio) + log_ratio - 1      (Schulman's unbiased estimator, >= 0)
/// ```
///
/// Elementwise, shape `(B, T)`, differentiable through `logp` (`ref_logp` is
/// detached). Masking and aggregation are left to the caller (e.g. add
/// `coef * kl` to the per-token loss before [`aggregate_loss`]).
///
/// # Errors
/// If `logp` is not rank 2 or `ref_logp` does not have its shape, or on a device
/// error.
pub fn kl_penalty(
    logp: &Tensor,
    ref_logp: &Tensor,
    kind: KlEstimator,
) -> candle_core::Result<Tensor> {
    check_2d("logp", logp)?;
    check_same_shape("ref_logp", ref_logp, "logp", logp)?;
    let log_ratio = logp.sub(&ref_logp.detach())?;
    match kind {
        KlEstimator::K1 => Ok(log_ratio),
        KlEstimator::K2 => log_ratio.sqr()?.affine(0.5, 0.0),
        KlEstimator::K3 => log_ratio.neg()?.exp()?.add(&log_ratio)?.affine(1.0, -1.0),
    }
}

/// `sum(x * m) / sum(m)` as a plain number, 0 when `sum(m) <= 0`.
fn masked_mean(x: &Tensor, mask: &Tensor) -> candle_core::Result<f32> {
    let mask = mask.to_dtype(DType::F32)?;
    let total: f64 = row_sums(&mask)?.iter().sum();
    if total <= 0.0 {
        return Ok(0.0);
    }
    let sum: f64 = row_sums(&x.to_dtype(DType::F32)?.mul(&mask)?)?.iter().sum();
    Ok((sum / total) as f32)
}

/// Per-row sums of a `(B, T)` tensor as host `f64`s. Rows are summed on the
/// device in `f32` (every device supports it; token counts stay exact below
/// 2^24 per row) and the rows are combined on the host in `f64`.
fn row_sums(t: &Tensor) -> candle_core::Result<Vec<f64>> {
    let sums = t.to_dtype(DType::F32)?.sum(1)?.to_vec1::<f32>()?;
    Ok(sums.into_iter().map(f64::from).collect())
}

fn check_2d(name: &str, t: &Tensor) -> candle_core::Result<(usize, usize)> {
    match t.dims() {
        &[b, len] => Ok((b, len)),
        dims => bail!("{name} must be a (B, T) tensor, got shape {dims:?}"),
    }
}

fn check_same_shape(
    name: &str,
    t: &Tensor,
    ref_name: &str,
    reference: &Tensor,
) -> candle_core::Result<()> {
    if t.dims() != reference.dims() {
        bail!(
            "{name} has shape {:?} but {ref_name} has shape {:?}; they must match",
            t.dims(),
            reference.dims()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use serde::de::value::{Error as DeError, StrDeserializer};
    use serde::Deserialize;

    fn t2(rows: &[[f32; 3]]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_vec(flat, (rows.len(), 3), &Device::Cpu).unwrap()
    }

    /// A tensor that is a trainable leaf (as `Var` makes it).
    fn variable(rows: &[[f32; 3]]) -> Tensor {
        Var::from_tensor(&t2(rows)).unwrap().as_tensor().clone()
    }

    fn scalar(t: &Tensor) -> f32 {
        assert_eq!(t.rank(), 0, "expected a scalar, got shape {:?}", t.dims());
        t.to_scalar::<f32>().unwrap()
    }

    fn assert_close(got: f32, want: f32, tol: f32) {
        assert!((got - want).abs() <= tol, "got {got}, want {want}");
    }

    fn assert_rows_close(got: &Tensor, want: &[[f32; 3]], tol: f32) {
        let got = got.to_vec2::<f32>().unwrap();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            for (a, b) in g.iter().zip(w) {
                assert!((a - b).abs() <= tol, "got {got:?}, want {want:?}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for v in LossAggMode::ALL {
            assert_eq!(v.to_string().parse::<LossAggMode>().unwrap(), v);
            let de = LossAggMode::deserialize(StrDeserializer::<DeError>::new(v.name())).unwrap();
            assert_eq!(de, v);
        }
        assert_eq!(LossAggMode::TokenMean.to_string(), "token-mean");
        assert_eq!(
            LossAggMode::SeqMeanTokenMean.to_string(),
            "seq-mean-token-mean"
        );
        assert_eq!(
            LossAggMode::SeqMeanTokenSum.to_string(),
            "seq-mean-token-sum"
        );
        for v in KlEstimator::ALL {
            assert_eq!(v.to_string().parse::<KlEstimator>().unwrap(), v);
            let de = KlEstimator::deserialize(StrDeserializer::<DeError>::new(v.name())).unwrap();
            assert_eq!(de, v);
        }
        assert_eq!(
            ["k1", "k2", "k3"].map(|s| s.parse::<KlEstimator>().unwrap()),
            [KlEstimator::K1, KlEstimator::K2, KlEstimator::K3]
        );
    }

    #[test]
    fn bad_names_list_valid_ones() {
        let e = "mean".parse::<LossAggMode>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown loss aggregation mode `mean`; valid names are: token-mean, seq-mean-token-mean, seq-mean-token-sum"
        );
        let e = "K3".parse::<KlEstimator>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown KL estimator `K3`; valid names are: k1, k2, k3"
        );
    }

    #[test]
    fn aggregate_all_modes_by_hand() {
        let loss = t2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        let mask = t2(&[[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]);
        // token-mean: (1 + 2 + 4) / 3 = 2.333333
        let v = aggregate_loss(&loss, &mask, LossAggMode::TokenMean).unwrap();
        assert_close(scalar(&v), 2.333333, 1e-6);
        // seq-mean-token-mean: row 0 (1+2)/2 = 1.5, row 1 4/1 = 4 -> (1.5+4)/2 = 2.75
        let v = aggregate_loss(&loss, &mask, LossAggMode::SeqMeanTokenMean).unwrap();
        assert_close(scalar(&v), 2.75, 1e-6);
        // seq-mean-token-sum: row 0 1+2 = 3, row 1 4 -> (3+4)/2 = 3.5
        let v = aggregate_loss(&loss, &mask, LossAggMode::SeqMeanTokenSum).unwrap();
        assert_close(scalar(&v), 3.5, 1e-6);
    }

    #[test]
    fn aggregate_skips_empty_sequences() {
        let loss = t2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        let mask = t2(&[[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]);
        // Only row 0 counts: token-mean (1+2)/2 = 1.5; seq-mean-token-mean 1.5;
        // seq-mean-token-sum 3 (not 3/2: the empty row is not a sequence to average).
        let want = [1.5, 1.5, 3.0];
        for (mode, want) in LossAggMode::ALL.into_iter().zip(want) {
            let v = aggregate_loss(&loss, &mask, mode).unwrap();
            assert_close(scalar(&v), want, 1e-6);
        }
    }

    #[test]
    fn aggregate_of_no_tokens_is_zero() {
        let loss = t2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        let mask = t2(&[[0.0; 3], [0.0; 3]]);
        for mode in LossAggMode::ALL {
            let v = aggregate_loss(&loss, &mask, mode).unwrap();
            assert_eq!(scalar(&v), 0.0, "{mode}");
        }
        // A batch with no rows at all.
        let empty = Tensor::zeros((0, 3), DType::F32, &Device::Cpu).unwrap();
        for mode in LossAggMode::ALL {
            let v = aggregate_loss(&empty, &empty, mode).unwrap();
            assert_eq!(scalar(&v), 0.0, "{mode}");
        }
    }

    #[test]
    fn aggregate_gradients_by_hand() {
        let loss = Var::from_tensor(&t2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).unwrap();
        let mask = t2(&[[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]);
        // d/dl of token-mean = m / 3.
        // d/dl of seq-mean-token-mean = m_jt / (n_j * 2): row 0 1/4, row 1 1/2.
        // d/dl of seq-mean-token-sum = m_jt / 2.
        let third = 1.0 / 3.0;
        let want = [
            [[third, third, 0.0], [third, 0.0, 0.0]],
            [[0.25, 0.25, 0.0], [0.5, 0.0, 0.0]],
            [[0.5, 0.5, 0.0], [0.5, 0.0, 0.0]],
        ];
        for (mode, want) in LossAggMode::ALL.into_iter().zip(want) {
            let v = aggregate_loss(loss.as_tensor(), &mask, mode).unwrap();
            let grads = v.backward().unwrap();
            assert_rows_close(grads.get(loss.as_tensor()).unwrap(), &want, 1e-6);
        }
    }

    #[test]
    fn aggregate_rejects_bad_shapes() {
        let loss = t2(&[[1.0, 2.0, 3.0]]);
        let e =
            aggregate_loss(&loss, &t2(&[[1.0; 3], [1.0; 3]]), LossAggMode::TokenMean).unwrap_err();
        assert!(
            e.to_string()
                .contains("mask has shape [2, 3] but loss has shape [1, 3]"),
            "{e}"
        );
        let flat = Tensor::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
        let e = aggregate_loss(&flat, &flat, LossAggMode::TokenMean).unwrap_err();
        assert!(
            e.to_string()
                .contains("loss must be a (B, T) tensor, got shape [2]"),
            "{e}"
        );
    }

    /// Six tokens covering every case of the clip, old_logp = -1 everywhere:
    ///
    /// | token | ratio | A  | ratio*A | clip*A | min  | l_t  | clipped? | dl_t/dlogp = -A*ratio or 0 |
    /// |-------|-------|----|---------|--------|------|------|----------|-----------|
    /// | 0,0   | 1.1   | +1 |  1.1    |  1.1   | 1.1  | -1.1 | no (tie) | -1.1      |
    /// | 0,1   | 1.5   | +1 |  1.5    |  1.2   | 1.2  | -1.2 | yes      | 0         |
    /// | 0,2   | 1.5   | -1 | -1.5    | -1.2   | -1.5 |  1.5 | no       | 1.5       |
    /// | 1,0   | 0.5   | +1 |  0.5    |  0.8   | 0.5  | -0.5 | no       | -0.5      |
    /// | 1,1   | 0.5   | -1 | -0.5    | -0.8   | -0.8 |  0.8 | yes      | 0         |
    /// | 1,2   | 1.1   | -2 | -2.2    | -2.2   | -2.2 |  2.2 | no (tie) | 2.2       |
    fn six_tokens() -> (Var, Tensor, Tensor) {
        let ln = |r: f32| -1.0 + r.ln();
        let logp = Var::from_tensor(&t2(&[
            [ln(1.1), ln(1.5), ln(1.5)],
            [ln(0.5), ln(0.5), ln(1.1)],
        ]))
        .unwrap();
        // Variables too, so tests can check that no gradient reaches them.
        let old = variable(&[[-1.0; 3], [-1.0; 3]]);
        let adv = variable(&[[1.0, 1.0, -1.0], [1.0, -1.0, -2.0]]);
        (logp, old, adv)
    }

    /// [`six_tokens`] under `mask` through `ppo_clip_loss`, clip 0.2 both sides.
    fn six_token_loss(mask: [[f32; 3]; 2], mode: LossAggMode) -> (Var, Tensor, Tensor, PpoLoss) {
        let (logp, old, adv) = six_tokens();
        let out = ppo_clip_loss(logp.as_tensor(), &old, &adv, &t2(&mask), 0.2, 0.2, mode).unwrap();
        (logp, old, adv, out)
    }

    #[test]
    fn ppo_clip_by_hand_token_mean() {
        let (logp, old, adv, out) = six_token_loss([[1.0; 3], [1.0; 3]], LossAggMode::TokenMean);
        // loss = (-1.1 - 1.2 + 1.5 - 0.5 + 0.8 + 2.2) / 6 = 1.7 / 6 = 0.283333
        assert_close(scalar(&out.loss), 0.283333, 1e-5);
        // 2 of 6 tokens clipped.
        assert_close(out.clip_frac, 0.333333, 1e-6);
        // approx_kl = mean(-ln ratio) = -2 (ln 1.1 + ln 1.5 + ln 0.5) / 6
        //           = -2 (0.095310 + 0.405465 - 0.693147) / 6 = 0.064124
        assert_close(out.approx_kl, 0.064124, 1e-5);
        // Gradient: the table's last column divided by 6 tokens.
        let grads = out.loss.backward().unwrap();
        let g = grads.get(logp.as_tensor()).unwrap();
        assert_rows_close(
            g,
            &[[-0.183333, 0.0, 0.25], [-0.083333, 0.0, 0.366667]],
            1e-5,
        );
        // No gradient reaches old_logp or the advantages, though both are variables.
        assert!(grads.get(&old).is_none());
        assert!(grads.get(&adv).is_none());
    }

    #[test]
    fn ppo_clip_masked_seq_mean() {
        // Mask out tokens (0,2) and (1,2).
        let (logp, _, _, out) = six_token_loss(
            [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]],
            LossAggMode::SeqMeanTokenMean,
        );
        // row 0: (-1.1 - 1.2)/2 = -1.15; row 1: (-0.5 + 0.8)/2 = 0.15
        // loss = (-1.15 + 0.15)/2 = -0.5
        assert_close(scalar(&out.loss), -0.5, 1e-5);
        // Clipped among the 4 kept tokens: (0,1) and (1,1) -> 0.5
        assert_close(out.clip_frac, 0.5, 1e-6);
        // approx_kl = -(ln 1.1 + ln 1.5 + 2 ln 0.5)/4
        //           = -(0.095310 + 0.405465 - 1.386294)/4 = 0.221380
        assert_close(out.approx_kl, 0.221380, 1e-5);
        // Gradient = -A*ratio (or 0) / (n_j * 2 sequences) = /4 on kept tokens:
        // row 0: [-1.1/4, 0, 0] = [-0.275, 0, 0]; row 1: [-0.5/4, 0, 0] = [-0.125, 0, 0]
        let grads = out.loss.backward().unwrap();
        assert_rows_close(
            grads.get(logp.as_tensor()).unwrap(),
            &[[-0.275, 0.0, 0.0], [-0.125, 0.0, 0.0]],
            1e-5,
        );
    }

    #[test]
    fn ppo_asymmetric_clip() {
        // ratio = 1.25, A = +1. With clip_high = 0.28 the ratio is inside the range:
        // l = -1.25, not clipped, gradient -1.25. With clip_high = 0.2: l = -1.2,
        // clipped, gradient 0.
        let logp = Var::from_tensor(&t2(&[[1.25f32.ln(), 0.0, 0.0]])).unwrap();
        let zeros = t2(&[[0.0; 3]]);
        let adv = t2(&[[1.0, 0.0, 0.0]]);
        let mask = t2(&[[1.0, 0.0, 0.0]]);
        let cases = [(0.28, -1.25, 0.0, -1.25), (0.2, -1.2, 1.0, 0.0)];
        for (clip_high, want_loss, want_frac, want_grad) in cases {
            let out = ppo_clip_loss(
                logp.as_tensor(),
                &zeros,
                &adv,
                &mask,
                0.2,
                clip_high,
                LossAggMode::TokenMean,
            )
            .unwrap();
            assert_close(scalar(&out.loss), want_loss, 1e-5);
            assert_close(out.clip_frac, want_frac, 1e-6);
            let grads = out.loss.backward().unwrap();
            assert_rows_close(
                grads.get(logp.as_tensor()).unwrap(),
                &[[want_grad, 0.0, 0.0]],
                1e-5,
            );
        }
    }

    #[test]
    fn ppo_at_ratio_one_is_minus_the_advantage() {
        // logp == old_logp: ratio = 1, l = -A, no clipping, no KL;
        // token-mean over mask = (-(2) - (-1))/2 = -0.5; the masked 100 is ignored.
        let logp = t2(&[[-0.3, -2.0, -0.7]]);
        let adv = t2(&[[2.0, -1.0, 100.0]]);
        let mask = t2(&[[1.0, 1.0, 0.0]]);
        let out =
            ppo_clip_loss(&logp, &logp, &adv, &mask, 0.2, 0.2, LossAggMode::TokenMean).unwrap();
        assert_close(scalar(&out.loss), -0.5, 1e-6);
        assert_eq!(out.clip_frac, 0.0);
        assert_eq!(out.approx_kl, 0.0);
    }

    #[test]
    fn ppo_gradient_is_whole_at_the_clip_boundary() {
        // clip_low = clip_high = 0 puts ratio = 1 exactly on both bounds, so both
        // branches tie at 1*A. The tie is not a cut: l = -A = -2, clip_frac = 0,
        // d l / d logp = -A * ratio = -2 (not a share of it).
        let logp = Var::from_tensor(&t2(&[[0.0; 3]])).unwrap();
        let adv = t2(&[[2.0, 0.0, 0.0]]);
        let mask = t2(&[[1.0, 0.0, 0.0]]);
        let zeros = t2(&[[0.0; 3]]);
        let out = ppo_clip_loss(
            logp.as_tensor(),
            &zeros,
            &adv,
            &mask,
            0.0,
            0.0,
            LossAggMode::TokenMean,
        )
        .unwrap();
        assert_close(scalar(&out.loss), -2.0, 1e-6);
        assert_eq!(out.clip_frac, 0.0);
        let grads = out.loss.backward().unwrap();
        assert_rows_close(
            grads.get(logp.as_tensor()).unwrap(),
            &[[-2.0, 0.0, 0.0]],
            1e-6,
        );
    }

    #[test]
    fn ppo_empty_mask_gives_zeros() {
        let (_, _, _, out) = six_token_loss([[0.0; 3], [0.0; 3]], LossAggMode::SeqMeanTokenSum);
        assert_eq!(scalar(&out.loss), 0.0);
        assert_eq!(out.clip_frac, 0.0);
        assert_eq!(out.approx_kl, 0.0);
    }

    #[test]
    fn ppo_rejects_bad_input() {
        let x = t2(&[[0.0; 3]]);
        let wide = t2(&[[0.0; 3], [0.0; 3]]);
        let e = ppo_clip_loss(&x, &x, &wide, &x, 0.2, 0.2, LossAggMode::TokenMean).unwrap_err();
        assert!(
            e.to_string()
                .contains("advantages has shape [2, 3] but logp has shape [1, 3]"),
            "{e}"
        );
        for (lo, hi) in [(-0.1, 0.2), (0.2, f64::NAN), (0.2, f64::INFINITY)] {
            let e = ppo_clip_loss(&x, &x, &x, &x, lo, hi, LossAggMode::TokenMean).unwrap_err();
            assert!(e.to_string().contains("must be finite and >= 0"), "{e}");
        }
    }

    #[test]
    fn kl_estimators_by_hand() {
        // log_ratio = logp - ref = [0, 1, -1] (ref = 0.5 everywhere).
        let logp = Var::from_tensor(&t2(&[[0.5, 1.5, -0.5]])).unwrap();
        let reference = variable(&[[0.5; 3]]);
        // k1 = [0, 1, -1], d/dlogp = 1
        // k2 = 0.5*lr^2 = [0, 0.5, 0.5], d/dlogp = lr = [0, 1, -1]
        // k3 = exp(-lr) + lr - 1 = [1 + 0 - 1, 0.367879 + 1 - 1, 2.718282 - 1 - 1]
        //    = [0, 0.367879, 0.718282]
        //    d/dlogp = 1 - exp(-lr) = [0, 1 - 0.367879, 1 - 2.718282] = [0, 0.632121, -1.718282]
        let cases = [
            (KlEstimator::K1, [0.0, 1.0, -1.0], [1.0, 1.0, 1.0]),
            (KlEstimator::K2, [0.0, 0.5, 0.5], [0.0, 1.0, -1.0]),
            (
                KlEstimator::K3,
                [0.0, 0.367879, 0.718282],
                [0.0, 0.632121, -1.718282],
            ),
        ];
        for (kind, want, want_grad) in cases {
            let kl = kl_penalty(logp.as_tensor(), &reference, kind).unwrap();
            assert_eq!(kl.dims(), &[1, 3]);
            assert_rows_close(&kl, &[want], 1e-5);
            let grads = kl.sum_all().unwrap().backward().unwrap();
            assert_rows_close(grads.get(logp.as_tensor()).unwrap(), &[want_grad], 1e-5);
            assert!(grads.get(&reference).is_none());
        }
    }

    #[test]
    fn kl_rejects_bad_shapes() {
        let e = kl_penalty(
            &t2(&[[0.0; 3]]),
            &t2(&[[0.0; 3], [0.0; 3]]),
            KlEstimator::K3,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("ref_logp has shape [2, 3] but logp has shape [1, 3]"),
            "{e}"
        );
    }
}
