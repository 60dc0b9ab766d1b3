//! The decode step on the CPU: each row of a batch feeds one new token after
//! its cached columns, and the whole decoder runs on the weights' own f32
//! storage, with no candle op between the embedding and the final norm.
//!
//! Why: a decode step of a small model is memory-bound (every weight is read
//! once per step), but through candle it is also ~35 ops per layer, each
//! allocating, dispatching and synchronising threads; on SmolLM2-135M at
//! batch 1 that overhead cost about as much as reading the weights. Here a
//! layer is six parallel regions (q/k/v, attention, o, gate/up, down, plus
//! the norms inline) over `rows x width` activations.
//!
//! The maths is that of [`crate::llama`] for one query per row, written out:
//!
//! ```text
//! n = rms_norm(x, w_in);  q, k, v = n Wq^T + bq, n Wk^T + bk, n Wv^T + bv
//! q, k = rope(q, pos), rope(k, pos)        pos = past - left_pad[row]
//! cache[:, past] = k, v
//! a_h = sum_j softmax_j(q_h . k_j / sqrt(D)) v_j      j in left_pad[row] ..= past
//! x = x + a Wo^T;  n = rms_norm(x, w_post);  x = x + (silu(n Wg^T) * n Wu^T) Wd^T
//! ```
//!
//! A test checks it against the general path (candle ops) on Llama and Qwen2
//! shapes with left padding.

use candle_core::{CpuStorage, Storage, StorageRef, Tensor};
use rayon::prelude::*;

use crate::kernels::{exp_f32, few_rows, rms_norm_row};
use crate::ModelConfig;

/// Whether the decode step is on: it is unless `BARL_GENERAL_DECODE=1`,
/// which sends decoding through the general candle path (for comparisons).
pub(crate) fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("BARL_GENERAL_DECODE").map_or(true, |v| v != "1"))
}

/// Read access to the f32 storage of contiguous CPU tensors, held for the
/// duration of a step (the optimiser writes the weights only between steps).
pub(crate) struct Pinned<'a> {
    guards: Vec<(StorageRef<'a>, usize, usize)>,
}

impl<'a> Pinned<'a> {
    pub fn new() -> Self {
        Self { guards: Vec::new() }
    }

    /// Pins `t`; `None` when it is not a contiguous f32 CPU tensor (the caller
    /// then takes the general path).
    pub fn pin(&mut self, t: &'a Tensor) -> Option<usize> {
        let (guard, layout) = t.storage_and_layout();
        let (a, b) = layout.contiguous_offsets()?;
        if !matches!(&*guard, Storage::Cpu(CpuStorage::F32(_))) {
            return None;
        }
        self.guards.push((guard, a, b));
        Some(self.guards.len() - 1)
    }

    /// Pins the whole f32 CPU storage under `t`, whatever its layout (index
    /// it with `t.layout()`); `None` for other storage.
    pub fn pin_any(&mut self, t: &'a Tensor) -> Option<usize> {
        let (guard, _) = t.storage_and_layout();
        let n = match &*guard {
            Storage::Cpu(CpuStorage::F32(v)) => v.len(),
            _ => return None,
        };
        self.guards.push((guard, 0, n));
        Some(self.guards.len() - 1)
    }

    /// The data of pinned tensor `i`.
    pub fn get(&self, i: usize) -> &[f32] {
        let (g, a, b) = &self.guards[i];
        match &**g {
            Storage::Cpu(CpuStorage::F32(v)) => &v[*a..*b],
            _ => unreachable!("pin admits only f32 CPU storage"),
        }
    }
}

/// `y = x W^T (+ b)`, `W` `(n, k)` row-major.
pub(crate) struct Lin<'a> {
    pub w: &'a [f32],
    pub b: Option<&'a [f32]>,
}

impl Lin<'_> {
    fn apply(&self, x: &[f32], rows: usize, k: usize) -> Vec<f32> {
        let n = self.w.len() / k;
        let mut y = few_rows::x_wt(x, self.w, rows, k, n);
        if let Some(b) = self.b {
            y.chunks_mut(n)
                .for_each(|r| r.iter_mut().zip(b).for_each(|(o, &bi)| *o += bi));
        }
        y
    }
}

/// One decoder layer's weights as slices.
pub(crate) struct LayerSlices<'a> {
    pub input_norm: &'a [f32],
    pub q: Lin<'a>,
    pub k: Lin<'a>,
    pub v: Lin<'a>,
    pub o: Lin<'a>,
    pub post_norm: &'a [f32],
    pub gate: Lin<'a>,
    pub up: Lin<'a>,
    pub down: Lin<'a>,
}

/// A layer's key and value buffers `(rows, Hkv, capacity, D)` (any strides
/// whose last is 1), with their storage offsets.
pub(crate) struct CacheView<'a> {
    pub k: &'a [f32],
    pub v: &'a [f32],
    /// Start offset and strides of dims 0..3 (the same for k and v).
    pub start: usize,
    pub strides: [usize; 3],
}

/// `x / sqrt(mean(x^2) + eps) * w` over each row of `x` (width `w.len()`).
pub(crate) fn rms_norm_rows(x: &[f32], w: &[f32], eps: f64) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    for (yr, xr) in y.chunks_mut(w.len()).zip(x.chunks(w.len())) {
        rms_norm_row(yr, xr, w, eps);
    }
    y
}

/// Rotates each head (width `d`) of `x` `(rows, heads * d)` in place by the
/// angles of `cos_sin` `(rows, d/2)` ([`crate::layers::Rotary::cos_sin_pairs`]),
/// rotate-half layout:
/// `[a, b] -> [a cos - b sin, b cos + a sin]`.
pub(crate) fn rope_rows(x: &mut [f32], heads: usize, d: usize, cos_sin: &[(f32, f32)]) {
    let half = d / 2;
    for (r, xr) in x.chunks_mut(heads * d).enumerate() {
        let cs = &cos_sin[r * half..(r + 1) * half];
        for head in xr.chunks_mut(d) {
            let (a, b) = head.split_at_mut(half);
            for ((ai, bi), &(c, s)) in a.iter_mut().zip(b.iter_mut()).zip(cs) {
                let (x1, x2) = (*ai, *bi);
                *ai = x1 * c - x2 * s;
                *bi = x2 * c + x1 * s;
            }
        }
    }
}

/// Attention of one query per row over cached columns `left_pad[row] ..= past`
/// (the new column already written; just `past` for a padding query).
/// `q` `(rows, Hq * D)`; returns the same shape. Query head `h` reads kv head
/// `h / (Hq / Hkv)`.
pub(crate) fn attend(
    cfg: &ModelConfig,
    q: &[f32],
    cache: &CacheView,
    left_pad: &[usize],
    past: usize,
) -> Vec<f32> {
    let (hq, hkv, d) = (
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.head_dim,
    );
    let g = hq / hkv;
    let scale = 1.0 / (d as f32).sqrt();
    let mut out = vec![0f32; q.len()];
    // One task per (row, kv head): its `g` query heads are adjacent in `q`
    // and `out`, and share every cached key and value they read.
    out.par_chunks_mut(g * d)
        .zip(q.par_chunks(g * d))
        .enumerate()
        .for_each(|(i, (o, qs))| {
            let (r, kvh) = (i / hkv, i % hkv);
            let base = cache.start + r * cache.strides[0] + kvh * cache.strides[1];
            // A padding query (the row's real tokens start later) sees only
            // itself, as in the general path; its output is never used.
            let cols = left_pad[r].min(past)..=past;
            let group = Group {
                q: qs,
                d,
                k: cache.k,
                v: cache.v,
                base,
                stride: cache.strides[2],
                scale,
            };
            #[cfg(target_arch = "x86_64")]
            if crate::kernels::has_avx2() {
                // SAFETY: AVX2 and FMA were detected.
                return unsafe { group.attend_avx2(cols, o) };
            }
            group.attend(cols, o)
        });
    out
}

/// The query heads of one kv head (`q.len() / d` of them) against its
/// cached columns.
struct Group<'a> {
    q: &'a [f32],
    d: usize,
    k: &'a [f32],
    v: &'a [f32],
    /// Offset of column 0 in `k` and `v`, and the stride between columns.
    base: usize,
    stride: usize,
    scale: f32,
}

impl Group<'_> {
    /// `o_h += sum_j softmax_j(q_h . k_j * scale) v_j` over `cols`, each head `h`.
    #[inline(always)]
    fn attend(&self, cols: std::ops::RangeInclusive<usize>, o: &mut [f32]) {
        // Plain loops, no closures: a closure passed to an iterator adaptor
        // is compiled on its own, without `attend_avx2`'s target features.
        let (d, st, base) = (self.d, self.stride, self.base);
        let (g, n) = (self.q.len() / d, cols.clone().count());
        let mut s = vec![0f32; g * n];
        for (c, j) in cols.clone().enumerate() {
            let kj = &self.k[base + j * st..base + j * st + d];
            for h in 0..g {
                s[h * n + c] = dot(&self.q[h * d..(h + 1) * d], kj) * self.scale;
            }
        }
        for sh in s.chunks_mut(n) {
            let mut m = f32::NEG_INFINITY;
            for &e in sh.iter() {
                m = m.max(e);
            }
            let mut sum = 0f32;
            for e in sh.iter_mut() {
                *e = exp_f32(*e - m);
                sum += *e;
            }
            let inv = 1.0 / sum;
            for e in sh.iter_mut() {
                *e *= inv;
            }
        }
        for (c, j) in cols.enumerate() {
            let vj = &self.v[base + j * st..base + j * st + d];
            for h in 0..g {
                let p = s[h * n + c];
                for (a, &b) in o[h * d..(h + 1) * d].iter_mut().zip(vj) {
                    *a += p * b;
                }
            }
        }
    }

    /// [`Group::attend`] compiled for AVX2 (its loops vectorise 8 wide).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn attend_avx2(&self, cols: std::ops::RangeInclusive<usize>, o: &mut [f32]) {
        self.attend(cols, o)
    }
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums let the compiler vectorise without reassociation.
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = 0f32;
    for a in acc {
        s += a;
    }
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// The q/k/v projections and rotary of one layer: returns `q` `(rows, Hq*D)`
/// and `k`, `v` `(rows, Hkv*D)`, for the caller to write `k`/`v` into the cache.
pub(crate) fn qkv(
    cfg: &ModelConfig,
    w: &LayerSlices,
    x: &[f32],
    rows: usize,
    cos_sin: &[(f32, f32)],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let h = cfg.hidden_size;
    let n = rms_norm_rows(x, w.input_norm, cfg.rms_norm_eps);
    let mut q = w.q.apply(&n, rows, h);
    let mut k = w.k.apply(&n, rows, h);
    let v = w.v.apply(&n, rows, h);
    rope_rows(&mut q, cfg.num_attention_heads, cfg.head_dim, cos_sin);
    rope_rows(&mut k, cfg.num_key_value_heads, cfg.head_dim, cos_sin);
    (q, k, v)
}

/// The rest of a layer after attention: `x += a Wo^T`, then the MLP block.
pub(crate) fn finish_layer(
    cfg: &ModelConfig,
    w: &LayerSlices,
    x: &mut [f32],
    a: &[f32],
    rows: usize,
) {
    let h = cfg.hidden_size;
    let o = w.o.apply(a, rows, cfg.num_attention_heads * cfg.head_dim);
    x.iter_mut().zip(&o).for_each(|(xi, oi)| *xi += oi);
    let n = rms_norm_rows(x, w.post_norm, cfg.rms_norm_eps);
    let mut gate = w.gate.apply(&n, rows, h);
    let up = w.up.apply(&n, rows, h);
    gate.iter_mut().zip(&up).for_each(|(g, &u)| {
        *g = *g / (1.0 + (-*g).exp()) * u;
    });
    let d = w.down.apply(&gate, rows, cfg.intermediate_size);
    x.iter_mut().zip(&d).for_each(|(xi, di)| *xi += di);
}
