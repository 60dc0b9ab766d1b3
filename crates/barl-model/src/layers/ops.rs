//! Elementwise and row ops of the decoder (RMS norm, SwiGLU, log-softmax, entropy) and `Linear`, each in its training and inference form.

use crate::kernels::{few_rows, grad_ops};
use candle_core::{DType, Tensor, D};

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

/// `y = x W^T (+ b)` with `W` stored `(out, in)` as in Hugging Face
/// checkpoints, plus a LoRA update `s * dropout(x) A^T B^T` when adapted.
#[derive(Clone, Debug)]
pub(crate) struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub lora: Option<LoraPair>,
}

/// The trained low-rank update of an adapted [`Linear`] (see [`crate::lora`]).
#[derive(Clone, Debug)]
pub(crate) struct LoraPair {
    /// `(r, in)`.
    pub a: Tensor,
    /// `(out, r)`.
    pub b: Tensor,
    pub scale: f64,
    /// Dropout on the adapter's input in training forwards.
    pub dropout: Option<Dropout>,
}

/// Seeded dropout: the mask of call `k` is a function of `(seed, k)`, and the
/// model's calls run in a fixed order, so runs repeat exactly.
#[derive(Clone, Debug)]
pub(crate) struct Dropout {
    pub p: f64,
    pub seed: u64,
    /// Shared by every adapted projection of a model.
    pub calls: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Dropout {
    /// `x * mask / (1 - p)`, each entry kept with probability `1 - p`.
    fn apply(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        use rand::{Rng, SeedableRng};
        let k = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
            self.seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let keep = 1.0 / (1.0 - self.p) as f32;
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| if rng.gen::<f64>() < self.p { 0.0 } else { keep })
            .collect();
        x * Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?
    }
}

impl Linear {
    /// An unadapted projection.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            weight,
            bias,
            lora: None,
        }
    }

    /// Any leading shape; the rows are flattened into one 2-D matmul. On the
    /// inference path, few rows on the CPU go through [`few_rows`]; on the
    /// training path a frozen weight (not a variable: LoRA's base) goes
    /// through [`grad_ops::FrozenMatmul`], which forms no weight gradient.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        let dims = x.dims().to_vec();
        let (last, lead) = dims.split_last().expect("linear input has rank >= 1");
        let rows: usize = lead.iter().product();
        let x2 = x.reshape((rows, *last))?;
        let cpu_f32 =
            x.device().is_cpu() && x.dtype() == DType::F32 && self.weight.dtype() == DType::F32;
        let frozen = mode == Mode::Train && cpu_f32 && !self.weight.track_op();
        // Without dropout an adapted frozen projection is one op (see LoraMatmul).
        let fused = match &self.lora {
            Some(l @ LoraPair { dropout: None, .. }) if frozen => Some(l),
            _ => None,
        };
        let y = if let Some(l) = fused {
            x2.contiguous()?.apply_op3(
                &l.a.contiguous()?,
                &l.b.contiguous()?,
                grad_ops::LoraMatmul {
                    w: self.weight.contiguous()?,
                    scale: l.scale,
                },
            )?
        } else if mode == Mode::Infer && rows <= few_rows::MAX_ROWS && cpu_f32 {
            x2.contiguous()?
                .apply_op2_no_bwd(&self.weight.contiguous()?, &few_rows::XWt)?
        } else if frozen {
            x2.contiguous()?.apply_op1(grad_ops::FrozenMatmul {
                w: self.weight.contiguous()?,
            })?
        } else {
            x2.matmul(&self.weight.t()?)?
        };
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let y = match &self.lora {
            Some(l) if fused.is_none() => {
                let xin = match (&l.dropout, mode) {
                    (Some(d), Mode::Train) => d.apply(&x2)?,
                    _ => x2,
                };
                let d = xin.matmul(&l.a.t()?)?.matmul(&l.b.t()?)?;
                (y + (d * l.scale)?)?
            }
            _ => y,
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
            lora: self.lora.as_ref().map(|l| LoraPair {
                a: l.a.detach(),
                b: l.b.detach(),
                scale: l.scale,
                dropout: l.dropout.clone(),
            }),
        }
    }
}
