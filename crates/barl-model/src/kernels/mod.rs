//! CPU kernels the model files call through [`crate::layers`]: fused
//! training ops with a backward (`grad_ops`), a matmul for the few rows of
//! a decode step (`few_rows`) and an exp that vectorises (`exp_f32`). Each
//! falls back to plain candle ops (in `layers`) off the CPU or for other dtypes.

/// `y = x / sqrt(mean(x^2) + eps) * w` for one row (the forward of the
/// fused RMS norm and of the decode step).
pub(crate) fn rms_norm_row(y: &mut [f32], x: &[f32], w: &[f32], eps: f64) {
    let ms = x.iter().map(|&v| v * v).sum::<f32>() / w.len() as f32;
    let r = 1.0 / (ms + eps as f32).sqrt();
    for ((o, &v), &wi) in y.iter_mut().zip(x).zip(w) {
        *o = v * r * wi;
    }
}

/// `e^x` to within 2 ulp (checked against f64 in a test), written without
/// branches or calls so that loops over it vectorise, unlike `f32::exp`
/// (a libm call per element). `e^x = 2^n e^r`, `n = round(x / ln 2)`,
/// `r = x - n ln 2` in `[-ln2/2, ln2/2]` (two-part ln 2), `e^r` by its
/// Taylor series to degree 7 (error below 4e-9); 0 below -87.3 (where
/// `2^n` leaves the normal range), +inf above 88.7 (e^88.72 overflows).
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-87.3, 88.7);
    let n = (xc * LOG2E + ROUND) - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // 2^n for n up to 128 (x up to 88.7): 2^(n-1) * 2 when n is 128.
    let (ni, hi) = (n as i32, (n > 127.5) as i32);
    let y = p * f32::from_bits(((ni + 127 - hi) << 23) as u32) * (1 + hi) as f32;
    if x < -87.3 {
        0.0
    } else if x > 88.7 {
        f32::INFINITY
    } else {
        y
    }
}

/// `out[i] = exp_f32((z[i] - shift) * scale)`, compiled for AVX2 when the
/// CPU has it (the sampler's softmax numerators over the whole vocabulary).
pub(crate) fn exp_shifted(z: &[f32], shift: f32, scale: f32, out: &mut [f32]) {
    #[inline(always)]
    fn plain(z: &[f32], shift: f32, scale: f32, out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(z) {
            *o = exp_f32((x - shift) * scale);
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2(z: &[f32], shift: f32, scale: f32, out: &mut [f32]) {
            plain(z, shift, scale, out)
        }
        if has_avx2() {
            // SAFETY: AVX2 and FMA were detected.
            return unsafe { avx2(z, shift, scale, out) };
        }
    }
    plain(z, shift, scale, out)
}

/// Whether the CPU has AVX2 and FMA (cached by std).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

pub(crate) mod grad_ops;

pub(crate) mod few_rows;

#[cfg(test)]
mod tests {
    #[test]
    fn exp_f32_is_within_two_ulp_of_the_f64_exponential() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.5 {
            let want = (x as f64).exp();
            let got = super::exp_f32(x) as f64;
            // One ulp of an f32 near `want`.
            let ulp = 2f64.powi(want.log2().floor() as i32 - 23);
            worst = worst.max((got - want).abs() / ulp);
            x += 0.000_731;
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(super::exp_f32(0.0), 1.0);
        assert_eq!(super::exp_f32(-100.0), 0.0);
        assert_eq!(super::exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(super::exp_f32(100.0), f32::INFINITY);
        let z = [0.5f32, -3.0, 2.0, 7.25, -1e4];
        let mut out = [0f32; 5];
        super::exp_shifted(&z, 2.0, 0.5, &mut out);
        for (o, &v) in out.iter().zip(&z) {
            let want = (((v - 2.0) * 0.5) as f64).exp();
            assert!(
                (*o as f64 - want).abs() <= 3e-7 * want,
                "{v}: {o} vs {want}"
            );
        }
    }
}
