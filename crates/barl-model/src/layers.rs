//! Building blocks shared by the Llama and Qwen2 files: RMS norm, linear
//! layers, rotary embeddings (with Llama 3 scaling), grouped-query attention,
//! the KV cache, and the [`CausalLm`] trait the sampler and scorers run on.
//!
//! Every op comes in two forms chosen by [`Mode`]:
//! - [`Mode::Train`] records the autograd graph through the weights (tracked
//!   [`Var`]s) and uses only ops with a backward. candle's fused `rms_norm`,
//!   `rope` and `softmax_last_dim` have none, so on the CPU the training path
//!   uses the crate's own fused kernels, which do (`kernels::grad_ops`: masked
//!   softmax, RMS norm, rotary, SwiGLU, log-softmax, entropy, each with its
//!   closed-form backward, tested against the written-out forms); elsewhere
//!   it uses the written-out forms themselves;
//! - [`Mode::Infer`] runs on detached weights, so no graph is kept alive, and
//!   may use forward-only kernels: candle's `rms_norm`/`rope`/`softmax`, and
//!   `few_rows`, a matmul for the handful of rows of a decode step.
//!
//! Both paths agree to float round-off (tests: 1e-4 on logits).
//!
//! Padding convention: batches without a cache are right-padded (attention is
//! causal, so real positions never see the padding after them); batches run
//! through a [`KvCache`] may be left-padded, and the cache records each row's
//! padding so that masks and rotary positions skip it.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::kernels::{few_rows, grad_ops};
use crate::{softmax_last, Arch, ModelConfig, ModelError};

/// Which implementation of the forward ops to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Differentiable ops only; records the autograd graph through the weights.
    Train,
    /// Fused kernels on detached weights: no graph, faster. Sampling and probes.
    Infer,
}

/// `y = x / sqrt(mean(x^2) + eps) * w` over the last dimension.
pub(crate) fn rms_norm(
    x: &Tensor,
    w: &Tensor,
    eps: f64,
    mode: Mode,
) -> candle_core::Result<Tensor> {
    match mode {
        Mode::Infer => candle_nn::ops::rms_norm(&x.contiguous()?, w, eps as f32),
        Mode::Train if grad_ops::usable(x) => {
            x.contiguous()?.apply_op2(w, grad_ops::RmsNorm { eps })
        }
        Mode::Train => rms_norm_written_out(x, w, eps),
    }
}

/// [`rms_norm`] from differentiable primitives (the reference for the fused
/// op's backward, and the training path off the CPU).
pub(crate) fn rms_norm_written_out(
    x: &Tensor,
    w: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_mul(&(ms + eps)?.sqrt()?.recip()?)?
        .broadcast_mul(w)
}

/// `silu(gate) * up`, fused on the CPU (with a backward).
pub(crate) fn swiglu(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    if grad_ops::usable(gate) {
        gate.contiguous()?
            .apply_op2(&up.contiguous()?, grad_ops::SwiGlu)
    } else {
        gate.silu()? * up
    }
}

/// Entropy of each row of log-probabilities `lsm` (last dim), with a backward.
pub(crate) fn entropy(lsm: &Tensor) -> candle_core::Result<Tensor> {
    if grad_ops::usable(lsm) {
        lsm.contiguous()?.apply_op1(grad_ops::Entropy)
    } else {
        (lsm.exp()? * lsm)?.sum(D::Minus1)?.neg()
    }
}

/// Log-softmax over the last dim with a backward; the fused CPU op when it
/// applies, else [`log_softmax_last`](crate::log_softmax_last).
pub(crate) fn log_softmax(x: &Tensor) -> candle_core::Result<Tensor> {
    if grad_ops::usable(x) {
        x.contiguous()?.apply_op1(grad_ops::LogSoftmax)
    } else {
        crate::log_softmax_last(x)
    }
}

/// `y = x W^T (+ b)` with `W` stored `(out, in)` as in Hugging Face checkpoints.
#[derive(Clone, Debug)]
pub(crate) struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// Any leading shape; the rows are flattened into one 2-D matmul. On the
    /// inference path, few rows on the CPU go through [`few_rows`].
    pub fn forward(&self, x: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        let dims = x.dims().to_vec();
        let (last, lead) = dims.split_last().expect("linear input has rank >= 1");
        let rows: usize = lead.iter().product();
        let x2 = x.reshape((rows, *last))?;
        let y = if mode == Mode::Infer
            && rows <= few_rows::MAX_ROWS
            && x.device().is_cpu()
            && x.dtype() == DType::F32
            && self.weight.dtype() == DType::F32
        {
            x2.contiguous()?
                .apply_op2_no_bwd(&self.weight.contiguous()?, &few_rows::XWt)?
        } else {
            x2.matmul(&self.weight.t()?)?
        };
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let mut out = lead.to_vec();
        out.push(y.dim(1)?);
        y.reshape(out)
    }

    /// The same weights without autograd tracking.
    pub fn detach(&self) -> Self {
        Self {
            weight: self.weight.detach(),
            bias: self.bias.as_ref().map(Tensor::detach),
        }
    }
}

/// Rotary position embedding frequencies (`inv_freq` of Hugging Face).
///
/// `inv_freq_i = theta^(-2i/d)` for `i < d/2`; with Llama 3 scaling
/// (factor `s`, low/high frequency factors `l`, `h`, original context `L`),
/// wavelength `w_i = 2 pi / inv_freq_i`: kept when `w_i < L/h`, divided by `s`
/// when `w_i > L/l`, and in between blended as `(1 - a) f / s + a f` with
/// `a = (L / w_i - l) / (h - l)`.
#[derive(Clone, Debug)]
pub struct Rotary {
    inv_freq: Vec<f32>,
}

impl Rotary {
    pub fn new(cfg: &ModelConfig) -> Self {
        let d = cfg.head_dim;
        let inv_freq = (0..d / 2)
            .map(|i| {
                let f = 1.0 / cfg.rope_theta.powf((2 * i) as f64 / d as f64);
                let f = match &cfg.rope_scaling {
                    None => f,
                    Some(s) => {
                        let old = s.original_max_position_embeddings as f64;
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        if wavelen < old / s.high_freq_factor {
                            f
                        } else if wavelen > old / s.low_freq_factor {
                            f / s.factor
                        } else {
                            let a = (old / wavelen - s.low_freq_factor)
                                / (s.high_freq_factor - s.low_freq_factor);
                            (1.0 - a) * f / s.factor + a * f
                        }
                    }
                };
                f as f32
            })
            .collect();
        Self { inv_freq }
    }

    /// `(cos, sin)` of `position * inv_freq_i` for each position and `i`,
    /// row-major `(positions, d/2)`; angles formed in f32 as Hugging Face does.
    pub(crate) fn cos_sin_pairs(&self, positions: &[u32]) -> Vec<(f32, f32)> {
        positions
            .iter()
            .flat_map(|&p| {
                self.inv_freq.iter().map(move |&f| {
                    let a = p as f32 * f;
                    (a.cos(), a.sin())
                })
            })
            .collect()
    }

    /// `cos` and `sin` of `position * inv_freq`, each `(rows, t, d/2)`, for
    /// `positions` laid out row-major `(rows, t)`. Angles are formed in f32 as
    /// Hugging Face does.
    pub fn cos_sin(
        &self,
        positions: &[u32],
        rows: usize,
        t: usize,
        device: &Device,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let (cos, sin): (Vec<f32>, Vec<f32>) = self.cos_sin_pairs(positions).into_iter().unzip();
        Ok((
            Tensor::from_vec(cos, (rows, t, half), device)?,
            Tensor::from_vec(sin, (rows, t, half), device)?,
        ))
    }
}

/// Rotates `x` `(B, H, T, D)` by the angles in `cos`/`sin` `(1 or B, T, D/2)`,
/// in the "rotate half" layout of Hugging Face: `x * cos + rotate_half(x) * sin`
/// with `rotate_half([a, b]) = [-b, a]`.
pub(crate) fn apply_rotary(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    mode: Mode,
) -> candle_core::Result<Tensor> {
    match mode {
        Mode::Infer => {
            let (cos, sin) = if cos.dim(0)? == 1 {
                (cos.squeeze(0)?, sin.squeeze(0)?)
            } else {
                (cos.clone(), sin.clone())
            };
            candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)
        }
        Mode::Train if grad_ops::usable(x) => {
            let rows = cos.dim(0)?;
            let op = grad_ops::Rope {
                cos: std::sync::Arc::new(cos.flatten_all()?.to_vec1::<f32>()?),
                sin: std::sync::Arc::new(sin.flatten_all()?.to_vec1::<f32>()?),
                rows,
                sign: 1.0,
            };
            x.contiguous()?.apply_op1(op)
        }
        Mode::Train => rotary_written_out(x, cos, sin),
    }
}

/// [`apply_rotary`] from differentiable primitives.
pub(crate) fn rotary_written_out(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
) -> candle_core::Result<Tensor> {
    let cos = Tensor::cat(&[cos, cos], D::Minus1)?.unsqueeze(1)?;
    let sin = Tensor::cat(&[sin, sin], D::Minus1)?.unsqueeze(1)?;
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    let rot = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(&cos)? + rot.broadcast_mul(&sin)?
}

/// Which keys each query may see.
pub(crate) enum Mask {
    /// Every key (a single new token after an unpadded cache).
    None,
    /// Query `i` sees keys `0..=past + i` (unpadded batches).
    Causal { past: usize },
    /// An additive mask `(1 or B, T, S)` of 0 / -inf (left-padded batches).
    Additive(Tensor),
}

/// Scaled dot-product attention with grouped-query heads.
///
/// `q` `(B, Hq, T, D)`, `k`/`v` `(B, Hkv, S, D)`; query head `h` reads kv head
/// `h / (Hq / Hkv)`. Rather than repeating k/v, the `g = Hq / Hkv` query heads
/// of a group are stacked as extra rows, so one matmul per kv head serves them.
/// Returns `(B, T, Hq * D)`.
pub(crate) fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Mask,
    mode: Mode,
) -> candle_core::Result<Tensor> {
    let (b, hq, t, d) = q.dims4()?;
    let (_, hkv, s, _) = k.dims4()?;
    let g = hq / hkv;
    let scale = 1.0 / (d as f64).sqrt();
    let fused = grad_ops::usable(q) && !matches!(mask, Mask::Additive(_));
    // The fused softmax applies the scale itself, saving a pass over q.
    let q = if fused {
        q.contiguous()?
    } else {
        (q.contiguous()? * scale)?
    };
    let q = q.reshape((b, hkv, g * t, d))?;
    let att = q.matmul(&k.t()?)?; // (b, hkv, g*t, s); rows ordered (group head, query)
    let add = |m: &Tensor| -> candle_core::Result<Tensor> {
        let mb = m.dim(0)?;
        att.reshape((b, hkv, g, t, s))?
            .broadcast_add(&m.reshape((mb, 1, 1, t, s))?)?
            .reshape((b, hkv, g * t, s))
    };
    let p = match mask {
        // The fused masked softmax (with a backward) serves both paths on the CPU.
        Mask::None if fused => att.apply_op1(grad_ops::CausalSoftmax {
            t,
            past: s,
            scale: scale as f32,
        })?,
        Mask::Causal { past } if fused => att.apply_op1(grad_ops::CausalSoftmax {
            t,
            past: *past,
            scale: scale as f32,
        })?,
        Mask::None => softmax(&att, mode)?,
        Mask::Causal { past } => {
            let m: Vec<f32> = (0..t)
                .flat_map(|i| {
                    (0..s).map(move |j| if j <= past + i { 0. } else { f32::NEG_INFINITY })
                })
                .collect();
            softmax(&add(&Tensor::from_vec(m, (1, t, s), att.device())?)?, mode)?
        }
        Mask::Additive(m) => softmax(&add(m)?, mode)?,
    };
    let y = p.matmul(&v.contiguous()?)?; // (b, hkv, g*t, d)
    y.reshape((b, hq, t, d))?
        .transpose(1, 2)?
        .reshape((b, t, hq * d))
}

fn softmax(x: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
    match mode {
        Mode::Infer => candle_nn::ops::softmax_last_dim(x),
        Mode::Train => softmax_last(x),
    }
}

/// The mask for `t` new positions after `past` cached ones. With left
/// padding it is additive `(B, T, past + T)`: query column `c = past + i`
/// sees key column `j` iff `j <= c` and `j` is not padding of its row; a
/// padding query sees itself so that no softmax row is empty (its output is
/// never used).
pub(crate) fn attention_mask(
    left_pad: &[usize],
    past: usize,
    t: usize,
    device: &Device,
) -> candle_core::Result<Mask> {
    let s = past + t;
    if left_pad.iter().all(|&p| p == 0) {
        return Ok(if t == 1 {
            Mask::None
        } else {
            Mask::Causal { past }
        });
    }
    let mut m = Vec::with_capacity(left_pad.len() * t * s);
    for &p in left_pad {
        for i in 0..t {
            let c = past + i;
            m.extend((0..s).map(|j| {
                if j <= c && (j >= p || j == c) {
                    0f32
                } else {
                    f32::NEG_INFINITY
                }
            }));
        }
    }
    Tensor::from_vec(m, (left_pad.len(), t, s), device).map(Mask::Additive)
}

/// Rotary positions `(rows, t)` of `t` new columns after `past` cached ones:
/// column `c` of a row with `p` leading pads has position `c - p` (0 on pads).
/// Returns the positions and the number of rows they cover (1 when no row is
/// padded: all rows share them).
pub(crate) fn positions(left_pad: &[usize], past: usize, t: usize) -> (Vec<u32>, usize) {
    if left_pad.iter().all(|&p| p == 0) {
        return ((past..past + t).map(|c| c as u32).collect(), 1);
    }
    let pos = left_pad
        .iter()
        .flat_map(|&p| (past..past + t).map(move |c| c.saturating_sub(p) as u32))
        .collect();
    (pos, left_pad.len())
}

/// Keys and values of earlier positions, one preallocated buffer pair per
/// layer, each `(rows, Hkv, capacity, D)`; the first [`KvCache::len`] columns
/// are filled. Appending writes in place (no copy of the past), and the
/// buffers grow by doubling when full.
///
/// The cache is a plain value owned by the caller: the sampler keeps one per
/// batch, the prefix scorer keeps one per prefix and repeats it across
/// hypotheses. It is deliberately not `Clone` (clones would share buffers that
/// appends write into); use [`KvCache::fork`] or [`KvCache::select_rows`].
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    n_layers: usize,
    n_kv_heads: usize,
    head_dim: usize,
    rows: usize,
    len: usize,
    capacity: usize,
    left_pad: Vec<usize>,
}

impl KvCache {
    /// An empty cache for `rows` unpadded sequences, with room for `capacity`
    /// positions before it has to grow.
    pub fn new(cfg: &ModelConfig, rows: usize, capacity: usize) -> Self {
        Self::with_left_padding(cfg, vec![0; rows], capacity)
    }

    /// An empty cache for left-padded rows: row `r` starts with `left_pad[r]`
    /// padding columns that are masked out and do not count as positions.
    pub fn with_left_padding(cfg: &ModelConfig, left_pad: Vec<usize>, capacity: usize) -> Self {
        Self {
            layers: Vec::new(),
            n_layers: cfg.num_hidden_layers,
            n_kv_heads: cfg.num_key_value_heads,
            head_dim: cfg.head_dim,
            rows: left_pad.len(),
            len: 0,
            capacity: capacity.max(1),
            left_pad,
        }
    }

    /// Number of cached columns (padding included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of sequences (batch rows).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Leading padding columns of each row.
    pub fn left_pad(&self) -> &[usize] {
        &self.left_pad
    }

    /// Makes room for `total` columns, reallocating (doubling) if needed.
    pub(crate) fn reserve(&mut self, total: usize) -> candle_core::Result<()> {
        if total <= self.capacity {
            return Ok(());
        }
        let cap = total.max(2 * self.capacity);
        let len = self.len;
        for (k, v) in &mut self.layers {
            *k = grow(k, self.rows, len, cap)?;
            *v = grow(v, self.rows, len, cap)?;
        }
        self.capacity = cap;
        Ok(())
    }

    /// Writes `k`/`v` `(rows, Hkv, t, D)` of layer `layer` after the cached
    /// columns and returns views of all `len + t` columns. The length only
    /// advances in [`KvCache::advance`], once every layer has appended.
    pub(crate) fn append(
        &mut self,
        layer: usize,
        k: &Tensor,
        v: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        if self.len + t > self.capacity {
            candle_core::bail!("kv cache: reserve before append");
        }
        if self.layers.len() <= layer {
            // Allocated lazily so the buffers take the model's dtype and device.
            let shape = (self.rows, self.n_kv_heads, self.capacity, self.head_dim);
            while self.layers.len() <= layer {
                self.layers.push((
                    Tensor::zeros(shape, k.dtype(), k.device())?,
                    Tensor::zeros(shape, v.dtype(), v.device())?,
                ));
            }
        }
        let (kb, vb) = &self.layers[layer];
        kb.slice_set(&k.contiguous()?, 2, self.len)?;
        vb.slice_set(&v.contiguous()?, 2, self.len)?;
        Ok((
            kb.narrow(2, 0, self.len + t)?,
            vb.narrow(2, 0, self.len + t)?,
        ))
    }

    /// Writes one new column (at position [`KvCache::len`]) of layer `layer`:
    /// keys and values `(rows, Hkv, D)` row-major, for the CPU decode step.
    /// The length advances in [`KvCache::advance`], as for [`KvCache::append`].
    pub(crate) fn write_column(
        &mut self,
        layer: usize,
        k: &[f32],
        v: &[f32],
        device: &Device,
    ) -> candle_core::Result<()> {
        if self.len >= self.capacity {
            candle_core::bail!("kv cache: reserve before write_column");
        }
        let shape = (self.rows, self.n_kv_heads, self.capacity, self.head_dim);
        while self.layers.len() <= layer {
            self.layers.push((
                Tensor::zeros(shape, DType::F32, device)?,
                Tensor::zeros(shape, DType::F32, device)?,
            ));
        }
        let (kb, vb) = &self.layers[layer];
        let (h, d) = (self.n_kv_heads, self.head_dim);
        kb.inplace_op1(&WriteColumn {
            data: k,
            col: self.len,
            h,
            d,
        })?;
        vb.inplace_op1(&WriteColumn {
            data: v,
            col: self.len,
            h,
            d,
        })?;
        Ok(())
    }

    /// The key and value buffers of layer `layer`, `(rows, Hkv, capacity, D)`.
    pub(crate) fn buffers(&self, layer: usize) -> Option<&(Tensor, Tensor)> {
        self.layers.get(layer)
    }

    pub(crate) fn advance(&mut self, t: usize) {
        self.len += t;
    }

    /// A new cache holding rows `idx` of this one (rows may repeat), with room
    /// for `extra` more columns. For a batch-1 prefix, `select_rows(&[0; n], _)`
    /// repeats it across `n` hypotheses.
    pub fn select_rows(&self, idx: &[usize], extra: usize) -> Result<Self, ModelError> {
        if let Some(&bad) = idx.iter().find(|&&i| i >= self.rows) {
            return Err(ModelError::Config(format!(
                "kv cache has {} rows, asked for row {bad}",
                self.rows
            )));
        }
        let capacity = (self.len + extra).max(1);
        let mut layers = Vec::with_capacity(self.layers.len());
        for (k, v) in &self.layers {
            let pick = |buf: &Tensor| -> candle_core::Result<Tensor> {
                let dst = Tensor::zeros(
                    (idx.len(), self.n_kv_heads, capacity, self.head_dim),
                    buf.dtype(),
                    buf.device(),
                )?;
                // One contiguous copy per distinct source row, written to each target.
                let mut copies: HashMap<usize, Tensor> = HashMap::new();
                for (r, &i) in idx.iter().enumerate() {
                    if self.len == 0 {
                        break;
                    }
                    let row = match copies.entry(i) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(e) => e.insert(
                            buf.narrow(0, i, 1)?
                                .narrow(2, 0, self.len)?
                                .force_contiguous()?,
                        ),
                    };
                    dst.narrow(0, r, 1)?.slice_set(row, 2, 0)?;
                }
                Ok(dst)
            };
            layers.push((pick(k)?, pick(v)?));
        }
        Ok(Self {
            layers,
            n_layers: self.n_layers,
            n_kv_heads: self.n_kv_heads,
            head_dim: self.head_dim,
            rows: idx.len(),
            len: self.len,
            capacity,
            left_pad: idx.iter().map(|&i| self.left_pad[i]).collect(),
        })
    }

    /// An independent copy (same rows, same free capacity).
    pub fn fork(&self) -> Result<Self, ModelError> {
        let idx: Vec<usize> = (0..self.rows).collect();
        self.select_rows(&idx, self.capacity - self.len)
    }

    /// Keeps only rows `keep` (strictly increasing), in place: each kept row's
    /// filled columns move down to its new index and the buffers are viewed
    /// with fewer rows. Used to drop finished sequences from a batch.
    pub fn retain_rows(&mut self, keep: &[usize]) -> Result<(), ModelError> {
        if keep.windows(2).any(|w| w[0] >= w[1]) || keep.last().is_some_and(|&r| r >= self.rows) {
            return Err(ModelError::Config(format!(
                "retain_rows needs increasing row indices below {}",
                self.rows
            )));
        }
        for (k, v) in &mut self.layers {
            for buf in [&mut *k, &mut *v] {
                for (dst, &src) in keep.iter().enumerate() {
                    if dst != src && self.len > 0 {
                        let row = buf
                            .narrow(0, src, 1)?
                            .narrow(2, 0, self.len)?
                            .force_contiguous()?;
                        buf.narrow(0, dst, 1)?.slice_set(&row, 2, 0)?;
                    }
                }
                *buf = buf.narrow(0, 0, keep.len())?;
            }
        }
        self.left_pad = keep.iter().map(|&r| self.left_pad[r]).collect();
        self.rows = keep.len();
        Ok(())
    }
}

/// Writes `(rows, h, d)` values into column `col` of a `(rows, h, cap, d)`
/// f32 buffer, in place.
struct WriteColumn<'a> {
    data: &'a [f32],
    col: usize,
    h: usize,
    d: usize,
}

impl candle_core::InplaceOp1 for WriteColumn<'_> {
    fn name(&self) -> &'static str {
        "kv-write-column"
    }

    fn cpu_fwd(
        &self,
        s: &mut candle_core::CpuStorage,
        l: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let candle_core::CpuStorage::F32(buf) = s else {
            candle_core::bail!("kv-write-column: f32 only");
        };
        let st = l.stride();
        let dims = l.dims();
        if dims.len() != 4 || st[3] != 1 || dims[1] != self.h || dims[3] != self.d {
            candle_core::bail!("kv-write-column: unexpected buffer layout {dims:?} {st:?}");
        }
        if self.data.len() != dims[0] * self.h * self.d || self.col >= dims[2] {
            candle_core::bail!("kv-write-column: {} values for {dims:?}", self.data.len());
        }
        for (i, src) in self.data.chunks(self.d).enumerate() {
            let (r, h) = (i / self.h, i % self.h);
            let o = l.start_offset() + r * st[0] + h * st[1] + self.col * st[2];
            buf[o..o + self.d].copy_from_slice(src);
        }
        Ok(())
    }
}

/// A buffer with `cap` columns holding the first `len` columns of `buf`.
fn grow(buf: &Tensor, rows: usize, len: usize, cap: usize) -> candle_core::Result<Tensor> {
    let (_, h, _, d) = buf.dims4()?;
    let dst = Tensor::zeros((rows, h, cap, d), buf.dtype(), buf.device())?;
    if len > 0 {
        dst.slice_set(
            &buf.narrow(0, 0, rows)?
                .narrow(2, 0, len)?
                .force_contiguous()?,
            2,
            0,
        )?;
    }
    Ok(dst)
}

/// Asks glibc's malloc to keep freed memory for reuse (mmap threshold 32 MiB,
/// no trimming) instead of handing it back to the OS. Candle allocates a
/// fresh buffer per op; with the defaults, large ones come from new
/// zero-filled pages each time, which cost about a fifth of a training step
/// in page faults and page clearing. A process-wide setting, so binaries opt
/// in by calling this once at start-up; returns whether it took effect
/// (always false off Linux/glibc).
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: mallopt only changes malloc tunables; both values are in range.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, i32::MAX) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Asks the kernel to back the storage of `tensors` (f32 on the CPU) with
/// 2 MiB transparent huge pages: `MADV_HUGEPAGE`, then `MADV_COLLAPSE` to
/// convert the pages already there. A decode step streams every weight once
/// per token; with 4 KiB pages the TLB misses cost about a fifth of it
/// (measured on SmolLM2-135M, 2 cores). The ranges are widened to whole
/// 2 MiB pages of this process's memory, so neighbouring heap data may be
/// collapsed too, which changes no contents. Advice only: errors (older
/// kernels, THP disabled, non-Linux) are ignored.
pub(crate) fn advise_huge_pages<'a>(tensors: impl IntoIterator<Item = &'a Tensor>) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const HUGE: usize = 2 << 20;
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for t in tensors {
            let (g, _) = t.storage_and_layout();
            if let candle_core::Storage::Cpu(candle_core::CpuStorage::F32(v)) = &*g {
                if v.len() * 4 >= HUGE / 2 {
                    let a = v.as_ptr() as usize;
                    let b = a + v.len() * 4;
                    ranges.push((a / HUGE * HUGE, b.div_ceil(HUGE) * HUGE));
                }
            }
        }
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        extern "C" {
            fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
        }
        const MADV_HUGEPAGE: i32 = 14;
        const MADV_COLLAPSE: i32 = 25;
        for (a, b) in merged {
            // SAFETY: both advices keep the contents of the pages; the range is
            // page-aligned and the kernel rejects any part not mapped.
            unsafe {
                madvise(a as *mut _, b - a, MADV_HUGEPAGE);
                madvise(a as *mut _, b - a, MADV_COLLAPSE);
            }
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = tensors;
    }
}

/// A causal language model the sampler and scorers can run.
pub trait CausalLm {
    /// The hyper-parameters.
    fn config(&self) -> &ModelConfig;

    /// The device the weights live on.
    fn device(&self) -> &Device;

    /// Final-normed hidden states `(B, T, hidden)` for `tokens` `(B, T)` (u32)
    /// that follow the columns held in `cache`, which is extended in place.
    /// Without a cache the batch must be right-padded (or unpadded). A cache
    /// may only be used with [`Mode::Infer`].
    fn hidden(
        &self,
        tokens: &Tensor,
        cache: Option<&mut KvCache>,
        mode: Mode,
    ) -> Result<Tensor, ModelError>;

    /// Output logits `(..., vocab)` for hidden states `(..., hidden)`.
    fn logits(&self, hidden: &Tensor, mode: Mode) -> Result<Tensor, ModelError>;

    /// Trainable variables under their Hugging Face names, in a fixed order.
    fn named_vars(&self) -> &[(String, Var)];

    /// Logits `(B, T, vocab)` at every position.
    fn forward(
        &self,
        tokens: &Tensor,
        cache: Option<&mut KvCache>,
        mode: Mode,
    ) -> Result<Tensor, ModelError> {
        let h = self.hidden(tokens, cache, mode)?;
        self.logits(&h, mode)
    }

    /// The trainable variables (for an optimiser), in [`CausalLm::named_vars`] order.
    fn vars(&self) -> Vec<Var> {
        self.named_vars().iter().map(|(_, v)| v.clone()).collect()
    }

    /// A snapshot of the weights under Hugging Face names (for saving). A tied
    /// output head has no `lm_head.weight` entry.
    fn to_weights(&self) -> Result<HashMap<String, Tensor>, ModelError> {
        self.named_vars()
            .iter()
            .map(|(n, v)| Ok((n.clone(), v.as_tensor().detach().copy()?)))
            .collect()
    }
}

/// The Hugging Face tensors a Llama/Qwen2 model of this shape has, with their
/// shapes, in the fixed order of [`CausalLm::named_vars`]. q/k/v carry a bias
/// for Qwen2 and for Llama configs with `attention_bias`.
pub fn expected_tensors(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let h = cfg.hidden_size;
    let q = cfg.num_attention_heads * cfg.head_dim;
    let kv = cfg.num_key_value_heads * cfg.head_dim;
    let bias = has_qkv_bias(cfg);
    let mut out = vec![(
        "model.embed_tokens.weight".to_string(),
        vec![cfg.vocab_size, h],
    )];
    for i in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{i}");
        out.push((format!("{p}.input_layernorm.weight"), vec![h]));
        for (name, n) in [("q_proj", q), ("k_proj", kv), ("v_proj", kv)] {
            out.push((format!("{p}.self_attn.{name}.weight"), vec![n, h]));
            if bias {
                out.push((format!("{p}.self_attn.{name}.bias"), vec![n]));
            }
        }
        out.push((format!("{p}.self_attn.o_proj.weight"), vec![h, q]));
        out.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
        out.push((
            format!("{p}.mlp.gate_proj.weight"),
            vec![cfg.intermediate_size, h],
        ));
        out.push((
            format!("{p}.mlp.up_proj.weight"),
            vec![cfg.intermediate_size, h],
        ));
        out.push((
            format!("{p}.mlp.down_proj.weight"),
            vec![h, cfg.intermediate_size],
        ));
    }
    out.push(("model.norm.weight".to_string(), vec![h]));
    if !cfg.tie_word_embeddings {
        out.push(("lm_head.weight".to_string(), vec![cfg.vocab_size, h]));
    }
    out
}

/// Whether q/k/v projections carry a bias.
pub(crate) fn has_qkv_bias(cfg: &ModelConfig) -> bool {
    cfg.arch == Arch::Qwen2 || cfg.attention_bias
}

/// Random weights for a model of this shape, deterministic in `seed`:
/// matrices `N(0, 0.02^2)`, biases `N(0, 0.02^2)`, norm weights `1 + N(0, 0.1^2)`
/// (not all ones, so tests see the norm weights act). For tests, benchmarks
/// and training from scratch.
pub fn random_weights(
    cfg: &ModelConfig,
    seed: u64,
    device: &Device,
) -> Result<HashMap<String, Tensor>, ModelError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = HashMap::new();
    for (name, shape) in expected_tensors(cfg) {
        let n: usize = shape.iter().product();
        let norm = name.ends_with("layernorm.weight") || name == "model.norm.weight";
        let data: Vec<f32> = (0..n)
            .map(|_| {
                let z = standard_normal(&mut rng);
                if norm {
                    1.0 + 0.1 * z
                } else {
                    0.02 * z
                }
            })
            .collect();
        out.insert(name, Tensor::from_vec(data, shape, device)?);
    }
    Ok(out)
}

/// One draw from N(0, 1) by the Box-Muller transform.
fn standard_normal<R: Rng>(rng: &mut R) -> f32 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // in (0, 1], so the log is finite
    let u2: f64 = rng.gen::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// Takes the tensors of [`expected_tensors`] out of `weights` as f32 [`Var`]s
/// on `device`; the error names a missing or misshapen tensor.
pub(crate) fn take_vars(
    cfg: &ModelConfig,
    weights: &HashMap<String, Tensor>,
    device: &Device,
) -> Result<Vec<(String, Var)>, ModelError> {
    cfg.validate().map_err(ModelError::Config)?;
    expected_tensors(cfg)
        .into_iter()
        .map(|(name, shape)| {
            let t = weights
                .get(&name)
                .ok_or_else(|| ModelError::Config(format!("missing tensor {name}")))?;
            if t.dims() != shape.as_slice() {
                return Err(ModelError::Config(format!(
                    "tensor {name}: expected shape {shape:?}, found {:?}",
                    t.dims()
                )));
            }
            let t = t.to_dtype(DType::F32)?.to_device(device)?;
            Ok((name, Var::from_tensor(&t)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn rms_norm_and_rotary_fused_match_written_out() {
        let dev = Device::Cpu;
        let x = Tensor::new(&[[[3f32, 4.0], [1.0, -1.0]]], &dev).unwrap();
        let w = Tensor::new(&[2f32, 0.5], &dev).unwrap();
        // Row [3, 4]: mean square 12.5, rms 3.5355; [3, 4] / 3.5355 * [2, 0.5] = [1.6971, 0.5657].
        let a = rms_norm(&x, &w, 0.0, Mode::Train).unwrap();
        let b = rms_norm(&x, &w, 0.0, Mode::Infer).unwrap();
        let v = a.to_vec3::<f32>().unwrap();
        assert!((v[0][0][0] - 1.697_056).abs() < 1e-5 && (v[0][0][1] - 0.565_685).abs() < 1e-5);
        assert!(close(&a, &b) < 1e-6);

        // Rotary: head_dim 4, one position at angle a: [x0, x1, x2, x3] ->
        // [x0 c - x2 s, x1 c' - x3 s', x2 c + x0 s, x3 c' + x1 s'].
        let q = Tensor::arange(0f32, 2.0 * 3.0 * 4.0, &dev)
            .unwrap()
            .reshape((1, 2, 3, 4))
            .unwrap();
        let (cos, sin) = Rotary {
            inv_freq: vec![1.0, 0.01],
        }
        .cos_sin(&[0, 1, 2], 1, 3, &dev)
        .unwrap();
        let a = apply_rotary(&q, &cos, &sin, Mode::Train).unwrap();
        let b = apply_rotary(&q, &cos, &sin, Mode::Infer).unwrap();
        assert!(close(&a, &b) < 1e-6);
        // Position 1, head 0: x = [4, 5, 6, 7], angle 1 and 0.01.
        let r = a
            .get(0)
            .unwrap()
            .get(0)
            .unwrap()
            .get(1)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let (c, s) = (1f32.cos(), 1f32.sin());
        assert!((r[0] - (4.0 * c - 6.0 * s)).abs() < 1e-5);
        assert!((r[2] - (6.0 * c + 4.0 * s)).abs() < 1e-5);
    }

    /// Values and gradients of `f` (fused) and `g` (written out) of a Var
    /// holding `shape` deterministic values, under the loss `sum(f(x) * c)`.
    fn compare_grads(
        shape: &[usize],
        fused: impl Fn(&Tensor) -> Tensor,
        written: impl Fn(&Tensor) -> Tensor,
    ) {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|i| ((i * 7919 % 101) as f32 - 50.0) / 20.0)
            .collect();
        let x = Var::from_tensor(&Tensor::from_vec(data, shape, &Device::Cpu).unwrap()).unwrap();
        let run = |f: &dyn Fn(&Tensor) -> Tensor| {
            let y = f(x.as_tensor());
            let c: Vec<f32> = (0..y.elem_count())
                .map(|i| ((i * 104_729 % 37) as f32 - 18.0) / 9.0)
                .collect();
            let c = Tensor::from_vec(c, y.shape(), &Device::Cpu).unwrap();
            let g = (&y * &c).unwrap().sum_all().unwrap().backward().unwrap();
            (y, g.get(x.as_tensor()).unwrap().clone())
        };
        let (ya, ga) = run(&fused);
        let (yb, gb) = run(&written);
        assert!(close(&ya, &yb) < 1e-5, "values {}", close(&ya, &yb));
        assert!(close(&ga, &gb) < 1e-4, "gradients {}", close(&ga, &gb));
        assert!(
            gb.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                > 0.0
        );
    }

    #[test]
    fn fused_training_ops_match_written_out_values_and_gradients() {
        let dev = Device::Cpu;
        // Causal softmax over (2, 3, 5, 7): 5 queries after 2 cached keys.
        let mask: Vec<f32> = (0..5)
            .flat_map(|i| (0..7).map(move |j| if j <= 2 + i { 0. } else { f32::NEG_INFINITY }))
            .collect();
        let mask = Tensor::from_vec(mask, (5, 7), &dev).unwrap();
        compare_grads(
            &[2, 3, 5, 7],
            |x| {
                x.apply_op1(grad_ops::CausalSoftmax {
                    t: 5,
                    past: 2,
                    scale: 1.0,
                })
                .unwrap()
            },
            |x| softmax_last(&x.broadcast_add(&mask).unwrap()).unwrap(),
        );
        compare_grads(
            &[4, 9],
            |x| x.apply_op1(grad_ops::LogSoftmax).unwrap(),
            |x| crate::log_softmax_last(x).unwrap(),
        );
        compare_grads(
            &[2, 3, 5, 7],
            |x| {
                x.apply_op1(grad_ops::CausalSoftmax {
                    t: 5,
                    past: 7,
                    scale: 0.5,
                })
                .unwrap()
            },
            |x| softmax_last(&(x * 0.5).unwrap()).unwrap(),
        );
        compare_grads(
            &[3, 10],
            |x| entropy(x).unwrap(),
            |x| {
                (x.exp().unwrap() * x)
                    .unwrap()
                    .sum(1)
                    .unwrap()
                    .neg()
                    .unwrap()
            },
        );
        let up = Tensor::from_vec(
            (0..30).map(|i| (i % 7) as f32 - 3.0).collect(),
            (3, 10),
            &dev,
        )
        .unwrap();
        compare_grads(
            &[3, 10],
            |x| swiglu(x, &up).unwrap(),
            |x| (x.silu().unwrap() * &up).unwrap(),
        );
        compare_grads(
            &[3, 10],
            |x| swiglu(&up, x).unwrap(),
            |x| (up.silu().unwrap() * x).unwrap(),
        );
        // Rotary with per-row angles (rows = B = 2), T = 3, D = 4.
        let (cos, sin) = Rotary {
            inv_freq: vec![1.0, 0.1],
        }
        .cos_sin(&[0, 1, 2, 5, 6, 7], 2, 3, &dev)
        .unwrap();
        compare_grads(
            &[2, 2, 3, 4],
            |x| apply_rotary(x, &cos, &sin, Mode::Train).unwrap(),
            |x| rotary_written_out(x, &cos, &sin).unwrap(),
        );
        // RMS norm: gradients for x here, for the weight below.
        let w = Tensor::from_vec((0..8).map(|i| 0.5 + i as f32 / 8.0).collect(), 8, &dev).unwrap();
        compare_grads(
            &[3, 2, 8],
            |x| x.apply_op2(&w, grad_ops::RmsNorm { eps: 1e-5 }).unwrap(),
            |x| rms_norm_written_out(x, &w, 1e-5).unwrap(),
        );
        let x = Tensor::from_vec(
            (0..48).map(|i| (i % 11) as f32 - 5.0).collect(),
            (6, 8),
            &dev,
        )
        .unwrap();
        compare_grads(
            &[8],
            |w| x.apply_op2(w, grad_ops::RmsNorm { eps: 1e-5 }).unwrap(),
            |w| rms_norm_written_out(&x, w, 1e-5).unwrap(),
        );
    }

    #[test]
    fn masks_and_positions_skip_left_padding() {
        let dev = Device::Cpu;
        let Mask::Additive(m) = attention_mask(&[1, 0], 0, 3, &dev).unwrap() else {
            panic!("padded rows need an additive mask");
        };
        let m = m.to_vec3::<f32>().unwrap();
        let ninf = f32::NEG_INFINITY;
        // Row 0 has one pad: column 0 is seen only by itself.
        assert_eq!(
            m[0],
            vec![
                vec![0., ninf, ninf],
                vec![ninf, 0., ninf],
                vec![ninf, 0., 0.]
            ]
        );
        assert_eq!(
            m[1],
            vec![vec![0., ninf, ninf], vec![0., 0., ninf], vec![0., 0., 0.]]
        );
        assert!(matches!(
            attention_mask(&[0, 0], 4, 1, &dev).unwrap(),
            Mask::None
        ));
        assert!(matches!(
            attention_mask(&[0, 0], 4, 2, &dev).unwrap(),
            Mask::Causal { past: 4 }
        ));
        assert_eq!(positions(&[0, 0], 2, 2), (vec![2, 3], 1));
        // Row 0: columns 1, 2 are pad, first real token; row 1 is unpadded.
        assert_eq!(positions(&[2, 0], 1, 2), (vec![0, 0, 1, 2], 2));
    }
}
