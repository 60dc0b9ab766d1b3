//! Dequantisation of GGML blocks (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K) to f32.

use super::types::GgmlType;
use half::{bf16, f16};

/// Data that does not hold whole blocks of its type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DequantError {
    #[error("{n} elements is not a multiple of the {ty:?} block size")]
    NotWholeBlocks { n: usize, ty: GgmlType },
    #[error("{ty:?} data has {got} bytes, expected {expected} for {n} elements")]
    Length {
        ty: GgmlType,
        got: usize,
        expected: usize,
        n: usize,
    },
}

pub(super) fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Dequantizes `n` elements of type `ty` from `data` to f32.
///
/// Block formulas (`d`, `m` are f16 per-block scale and minimum; `q` the stored integers):
/// - Q8_0 (32): `x = d * q`, q an i8.
/// - Q4_0 (32): `x = d * (q - 8)`, q a nibble; byte j holds elements j (low) and j + 16 (high).
/// - Q4_1 (32): `x = d * q + m`, same nibble order.
/// - Q4_K (256): 8 sub-blocks of 32 with 6-bit scale `sc` and min `mn`:
///   `x = d * sc * q - dmin * mn`; each 32-byte group of nibbles holds two sub-blocks (low, high).
/// - Q6_K (256): 16 sub-blocks of 16 with i8 scale: `x = d * sc * (q - 32)`, q a 6-bit
///   value built from 4 low bits (`ql`) and 2 high bits (`qh`).
pub fn dequantize(ty: GgmlType, data: &[u8], n: usize) -> Result<Vec<f32>, DequantError> {
    if !n.is_multiple_of(ty.block_elems()) {
        return Err(DequantError::NotWholeBlocks { n, ty });
    }
    let expected = n / ty.block_elems() * ty.block_bytes();
    if data.len() != expected {
        return Err(DequantError::Length {
            ty,
            got: data.len(),
            expected,
            n,
        });
    }
    let mut out = Vec::with_capacity(n);
    let blocks = data.chunks_exact(ty.block_bytes());
    match ty {
        GgmlType::F32 => out.extend(blocks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        GgmlType::F16 => out.extend(blocks.map(|b| f16_at(b, 0))),
        GgmlType::BF16 => out.extend(blocks.map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())),
        GgmlType::Q8_0 => {
            for b in blocks {
                let d = f16_at(b, 0);
                out.extend(b[2..34].iter().map(|&q| d * f32::from(q as i8)));
            }
        }
        GgmlType::Q4_0 => {
            for b in blocks {
                let d = f16_at(b, 0);
                let qs = &b[2..18];
                out.extend(qs.iter().map(|&q| d * (f32::from(q & 0xF) - 8.0)));
                out.extend(qs.iter().map(|&q| d * (f32::from(q >> 4) - 8.0)));
            }
        }
        GgmlType::Q4_1 => {
            for b in blocks {
                let (d, m) = (f16_at(b, 0), f16_at(b, 2));
                let qs = &b[4..20];
                out.extend(qs.iter().map(|&q| d * f32::from(q & 0xF) + m));
                out.extend(qs.iter().map(|&q| d * f32::from(q >> 4) + m));
            }
        }
        GgmlType::Q4K => {
            for b in blocks {
                let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
                let scales = &b[4..16];
                let qs = &b[16..144];
                for (g, q) in qs.chunks_exact(32).enumerate() {
                    let (sc1, m1) = k_scale_min(2 * g, scales);
                    let (sc2, m2) = k_scale_min(2 * g + 1, scales);
                    let (d1, mn1) = (d * f32::from(sc1), dmin * f32::from(m1));
                    let (d2, mn2) = (d * f32::from(sc2), dmin * f32::from(m2));
                    out.extend(q.iter().map(|&x| d1 * f32::from(x & 0xF) - mn1));
                    out.extend(q.iter().map(|&x| d2 * f32::from(x >> 4) - mn2));
                }
            }
        }
        GgmlType::Q6K => {
            for b in blocks {
                let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
                let d = f16_at(b, 208);
                for half in 0..2 {
                    let (ql, qh, sc) = (&ql[64 * half..], &qh[32 * half..], &sc[8 * half..]);
                    let mut y = [0f32; 128];
                    for l in 0..32 {
                        let is = l / 16;
                        let q = |low: u8, shift: u32| {
                            f32::from((low | (((qh[l] >> shift) & 3) << 4)) as i8 - 32)
                        };
                        let s = |k: usize| d * f32::from(sc[is + k] as i8);
                        y[l] = s(0) * q(ql[l] & 0xF, 0);
                        y[l + 32] = s(2) * q(ql[l + 32] & 0xF, 2);
                        y[l + 64] = s(4) * q(ql[l] >> 4, 4);
                        y[l + 96] = s(6) * q(ql[l + 32] >> 4, 6);
                    }
                    out.extend_from_slice(&y);
                }
            }
        }
    }
    Ok(out)
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K block, packed in 12 bytes:
/// sub-blocks 0..4 use the low 6 bits of bytes j and j + 4; sub-blocks 4..8 take 4 bits
/// from byte j + 4 and their top 2 bits from the spare high bits of bytes j - 4 and j.
pub(super) fn k_scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An f16 scale in little-endian bytes.
    fn h(x: f32) -> [u8; 2] {
        f16::from_f32(x).to_le_bytes()
    }

    #[test]
    fn q8_0_is_scale_times_signed_byte() {
        let mut block = h(0.5).to_vec();
        block.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let x = dequantize(GgmlType::Q8_0, &block, 32).unwrap();
        let want: Vec<f32> = (0..32).map(|i| 0.5 * (i as f32 - 16.0)).collect();
        assert_eq!(x, want);
    }

    #[test]
    fn q4_nibbles_low_half_first() {
        // Byte j holds element j (low nibble) and element j + 16 (high nibble).
        let nibbles: Vec<u8> = (0..16).map(|j| (j as u8) | ((15 - j as u8) << 4)).collect();
        let mut q4_0 = h(2.0).to_vec();
        q4_0.extend(&nibbles);
        let x = dequantize(GgmlType::Q4_0, &q4_0, 32).unwrap();
        for j in 0..16 {
            assert_eq!(x[j], 2.0 * (j as f32 - 8.0));
            assert_eq!(x[j + 16], 2.0 * ((15 - j) as f32 - 8.0));
        }
        let mut q4_1 = h(0.25).to_vec();
        q4_1.extend(h(-1.0));
        q4_1.extend(&nibbles);
        let x = dequantize(GgmlType::Q4_1, &q4_1, 32).unwrap();
        assert_eq!((x[3], x[16 + 3]), (0.25 * 3.0 - 1.0, 0.25 * 12.0 - 1.0));
    }

    #[test]
    fn q4_k_scales_unpack_both_halves() {
        // Sub-blocks 0..4: low 6 bits of bytes j (scale) and j + 4 (min).
        // Sub-blocks 4..8: 4 bits of byte j + 4 and the top 2 bits of bytes j - 4, j.
        let mut s = [0u8; 12];
        s[0] = 0b11_000101; // scale 0 = 5, top bits 3 go to scale 4
        s[4] = 0b10_000111; // min 0 = 7, top bits 2 go to min 4
        s[8] = 0x9A; // scale 4 low = 0xA, min 4 low = 0x9
        assert_eq!(k_scale_min(0, &s), (5, 7));
        assert_eq!(k_scale_min(4, &s), (0xA | (3 << 4), 0x9 | (2 << 4)));
    }

    #[test]
    fn sizes_that_do_not_fit_the_blocks_are_errors() {
        assert!(dequantize(GgmlType::Q8_0, &[0; 34], 16).is_err());
        assert!(dequantize(GgmlType::Q8_0, &[0; 33], 32).is_err());
        assert_eq!(
            dequantize(GgmlType::F32, &1.5f32.to_le_bytes(), 1).unwrap(),
            [1.5]
        );
    }
}
