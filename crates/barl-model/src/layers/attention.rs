//! Grouped-query attention with its masks, and the rotary positions of padded rows.

use super::ops::Mode;
use crate::kernels::grad_ops;
use crate::softmax_last;
use candle_core::{Device, Tensor};

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

pub(super) fn softmax(x: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
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
