//! Rotary position embeddings, with Llama 3 frequency scaling.

use super::ops::Mode;
use crate::kernels::grad_ops;
use crate::ModelConfig;
use candle_core::{Device, Tensor, D};

/// Rotary position embedding frequencies (`inv_freq` of Hugging Face).
///
/// `inv_freq_i = theta^(-2i/d)` for `i < d/2`; with Llama 3 scaling
/// (factor `s`, low/high frequency factors `l`, `h`, original context `L`),
/// wavelength `w_i = 2 pi / inv_freq_i`: kept when `w_i < L/h`, divided by `s`
/// when `w_i > L/l`, and in between blended as `(1 - a) f / s + a f` with
/// `a = (L / w_i - l) / (h - l)`.
#[derive(Clone, Debug)]
pub struct Rotary {
    pub(super) inv_freq: Vec<f32>,
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
