//! Fused CPU kernels with a backward, for the training path: a masked
//! softmax, RMS norm and log-softmax. Each forward is one pass over the rows;
//! each backward is the closed form written with differentiable tensor ops:
//!
//! - softmax `y`: `dx = y * (g - sum(g * y))` (masked entries have `y = 0`);
//! - log-softmax `y`: `dx = g - exp(y) * sum(g)`;
//! - RMS norm `y = w * x r`, `r = (mean(x^2) + eps)^-1/2`, `u = g * w`:
//!   `dx = r (u - x r * mean(u * x r))`, `dw = sum_rows(g * x r)`.
//!
//! They replace 5-8 elementwise ops (and as many saved activations) each,
//! which is most of the non-matmul time and memory of a training step. Tests
//! compare values and gradients with the written-out forms.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor, D};
use rayon::prelude::*;

/// Whether the fused ops apply (they are written for f32 on the CPU).
pub fn usable(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{op}: f32 only");
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{op}: contiguous input only"),
    }
}

/// `y` of `x`'s shape, in parallel over its rows of length `n`:
/// `f(r, y_r, x_r)` writes row `r`.
fn map_rows(
    x: &[f32],
    n: usize,
    shape: &Shape,
    f: impl Fn(usize, &mut [f32], &[f32]) + Sync,
) -> (CpuStorage, Shape) {
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(n)
        .zip(x.par_chunks(n))
        .enumerate()
        .for_each(|(r, (yr, xr))| f(r, yr, xr));
    (CpuStorage::F32(y), shape.clone())
}

/// `softmax(scale * x)` over the last dim where row `r` (query
/// `i = r % t`) keeps only its first `past + i + 1` entries (all of them
/// when `past` is the row length); the rest get probability 0.
pub struct CausalSoftmax {
    pub t: usize,
    pub past: usize,
    pub scale: f32,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        let n = l.dims().last().copied().unwrap_or(1).max(1);
        Ok(map_rows(x, n, l.shape(), |r, yr, xr| {
            let keep = (self.past + r % self.t + 1).min(n);
            let m = xr[..keep].iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (o, &v) in yr[..keep].iter_mut().zip(&xr[..keep]) {
                *o = ((v - m) * self.scale).exp();
                sum += *o;
            }
            let inv = 1.0 / sum;
            yr[..keep].iter_mut().for_each(|o| *o *= inv);
        }))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let gy = (g * y)?;
        let s = gy.sum_keepdim(D::Minus1)?;
        Ok(Some(((gy - y.broadcast_mul(&s)?)? * self.scale as f64)?))
    }
}

/// Log-softmax over the last dim.
pub struct LogSoftmax;

impl CustomOp1 for LogSoftmax {
    fn name(&self) -> &'static str {
        "log-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        let n = l.dims().last().copied().unwrap_or(1).max(1);
        Ok(map_rows(x, n, l.shape(), |_, yr, xr| {
            let m = xr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = xr.iter().map(|&v| (v - m).exp()).sum();
            let lse = m + sum.ln();
            for (o, &v) in yr.iter_mut().zip(xr) {
                *o = v - lse;
            }
        }))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let s = g.sum_keepdim(D::Minus1)?;
        Ok(Some((g - y.exp()?.broadcast_mul(&s)?)?))
    }
}

/// Rotary embedding of `x` `(B, H, T, D)` by angles with `cos`/`sin`
/// `(rows, T, D/2)` (`rows` 1 or B), rotate-half layout; `sign = -1`
/// rotates backwards, which is the backward of the rotation.
#[derive(Clone)]
pub struct Rope {
    pub cos: std::sync::Arc<Vec<f32>>,
    pub sin: std::sync::Arc<Vec<f32>>,
    pub rows: usize,
    pub sign: f32,
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "rope-with-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        let (_, h, t, d) = l.shape().dims4()?;
        let half = d / 2;
        if self.cos.len() != self.rows * t * half {
            candle_core::bail!("rope: {} angles for {:?}", self.cos.len(), l.dims());
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(t * d)
            .zip(x.par_chunks(t * d))
            .enumerate()
            .for_each(|(bh, (yb, xb))| {
                let row = if self.rows == 1 { 0 } else { bh / h };
                for ti in 0..t {
                    let cs = (row * t + ti) * half;
                    let (xr, yr) = (&xb[ti * d..(ti + 1) * d], &mut yb[ti * d..(ti + 1) * d]);
                    for i in 0..half {
                        let (c, sn) = (self.cos[cs + i], self.sign * self.sin[cs + i]);
                        yr[i] = xr[i] * c - xr[i + half] * sn;
                        yr[i + half] = xr[i + half] * c + xr[i] * sn;
                    }
                }
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let back = Rope {
            sign: -self.sign,
            ..self.clone()
        };
        Ok(Some(g.contiguous()?.apply_op1(back)?))
    }
}

/// `silu(gate) * up` (SwiGLU), `silu(a) = a sigmoid(a)`; with
/// `s = sigmoid(a)`: `d gate = g up s (1 + a (1 - s))`, `d up = g silu(a)`.
pub struct SwiGlu;

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "swiglu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let a = slice(s1, l1, self.name())?;
        let u = slice(s2, l2, self.name())?;
        if l1.dims() != l2.dims() {
            candle_core::bail!("swiglu: shapes {:?} and {:?}", l1.dims(), l2.dims());
        }
        let mut y = vec![0f32; a.len()];
        y.par_chunks_mut(4096)
            .zip(a.par_chunks(4096).zip(u.par_chunks(4096)))
            .for_each(|(yc, (ac, uc))| {
                for ((o, &x), &v) in yc.iter_mut().zip(ac).zip(uc) {
                    *o = x / (1.0 + (-x).exp()) * v;
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        a: &Tensor,
        u: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let s = (a.neg()?.exp()? + 1.0)?.recip()?;
        let silu = (a * &s)?;
        let ds = (&s * ((a * (1.0 - &s)?)? + 1.0)?)?;
        let da = ((g * u)? * ds)?;
        let du = (g * silu)?;
        Ok((Some(da), Some(du)))
    }
}

/// Entropy `H = -sum exp(l) l` of each row of log-probabilities `l`;
/// `dH/dl = -exp(l) (l + 1)`.
pub struct Entropy;

impl CustomOp1 for Entropy {
    fn name(&self) -> &'static str {
        "entropy"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        let dims = l.dims();
        let n = dims.last().copied().unwrap_or(1).max(1);
        let h: Vec<f32> = x
            .par_chunks(n)
            .map(|r| -r.iter().map(|&v| v.exp() * v).sum::<f32>())
            .collect();
        Ok((CpuStorage::F32(h), Shape::from(&dims[..dims.len() - 1])))
    }

    fn bwd(&self, l: &Tensor, _h: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let d = (l.exp()? * (l + 1.0)?)?.neg()?;
        Ok(Some(d.broadcast_mul(&g.unsqueeze(D::Minus1)?)?))
    }
}

/// RMS norm over the last dim of `x` with weight `w`.
pub struct RmsNorm {
    pub eps: f64,
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm-with-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, self.name())?;
        let w = slice(s2, l2, self.name())?;
        let n = w.len();
        if l1.dims().last() != Some(&n) {
            candle_core::bail!("rms-norm: weight of {n} for input {:?}", l1.dims());
        }
        Ok(map_rows(x, n, l1.shape(), |_, yr, xr| {
            super::rms_norm_row(yr, xr, w, self.eps)
        }))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let r = (x.sqr()?.mean_keepdim(D::Minus1)? + self.eps)?
            .sqrt()?
            .recip()?;
        let xh = x.broadcast_mul(&r)?;
        let u = g.broadcast_mul(w)?;
        let dot = (&u * &xh)?.mean_keepdim(D::Minus1)?;
        let dx = (u - xh.broadcast_mul(&dot)?)?.broadcast_mul(&r)?;
        let n = w.dim(0)?;
        let dw = (g * xh)?.reshape(((), n))?.sum(0)?;
        Ok((Some(dx), Some(dw)))
    }
}

/// `y = x W^T` for a frozen `W` `(out, in)`: the backward gives only
/// `dx = g W`. candle's own matmul backward also forms `dW = g^T x` (the
/// cost of a full weight gradient) even when nothing trains `W`, which would
/// make a LoRA step as slow as full fine-tuning.
pub struct FrozenMatmul {
    /// Contiguous `(out, in)`, untracked.
    pub w: Tensor,
}

impl CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        let (out, inp) = self.w.dims2()?;
        let dims = l.dims();
        if dims.last() != Some(&inp) {
            candle_core::bail!(
                "frozen-matmul: weight {:?} for input {dims:?}",
                self.w.dims()
            );
        }
        let rows = x.len() / inp.max(1);
        let xt = Tensor::from_slice(x, (rows, inp), &candle_core::Device::Cpu)?;
        let y = xt.matmul(&self.w.t()?)?.flatten_all()?.to_vec1::<f32>()?;
        let mut shape = dims[..dims.len() - 1].to_vec();
        shape.push(out);
        Ok((CpuStorage::F32(y), Shape::from(shape)))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let dims = g.dims();
        let (out, inp) = self.w.dims2()?;
        let rows = g.elem_count() / out.max(1);
        let dx = g.reshape((rows, out))?.matmul(&self.w)?;
        let mut shape = dims[..dims.len() - 1].to_vec();
        shape.push(inp);
        dx.reshape(shape).map(Some)
    }
}

/// An adapted projection in one op: `y = x W^T + s (x A^T) B^T` for a frozen
/// `W` `(out, in)` and trained `A` `(r, in)`, `B` `(out, r)`. Written out, the
/// update's three `(rows, out)` intermediates (`(xA^T)B^T`, its scaling and
/// the sum) would each be kept for the backward, more activation memory than
/// full fine-tuning's weight gradients save; here only `y` is. Backward, with
/// `u = x A^T` recomputed and `h = g B`:
/// `dx = g W + s h A`, `dA = s h^T x`, `dB = s g^T u`.
pub struct LoraMatmul {
    /// Contiguous `(out, in)`, untracked.
    pub w: Tensor,
    pub scale: f64,
}

impl CustomOp3 for LoraMatmul {
    fn name(&self) -> &'static str {
        "lora-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dev = candle_core::Device::Cpu;
        let x = slice(s1, l1, self.name())?;
        let (out, inp) = self.w.dims2()?;
        let (r, a_in) = l2.shape().dims2()?;
        if l1.dims().last() != Some(&inp) || a_in != inp || l3.shape().dims2()? != (out, r) {
            candle_core::bail!(
                "lora-matmul: x {:?}, W {:?}, A {:?}, B {:?}",
                l1.dims(),
                self.w.dims(),
                l2.dims(),
                l3.dims()
            );
        }
        let rows = x.len() / inp.max(1);
        let xt = Tensor::from_slice(x, (rows, inp), &dev)?;
        let a = Tensor::from_slice(slice(s2, l2, self.name())?, (r, inp), &dev)?;
        let b = Tensor::from_slice(slice(s3, l3, self.name())?, (out, r), &dev)?;
        let up = (xt.matmul(&a.t()?)?.matmul(&b.t()?)? * self.scale)?;
        let y = (xt.matmul(&self.w.t()?)? + up)?;
        let mut shape = l1.dims()[..l1.dims().len() - 1].to_vec();
        shape.push(out);
        Ok((
            CpuStorage::F32(y.flatten_all()?.to_vec1::<f32>()?),
            Shape::from(shape),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (out, inp) = self.w.dims2()?;
        let rows = g.elem_count() / out.max(1);
        let x2 = x.reshape((rows, inp))?;
        let g2 = g.reshape((rows, out))?;
        let h = g2.matmul(b)?;
        let u = x2.matmul(&a.t()?)?;
        let dx = (g2.matmul(&self.w)? + (h.matmul(a)? * self.scale)?)?;
        let da = (h.t()?.matmul(&x2)? * self.scale)?;
        let db = (g2.t()?.matmul(&u)? * self.scale)?;
        Ok((Some(dx.reshape(x.shape())?), Some(da), Some(db)))
    }
}
