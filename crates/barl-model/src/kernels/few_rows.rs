//! `x W^T` for few rows on the CPU, for decoding.
//!
//! candle's matmul (the `gemm` crate) packs the whole weight matrix on every
//! call, which dominates when `x` has only a handful of rows (one per
//! sequence in a decode step). This kernel instead streams each weight row
//! once and takes its dot products with all rows of `x` while it is in cache:
//! a 4x2 (or 1x8) register block of 8-lane accumulators, compiled for
//! AVX2+FMA when the CPU has them, parallel over blocks of weight rows.
//! From 16 rows on, [`many`]'s outer products take over. Forward only (no
//! backward): used on the inference path.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape};
use rayon::prelude::*;

/// Up to this many rows of `x` the kernel beats `gemm` (measured on Zen 4:
/// 80-95 GFLOPS per core for 4-128 rows against gemm's 24-60 below 64 rows).
pub const MAX_ROWS: usize = 64;

/// Weight rows per parallel task (a 64 x 1536 f32 block is 384 KiB).
const BLOCK: usize = 64;

pub struct XWt;

impl CustomOp2 for XWt {
    fn name(&self) -> &'static str {
        "x-wt-few-rows"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(x), CpuStorage::F32(w)) = (s1, s2) else {
            candle_core::bail!("x-wt-few-rows: f32 only");
        };
        let (Some((xa, xb)), Some((wa, wb))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("x-wt-few-rows: contiguous inputs only");
        };
        let (m, k) = l1.shape().dims2()?;
        let (n, k2) = l2.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("x-wt-few-rows: inner dims {k} and {k2} differ");
        }
        let y = x_wt(&x[xa..xb], &w[wa..wb], m, k, n);
        Ok((CpuStorage::F32(y), Shape::from((m, n))))
    }
}

/// From this many rows of `x` on, [`many`]'s outer-product kernel is used
/// (at 8 rows the dot products were faster, at 16 level, at 32 slower).
const MANY_MIN: usize = 16;

/// `y (m, n) = x (m, k) w^T` with `w` `(n, k)`, both row-major.
pub fn x_wt(x: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    if m >= MANY_MIN {
        if let Some(y) = many::x_wt(x, w, m, k, n) {
            return y;
        }
    }
    x_wt_dots(x, w, m, k, n)
}

/// [`x_wt`] through [`block`]'s dot products.
fn x_wt_dots(x: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    by_columns(m, n, BLOCK, |j0, j1, out| block(x, w, m, k, j0, j1, out))
}

/// `y (m, n)` computed in parallel over blocks of `cols` columns:
/// `f(j0, j1, out)` writes columns `j0..j1` into `out` `(m, j1 - j0)`.
fn by_columns(
    m: usize,
    n: usize,
    cols: usize,
    f: impl Fn(usize, usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let blocks: Vec<(usize, Vec<f32>)> = (0..n.div_ceil(cols))
        .into_par_iter()
        .map(|b| {
            let (j0, j1) = (b * cols, ((b + 1) * cols).min(n));
            let mut out = vec![0f32; m * (j1 - j0)];
            f(j0, j1, &mut out);
            (j0, out)
        })
        .collect();
    let mut y = vec![0f32; m * n];
    for (j0, out) in blocks {
        let nb = out.len() / m.max(1);
        for r in 0..m {
            y[r * n + j0..r * n + j0 + nb].copy_from_slice(&out[r * nb..(r + 1) * nb]);
        }
    }
    y
}

/// Columns `j0..j1` of `y`, written to `out` `(m, j1 - j0)`.
fn block(x: &[f32], w: &[f32], m: usize, k: usize, j0: usize, j1: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F; `avx512::block` reads only
            // inside `x` (m rows of k), `w` (rows j0..j1 of k) and `out`.
            unsafe { avx512::block(x, w, m, k, j0, j1, out) };
            return;
        }
        if crate::kernels::has_avx2() {
            // SAFETY: as above, for AVX2 and FMA.
            unsafe { avx2::block(x, w, m, k, j0, j1, out) };
            return;
        }
    }
    block_plain(x, w, m, k, j0, j1, out)
}

/// [`block`] without SIMD, for other CPUs.
fn block_plain(x: &[f32], w: &[f32], m: usize, k: usize, j0: usize, j1: usize, out: &mut [f32]) {
    let nb = j1 - j0;
    for r in 0..m {
        let xr = &x[r * k..(r + 1) * k];
        for j in j0..j1 {
            let wr = &w[j * k..(j + 1) * k];
            out[r * nb + j - j0] = xr.iter().zip(wr).map(|(a, b)| a * b).sum();
        }
    }
}

/// One module per instruction set with `block` (see `super::block`): whole
/// blocks of 4 x-rows by `$c` w-rows of `$lanes`-wide accumulators `$reg`
/// (the last columns 4 x 1), then the module's own `one_row` for the rows
/// left. Also `dots::<R, C>`, all `R x C` dot products of length-`k` rows,
/// each register summed by `$hsum`, then the scalar tail.
#[cfg(target_arch = "x86_64")]
macro_rules! dots_kernel {
    ($feat:literal, $c:literal, $reg:ty, $lanes:literal,
     $zero:ident, $load:ident, $fma:ident, $hsum:ident) => {
        #[target_feature(enable = $feat)]
        pub unsafe fn block(
            x: &[f32],
            w: &[f32],
            m: usize,
            k: usize,
            j0: usize,
            j1: usize,
            out: &mut [f32],
        ) {
            let nb = j1 - j0;
            let xp = |r: usize| x.as_ptr().add(r * k);
            let wp = |j: usize| w.as_ptr().add(j * k);
            let mut r = 0;
            while r + 4 <= m {
                let xs = [xp(r), xp(r + 1), xp(r + 2), xp(r + 3)];
                let mut j = j0;
                while j + $c <= j1 {
                    let d = dots::<4, $c>(xs, std::array::from_fn(|c| wp(j + c)), k);
                    for (a, dr) in d.iter().enumerate() {
                        out[(r + a) * nb + j - j0..(r + a) * nb + j + $c - j0].copy_from_slice(dr);
                    }
                    j += $c;
                }
                while j < j1 {
                    let d = dots::<4, 1>(xs, [wp(j)], k);
                    for (a, dr) in d.iter().enumerate() {
                        out[(r + a) * nb + j - j0] = dr[0];
                    }
                    j += 1;
                }
                r += 4;
            }
            for r in r..m {
                one_row(xp(r), w, k, j0, j1, &mut out[r * nb..(r + 1) * nb]);
            }
        }

        #[inline(always)]
        unsafe fn dots<const R: usize, const C: usize>(
            xs: [*const f32; R],
            ws: [*const f32; C],
            k: usize,
        ) -> [[f32; C]; R] {
            let mut acc = [[$zero(); C]; R];
            let mut i = 0;
            while i + $lanes <= k {
                let xv: [$reg; R] = std::array::from_fn(|r| $load(xs[r].add(i)));
                for c in 0..C {
                    let wv = $load(ws[c].add(i));
                    for r in 0..R {
                        acc[r][c] = $fma(xv[r], wv, acc[r][c]);
                    }
                }
                i += $lanes;
            }
            let mut y = [[0f32; C]; R];
            for r in 0..R {
                for c in 0..C {
                    let mut s = $hsum(acc[r][c]);
                    for t in i..k {
                        s += *xs[r].add(t) * *ws[c].add(t);
                    }
                    y[r][c] = s;
                }
            }
            y
        }
    };
}

/// 4 x-rows by 2 w-rows (8 accumulators of 8 lanes).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    dots_kernel!(
        "avx2,fma",
        2,
        __m256,
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_fmadd_ps,
        hsum
    );

    /// `out[j - j0] = x . w_j`: one weight row at a time with four
    /// accumulators, a single sequential stream per core, which measured
    /// 10-15% faster than eight interleaved rows on the memory-bound
    /// decode step.
    #[inline(always)]
    unsafe fn one_row(x: *const f32, w: &[f32], k: usize, j0: usize, j1: usize, out: &mut [f32]) {
        for j in j0..j1 {
            out[j - j0] = dot1(x, w.as_ptr().add(j * k), k);
        }
    }

    /// The dot product of the length-`k` rows at `x` and `w`.
    #[inline(always)]
    unsafe fn dot1(x: *const f32, w: *const f32, k: usize) -> f32 {
        let mut a = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= k {
            for (u, acc) in a.iter_mut().enumerate() {
                let (xv, wv) = (
                    _mm256_loadu_ps(x.add(i + 8 * u)),
                    _mm256_loadu_ps(w.add(i + 8 * u)),
                );
                *acc = _mm256_fmadd_ps(xv, wv, *acc);
            }
            i += 32;
        }
        while i + 8 <= k {
            a[0] = _mm256_fmadd_ps(_mm256_loadu_ps(x.add(i)), _mm256_loadu_ps(w.add(i)), a[0]);
            i += 8;
        }
        let mut s = hsum(_mm256_add_ps(
            _mm256_add_ps(a[0], a[1]),
            _mm256_add_ps(a[2], a[3]),
        ));
        while i < k {
            s += *x.add(i) * *w.add(i);
            i += 1;
        }
        s
    }

    /// Horizontal sum of the 8 lanes.
    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)))
    }
}

/// The same kernel with 16-lane registers: 4 x-rows by 4 w-rows (16
/// accumulators, which AVX-512's 32 registers hold).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    dots_kernel!(
        "avx512f",
        4,
        __m512,
        16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_fmadd_ps,
        _mm512_reduce_add_ps
    );

    /// `out[j - j0] = x . w_j`, 8 weight rows at a time.
    #[inline(always)]
    unsafe fn one_row(x: *const f32, w: &[f32], k: usize, j0: usize, j1: usize, out: &mut [f32]) {
        let wp = |j: usize| w.as_ptr().add(j * k);
        let mut j = j0;
        while j + 8 <= j1 {
            let d = dots::<1, 8>([x], std::array::from_fn(|c| wp(j + c)), k);
            out[j - j0..j + 8 - j0].copy_from_slice(&d[0]);
            j += 8;
        }
        while j < j1 {
            out[j - j0] = dots::<1, 1>([x], [wp(j)], k)[0][0];
            j += 1;
        }
    }
}

/// `x W^T` for 16-64 rows as a sum of outer products: `x` is packed once
/// transposed, `(k, m)` with `m` padded to whole registers, and each step
/// over `k` multiplies a column of it (2 registers of rows) by one weight
/// of each of `C` weight rows, broadcast. Every weight is loaded once per
/// call and used for `m` FMAs, with no horizontal sums, where [`block`]'s
/// dot products load `x` again for every few weight rows.
mod many {
    /// `None` when the CPU has neither AVX-512F nor AVX2+FMA.
    pub fn x_wt(x: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Option<Vec<f32>> {
        #[cfg(target_arch = "x86_64")]
        {
            let (lanes, kernel): (usize, Kernel) = if is_x86_feature_detected!("avx512f") {
                (16, |xt, mp, m, w, k, j0, j1, out| {
                    // SAFETY: AVX-512F was detected; see `Kernel`.
                    unsafe { avx512::block(xt, mp, m, w, k, j0, j1, out) }
                })
            } else if crate::kernels::has_avx2() {
                (8, |xt, mp, m, w, k, j0, j1, out| {
                    // SAFETY: AVX2 and FMA were detected; see `Kernel`.
                    unsafe { avx2::block(xt, mp, m, w, k, j0, j1, out) }
                })
            } else {
                return None;
            };
            Some(run(x, w, m, k, n, lanes, kernel))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (x, w, m, k, n);
            None
        }
    }

    /// Columns `j0..j1` of `y` into `out` `(m, j1 - j0)`, from `xt`
    /// `(k, mp)` (rows `m..mp` zero) and `w` `(n, k)`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(super) type Kernel = fn(&[f32], usize, usize, &[f32], usize, usize, usize, &mut [f32]);

    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(super) fn run(
        x: &[f32],
        w: &[f32],
        m: usize,
        k: usize,
        n: usize,
        lanes: usize,
        kernel: Kernel,
    ) -> Vec<f32> {
        let mp = m.div_ceil(lanes) * lanes;
        let mut xt = vec![0f32; k * mp];
        for (r, xr) in x.chunks(k).enumerate().take(m) {
            for (i, &v) in xr.iter().enumerate() {
                xt[i * mp + r] = v;
            }
        }
        // About four tasks per thread (the k/v projections have only
        // 128-256 columns), in multiples of 24 columns: whole 6-, 8- and
        // 12-column tiles.
        let tasks = 4 * rayon::current_num_threads();
        let cols = (n.div_ceil(tasks)).div_ceil(24).max(1) * 24;
        super::by_columns(m, n, cols, |j0, j1, out| {
            kernel(&xt, mp, m, w, k, j0, j1, out)
        })
    }

    /// One kernel per instruction set: accumulators for 2 registers of
    /// `$lanes` rows by `$c` weight rows, then 1 register by `$c` for the
    /// rows left, then 1 weight row at a time for the columns left.
    macro_rules! outer_kernel {
        ($name:ident, $feat:literal, $reg:ty, $lanes:literal, $c:literal,
         $load:ident, $set1:ident, $fma:ident, $store:ident) => {
            #[cfg(target_arch = "x86_64")]
            pub(super) mod $name {
                use super::KB;
                use std::arch::x86_64::*;

                #[target_feature(enable = $feat)]
                #[allow(clippy::too_many_arguments)]
                pub unsafe fn block(
                    xt: &[f32],
                    mp: usize,
                    m: usize,
                    w: &[f32],
                    k: usize,
                    j0: usize,
                    j1: usize,
                    out: &mut [f32],
                ) {
                    assert!(xt.len() >= k * mp && w.len() >= j1 * k && out.len() >= m * (j1 - j0));
                    let nb = j1 - j0;
                    // y^T for these columns, `(nb, mp)`: tiles add into it
                    // block by block over k, so that the block of `xt` in
                    // use (KB x mp) stays in L1 across all weight tiles.
                    let mut yt = vec![0f32; nb * mp];
                    let (xp, wp, yp) = (xt.as_ptr(), w.as_ptr(), yt.as_mut_ptr());
                    let mut k0 = 0;
                    while k0 < k {
                        let kb = (k - k0).min(KB);
                        let mut j = j0;
                        while j < j1 {
                            let c = (j1 - j).min($c);
                            let mut r0 = 0;
                            while r0 < mp {
                                let x = xp.add(k0 * mp + r0);
                                let y = yp.add((j - j0) * mp + r0);
                                let wj = wp.add(j * k + k0);
                                if c == $c && r0 + 2 * $lanes <= mp {
                                    tile::<2, $c>(x, mp, wj, k, kb, y);
                                    r0 += 2 * $lanes;
                                } else if c == $c {
                                    tile::<1, $c>(x, mp, wj, k, kb, y);
                                    r0 += $lanes;
                                } else {
                                    for jj in 0..c {
                                        tile::<1, 1>(x, mp, wj.add(jj * k), k, kb, y.add(jj * mp));
                                    }
                                    r0 += $lanes;
                                }
                            }
                            j += c;
                        }
                        k0 += kb;
                    }
                    // Back to `(m, nb)`: sequential writes, reads from the
                    // cached `yt` (bounds checked once, by the assert above).
                    let op = out.as_mut_ptr();
                    for r in 0..m {
                        for jj in 0..nb {
                            *op.add(r * nb + jj) = *yt.get_unchecked(jj * mp + r);
                        }
                    }
                }

                /// `y[c][v * lanes + l] += sum_{i < kb} x[i][v * lanes + l] * w[c][i]`,
                /// `x` with row stride `mp`, `w` with row stride `k`, `y` with `mp`.
                #[inline(always)]
                unsafe fn tile<const V: usize, const C: usize>(
                    x: *const f32,
                    mp: usize,
                    w: *const f32,
                    k: usize,
                    kb: usize,
                    y: *mut f32,
                ) {
                    let mut acc: [[$reg; V]; C] = std::array::from_fn(|c| {
                        std::array::from_fn(|v| $load(y.add(c * mp + v * $lanes)))
                    });
                    let mut i0 = 0;
                    while i0 < kb {
                        // The next tile's C weight rows, a cache line of each
                        // per 16 steps: C streams are more than the hardware
                        // prefetcher follows well.
                        for c in 0..C {
                            _mm_prefetch::<_MM_HINT_T0>(
                                w.wrapping_add((C + c) * k + i0) as *const i8
                            );
                        }
                        for i in i0..(i0 + 16).min(kb) {
                            let col = x.add(i * mp);
                            let xv: [$reg; V] = std::array::from_fn(|v| $load(col.add(v * $lanes)));
                            for (c, a) in acc.iter_mut().enumerate() {
                                let b = $set1(*w.add(c * k + i));
                                for v in 0..V {
                                    a[v] = $fma(xv[v], b, a[v]);
                                }
                            }
                        }
                        i0 += 16;
                    }
                    for (c, a) in acc.iter().enumerate() {
                        for (v, &reg) in a.iter().enumerate() {
                            $store(y.add(c * mp + v * $lanes), reg);
                        }
                    }
                }
            }
        };
    }

    /// Steps over k per pass (a 128 x 32 block of `xt` is 16 KiB).
    const KB: usize = 128;

    outer_kernel!(
        avx512,
        "avx512f",
        __m512,
        16,
        12,
        _mm512_loadu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_storeu_ps
    );
    outer_kernel!(
        avx2,
        "avx2,fma",
        __m256,
        8,
        6,
        _mm256_loadu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_storeu_ps
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_variant_matches_the_plain_triple_loop() {
        // Sizes that leave remainders everywhere: rows 4 + 3, columns not
        // a multiple of 2, 4 or 8, k = 16 + 5; columns 5..60 test offsets.
        // One row with k = 2 * 32 + 8 + 5 covers every loop of the one-row
        // kernel; 5 rows with k = 45 a 4-row block plus one row.
        for (m, k, n) in [(7, 21, 69), (1, 77, 69), (5, 45, 61)] {
            check_sizes(m, k, n);
        }
    }

    #[test]
    fn the_outer_product_kernel_matches_the_plain_triple_loop() {
        // Rows: one register, two, two plus one, a padded last register;
        // columns with remainders after 8- and 6-column tiles.
        for (m, k, n) in [
            (8, 21, 69),
            (19, 5, 33),
            (33, 37, 70),
            (40, 16, 9),
            (64, 3, 1),
        ] {
            let (x, w) = inputs(m, k, n);
            let want = reference(&x, &w, k);
            let mut variants: Vec<(&str, usize, super::many::Kernel)> = Vec::new();
            #[cfg(target_arch = "x86_64")]
            {
                if crate::kernels::has_avx2() {
                    variants.push(("avx2", 8, |xt, mp, m, w, k, a, b, o| {
                        // SAFETY: the features were just detected.
                        unsafe { super::many::avx2::block(xt, mp, m, w, k, a, b, o) }
                    }));
                }
                if is_x86_feature_detected!("avx512f") {
                    variants.push(("avx512", 16, |xt, mp, m, w, k, a, b, o| {
                        // SAFETY: as above.
                        unsafe { super::many::avx512::block(xt, mp, m, w, k, a, b, o) }
                    }));
                }
            }
            assert!(!variants.is_empty() || !cfg!(target_arch = "x86_64"));
            for (name, lanes, kernel) in variants {
                let y = super::many::run(&x, &w, m, k, n, lanes, kernel);
                for r in 0..m {
                    for j in 0..n {
                        let d = (y[r * n + j] as f64 - want(r, j)).abs();
                        assert!(d < 1e-4, "{name} m={m} k={k} n={n} at {r} {j}: {d}");
                    }
                }
            }
        }
    }

    fn inputs(m: usize, k: usize, n: usize) -> (Vec<f32>, Vec<f32>) {
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 53 % 13) as f32 - 6.0) / 5.0)
            .collect();
        (x, w)
    }

    /// `y[r][j] = x_r . w_j` in f64: the plain triple loop.
    fn reference<'a>(x: &'a [f32], w: &'a [f32], k: usize) -> impl Fn(usize, usize) -> f64 + 'a {
        move |r, j| {
            (0..k)
                .map(|t| x[r * k + t] as f64 * w[j * k + t] as f64)
                .sum()
        }
    }

    fn check_sizes(m: usize, k: usize, n: usize) {
        let (x, w) = inputs(m, k, n);
        let want = reference(&x, &w, k);
        let y = super::x_wt(&x, &w, m, k, n);
        for r in 0..m {
            for j in 0..n {
                assert!((y[r * n + j] as f64 - want(r, j)).abs() < 1e-4, "{r} {j}");
            }
        }
        type Block = fn(&[f32], &[f32], usize, usize, usize, usize, &mut [f32]);
        let mut variants: Vec<(&str, Block)> = vec![("plain", super::block_plain)];
        #[cfg(target_arch = "x86_64")]
        {
            if crate::kernels::has_avx2() {
                // SAFETY: the features were just detected.
                variants.push(("avx2", |x, w, m, k, a, b, o| unsafe {
                    super::avx2::block(x, w, m, k, a, b, o)
                }));
            }
            if is_x86_feature_detected!("avx512f") {
                // SAFETY: as above.
                variants.push(("avx512", |x, w, m, k, a, b, o| unsafe {
                    super::avx512::block(x, w, m, k, a, b, o)
                }));
            }
        }
        for (name, f) in variants {
            let (j0, j1) = (5, 60);
            let mut out = vec![0f32; m * (j1 - j0)];
            f(&x, &w, m, k, j0, j1, &mut out);
            for r in 0..m {
                for j in j0..j1 {
                    let got = out[r * (j1 - j0) + j - j0] as f64;
                    assert!((got - want(r, j)).abs() < 1e-4, "{name} {r} {j}");
                }
            }
        }
    }
}
