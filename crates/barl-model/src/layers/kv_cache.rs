//! The KV cache: preallocated per-layer buffers written in place, growing by doubling.

use crate::{ModelConfig, ModelError};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;

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
    pub(super) layers: Vec<(Tensor, Tensor)>,
    pub(super) n_layers: usize,
    pub(super) n_kv_heads: usize,
    pub(super) head_dim: usize,
    pub(super) rows: usize,
    pub(super) len: usize,
    pub(super) capacity: usize,
    pub(super) left_pad: Vec<usize>,
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
pub(super) struct WriteColumn<'a> {
    pub(super) data: &'a [f32],
    pub(super) col: usize,
    pub(super) h: usize,
    pub(super) d: usize,
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
pub(super) fn grow(
    buf: &Tensor,
    rows: usize,
    len: usize,
    cap: usize,
) -> candle_core::Result<Tensor> {
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
