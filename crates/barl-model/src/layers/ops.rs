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
