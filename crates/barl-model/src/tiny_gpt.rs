//! A tiny GPT-style causal transformer trained from scratch (the policy of the
//! synthetic experiment).
//!
//! Pre-norm blocks (LayerNorm -> causal self-attention -> residual, LayerNorm ->
//! GELU MLP -> residual), learned absolute position embeddings and an untied
//! output head. The output head may be smaller than the input vocabulary: the
//! synthetic task feeds feedback tokens to the model but only lets it emit
//! alphabet symbols.
//!
//! Every op on the forward path has a backward in candle (no fused
//! softmax/layer-norm kernels), so the same code serves training and sampling.
//! The KV cache is a plain value passed in and returned, so callers can keep,
//! fork or drop it.

use candle_core::{DType, Device, Module, Tensor, Var, D};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr_normal::standard_normal;
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Shape of a [`TinyGpt`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TinyGptConfig {
    /// Number of distinct input token ids.
    pub vocab_size: usize,
    /// Number of output classes (logits per position); `<= vocab_size`.
    pub n_outputs: usize,
    /// Longest sequence the position table covers.
    pub max_len: usize,
    /// Residual width.
    pub d_model: usize,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Attention heads; must divide `d_model`.
    pub n_heads: usize,
    /// Hidden width of the MLP.
    pub d_ff: usize,
    /// The output head reuses the input embeddings of the first `n_outputs`
    /// tokens (plus its own bias) instead of a separate matrix.
    pub tied_head: bool,
}

impl TinyGptConfig {
    /// Checks the shape is buildable.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |what: &str| Err(ModelError::Config(what.to_string()));
        if self.vocab_size == 0 || self.n_outputs == 0 || self.max_len == 0 {
            return bad("vocab_size, n_outputs and max_len must be positive");
        }
        if self.n_outputs > self.vocab_size {
            return bad("n_outputs must not exceed vocab_size");
        }
        if self.d_model == 0 || self.n_layers == 0 || self.n_heads == 0 || self.d_ff == 0 {
            return bad("d_model, n_layers, n_heads and d_ff must be positive");
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(ModelError::Config(format!(
                "n_heads ({}) must divide d_model ({})",
                self.n_heads, self.d_model
            )));
        }
        Ok(())
    }
}

/// Keys and values of earlier positions, per layer: each `(B, H, T_past, D_head)`.
#[derive(Clone, Debug)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
}

impl KvCache {
    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .map_or(0, |(k, _)| k.dim(2).unwrap_or(0))
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Differentiable layer norm (candle's fused kernel has no backward).
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    /// `y = (x - mean) / sqrt(var + 1e-5) * weight + bias` over the last dim.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        let xn = xc.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
        xn.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}

/// `y = x W + b` with `W` stored as `(in, out)`.
struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.broadcast_matmul(&self.weight)?.broadcast_add(&self.bias)
    }
}

struct Block {
    ln1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    ln2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

/// The model. Cheap to clone (tensors are reference counted).
pub struct TinyGpt {
    cfg: TinyGptConfig,
    tok_emb: Tensor,
    pos_emb: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    head: Linear,
    /// Trainable variables in a fixed order (see [`TinyGpt::var_names`]).
    vars: Vec<Var>,
}

/// Softmax over the last dim, built from differentiable ops. The max is
/// detached: subtracting a constant leaves the softmax unchanged.
pub fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Log-softmax over the last dim, differentiable.
pub fn log_softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)
}

impl TinyGpt {
    /// A freshly initialised model: weights `N(0, 0.02)` (output projections of
    /// each block scaled by `1/sqrt(2 n_layers)`, as in GPT-2), biases zero,
    /// norms one. Deterministic in `seed`.
    pub fn new(cfg: &TinyGptConfig, seed: u64, device: &Device) -> Result<Self, ModelError> {
        cfg.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut vars = Vec::new();
        let mut normal =
            |shape: &[usize], std: f32, vars: &mut Vec<Var>| -> Result<Tensor, ModelError> {
                let n: usize = shape.iter().product();
                let data: Vec<f32> = (0..n).map(|_| standard_normal(&mut rng) * std).collect();
                let v = Var::from_tensor(&Tensor::from_vec(data, shape, device)?)?;
                let t = v.as_tensor().clone();
                vars.push(v);
                Ok(t)
            };
        let constant =
            |shape: &[usize], value: f32, vars: &mut Vec<Var>| -> Result<Tensor, ModelError> {
                let v =
                    Var::from_tensor(&(Tensor::ones(shape, DType::F32, device)? * value as f64)?)?;
                let t = v.as_tensor().clone();
                vars.push(v);
                Ok(t)
            };
        let d = cfg.d_model;
        let proj_std = 0.02 / (2.0 * cfg.n_layers as f32).sqrt();
        let tok_emb = normal(&[cfg.vocab_size, d], 0.02, &mut vars)?;
        let pos_emb = normal(&[cfg.max_len, d], 0.02, &mut vars)?;
        let mut blocks = Vec::with_capacity(cfg.n_layers);
        for _ in 0..cfg.n_layers {
            blocks.push(Block {
                ln1: LayerNorm {
                    weight: constant(&[d], 1.0, &mut vars)?,
                    bias: constant(&[d], 0.0, &mut vars)?,
                },
                qkv: Linear {
                    weight: normal(&[d, 3 * d], 0.02, &mut vars)?,
                    bias: constant(&[3 * d], 0.0, &mut vars)?,
                },
                proj: Linear {
                    weight: normal(&[d, d], proj_std, &mut vars)?,
                    bias: constant(&[d], 0.0, &mut vars)?,
                },
                ln2: LayerNorm {
                    weight: constant(&[d], 1.0, &mut vars)?,
                    bias: constant(&[d], 0.0, &mut vars)?,
                },
                fc1: Linear {
                    weight: normal(&[d, cfg.d_ff], 0.02, &mut vars)?,
                    bias: constant(&[cfg.d_ff], 0.0, &mut vars)?,
                },
                fc2: Linear {
                    weight: normal(&[cfg.d_ff, d], proj_std, &mut vars)?,
                    bias: constant(&[d], 0.0, &mut vars)?,
                },
            });
        }
        let ln_f = LayerNorm {
            weight: constant(&[d], 1.0, &mut vars)?,
            bias: constant(&[d], 0.0, &mut vars)?,
        };
        let head = Linear {
            // A view of the embedding rows: it follows their in-place updates
            // and passes its gradient to them.
            weight: if cfg.tied_head {
                tok_emb.narrow(0, 0, cfg.n_outputs)?.t()?
            } else {
                normal(&[d, cfg.n_outputs], 0.02, &mut vars)?
            },
            bias: constant(&[cfg.n_outputs], 0.0, &mut vars)?,
        };
        Ok(Self {
            cfg: cfg.clone(),
            tok_emb,
            pos_emb,
            blocks,
            ln_f,
            head,
            vars,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TinyGptConfig {
        &self.cfg
    }

    /// Trainable variables (for the optimiser), in the order of [`Self::var_names`].
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// Names of the trainable variables, aligned with [`Self::vars`].
    pub fn var_names(&self) -> Vec<String> {
        let mut names = vec!["tok_emb".to_string(), "pos_emb".to_string()];
        for i in 0..self.cfg.n_layers {
            for p in [
                "ln1.weight",
                "ln1.bias",
                "qkv.weight",
                "qkv.bias",
                "proj.weight",
                "proj.bias",
                "ln2.weight",
                "ln2.bias",
                "fc1.weight",
                "fc1.bias",
                "fc2.weight",
                "fc2.bias",
            ] {
                names.push(format!("blocks.{i}.{p}"));
            }
        }
        for p in ["ln_f.weight", "ln_f.bias", "head.weight", "head.bias"] {
            if !(self.cfg.tied_head && p == "head.weight") {
                names.push(p.to_string());
            }
        }
        names
    }

    /// A view of the same weights that records no autograd graph: use it for
    /// sampling and probes. It follows later optimiser updates (shared storage).
    pub fn detached(&self) -> Self {
        let ln = |l: &LayerNorm| LayerNorm {
            weight: l.weight.detach(),
            bias: l.bias.detach(),
        };
        let lin = |l: &Linear| Linear {
            weight: l.weight.detach(),
            bias: l.bias.detach(),
        };
        Self {
            cfg: self.cfg.clone(),
            tok_emb: self.tok_emb.detach(),
            pos_emb: self.pos_emb.detach(),
            blocks: self
                .blocks
                .iter()
                .map(|b| Block {
                    ln1: ln(&b.ln1),
                    qkv: lin(&b.qkv),
                    proj: lin(&b.proj),
                    ln2: ln(&b.ln2),
                    fc1: lin(&b.fc1),
                    fc2: lin(&b.fc2),
                })
                .collect(),
            ln_f: ln(&self.ln_f),
            head: lin(&self.head),
            vars: self.vars.clone(),
        }
    }

    /// Logits `(B, T, n_outputs)` for `tokens` `(B, T)` (u32) that follow the
    /// positions held in `cache` (if any), and the cache extended by them.
    ///
    /// Attention is causal; the cached positions come first. Right padding is
    /// harmless: no position attends to later ones.
    pub fn forward(
        &self,
        tokens: &Tensor,
        cache: Option<&KvCache>,
    ) -> Result<(Tensor, KvCache), ModelError> {
        let (b, t) = tokens.dims2()?;
        let past = cache.map_or(0, KvCache::len);
        if past + t > self.cfg.max_len {
            return Err(ModelError::Config(format!(
                "sequence of {} positions exceeds max_len {}",
                past + t,
                self.cfg.max_len
            )));
        }
        let d = self.cfg.d_model;
        let h = self.cfg.n_heads;
        let dh = d / h;
        let emb = candle_nn::Embedding::new(self.tok_emb.clone(), d).forward(tokens)?;
        let mut x = emb.broadcast_add(&self.pos_emb.narrow(0, past, t)?)?;
        // Additive causal mask (t, past + t): position i sees keys j <= past + i.
        let mask = if t > 1 {
            let m: Vec<f32> = (0..t)
                .flat_map(|i| {
                    (0..past + t).map(move |j| {
                        if j <= past + i {
                            0.0
                        } else {
                            f32::NEG_INFINITY
                        }
                    })
                })
                .collect();
            Some(Tensor::from_vec(m, (t, past + t), tokens.device())?)
        } else {
            None
        };
        let scale = 1.0 / (dh as f64).sqrt();
        let mut new_layers = Vec::with_capacity(self.blocks.len());
        for (li, blk) in self.blocks.iter().enumerate() {
            let hn = blk.ln1.forward(&x)?;
            let qkv = blk.qkv.forward(&hn)?; // (B, t, 3d)
            let split = |i: usize| -> candle_core::Result<Tensor> {
                qkv.narrow(2, i * d, d)?
                    .reshape((b, t, h, dh))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let (q, mut k, mut v) = (split(0)?, split(1)?, split(2)?);
            if let Some(c) = cache {
                let (pk, pv) = &c.layers[li];
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            let mut att = (q.matmul(&k.t()?.contiguous()?)? * scale)?; // (B, H, t, past+t)
            if let Some(m) = &mask {
                att = att.broadcast_add(m)?;
            }
            let y = softmax_last(&att)?.matmul(&v)?; // (B, H, t, dh)
            let y = y.transpose(1, 2)?.reshape((b, t, d))?;
            x = (x + blk.proj.forward(&y)?)?;
            let m = blk.fc1.forward(&blk.ln2.forward(&x)?)?.gelu()?;
            x = (x + blk.fc2.forward(&m)?)?;
            new_layers.push((k, v));
        }
        let logits = self.head.forward(&self.ln_f.forward(&x)?)?;
        Ok((logits, KvCache { layers: new_layers }))
    }
}

/// A tiny normal sampler so the crate needs no extra distribution dependency.
mod rand_distr_normal {
    use rand::Rng;

    /// One draw from N(0, 1) by the Box-Muller transform.
    pub fn standard_normal<R: Rng>(rng: &mut R) -> f32 {
        // 1 - u keeps the log argument in (0, 1].
        let u1: f64 = 1.0 - rng.gen::<f64>();
        let u2: f64 = rng.gen::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> TinyGptConfig {
        TinyGptConfig {
            vocab_size: 6,
            n_outputs: 4,
            max_len: 16,
            d_model: 16,
            n_layers: 2,
            n_heads: 4,
            d_ff: 32,
            tied_head: false,
        }
    }

    fn toks(v: &[u32], b: usize) -> Tensor {
        Tensor::from_vec(v.to_vec(), (b, v.len() / b), &Device::Cpu).unwrap()
    }

    #[test]
    fn every_trainable_variable_gets_a_nonzero_gradient() {
        for tied in [false, true] {
            let c = TinyGptConfig {
                tied_head: tied,
                ..cfg()
            };
            all_variables_get_gradients(&TinyGpt::new(&c, 3, &Device::Cpu).unwrap());
        }
    }

    /// A tied head has no matrix of its own and reads the embedding rows of the
    /// output tokens, following their updates: with those rows zeroed (and the
    /// bias still zero from initialisation) every logit is 0.
    #[test]
    fn tied_head_reads_the_embedding_rows() {
        let untied = TinyGpt::new(&cfg(), 3, &Device::Cpu).unwrap();
        let c = TinyGptConfig {
            tied_head: true,
            ..cfg()
        };
        let m = TinyGpt::new(&c, 3, &Device::Cpu).unwrap();
        assert_eq!(m.vars().len() + 1, untied.vars().len());
        assert!(!m.var_names().contains(&"head.weight".to_string()));
        let view = m.detached();
        let x = toks(&[0, 1, 4, 2, 3, 5], 1);
        let max_abs = |t: Tensor| {
            t.abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        assert!(max_abs(view.forward(&x, None).unwrap().0) > 0.0);
        let emb = m.vars()[0].as_tensor();
        let rows = emb.dims2().unwrap();
        let mut data = emb.to_vec2::<f32>().unwrap();
        for row in data.iter_mut().take(c.n_outputs) {
            row.iter_mut().for_each(|v| *v = 0.0);
        }
        let flat: Vec<f32> = data.into_iter().flatten().collect();
        m.vars()[0]
            .set(&Tensor::from_vec(flat, rows, &Device::Cpu).unwrap())
            .unwrap();
        assert_eq!(max_abs(view.forward(&x, None).unwrap().0), 0.0);
    }

    fn all_variables_get_gradients(m: &TinyGpt) {
        let x = toks(&[0, 1, 4, 2, 3, 5, 1, 0, 2, 4, 3, 1], 2);
        let (logits, _) = m.forward(&x, None).unwrap();
        // Non-trivial scalar of every output so no weight is dead by construction.
        let loss = log_softmax_last(&logits)
            .unwrap()
            .narrow(2, 1, 1)
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let names = m.var_names();
        assert_eq!(names.len(), m.vars().len());
        let named = names.iter().map(|n| n.as_str()).zip(m.vars());
        crate::testing::assert_every_var_has_a_gradient(&grads, named);
    }

    #[test]
    fn cached_decoding_matches_full_forward() {
        let m = TinyGpt::new(&cfg(), 7, &Device::Cpu).unwrap().detached();
        let seq = [2u32, 0, 1, 5, 3, 3, 4];
        let (full, _) = m.forward(&toks(&seq, 1), None).unwrap();
        // Prefix of 3, then one token at a time, then two at once.
        let (a, c) = m.forward(&toks(&seq[..3], 1), None).unwrap();
        let (b1, c) = m.forward(&toks(&seq[3..4], 1), Some(&c)).unwrap();
        let (b2, c) = m.forward(&toks(&seq[4..5], 1), Some(&c)).unwrap();
        let (b3, c) = m.forward(&toks(&seq[5..7], 1), Some(&c)).unwrap();
        assert_eq!(c.len(), 7);
        let pieced = Tensor::cat(&[&a, &b1, &b2, &b3], 1).unwrap();
        let diff = (full - pieced)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "max abs diff {diff}");
    }

    #[test]
    fn causal_future_tokens_do_not_change_past_logits() {
        let m = TinyGpt::new(&cfg(), 1, &Device::Cpu).unwrap();
        let (a, _) = m.forward(&toks(&[1, 2, 3, 0], 1), None).unwrap();
        let (b, _) = m.forward(&toks(&[1, 2, 5, 5], 1), None).unwrap();
        let a2 = a.narrow(1, 0, 2).unwrap();
        let b2 = b.narrow(1, 0, 2).unwrap();
        let diff = (a2 - b2).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
        let later = (a.narrow(1, 2, 1).unwrap() - b.narrow(1, 2, 1).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(later.to_scalar::<f32>().unwrap() > 1e-6);
    }

    #[test]
    fn same_seed_same_weights_and_softmax_sums_to_one() {
        let a = TinyGpt::new(&cfg(), 5, &Device::Cpu).unwrap();
        let b = TinyGpt::new(&cfg(), 5, &Device::Cpu).unwrap();
        let x = toks(&[0, 1, 2], 1);
        let logits = |m: &TinyGpt| {
            let out = m.forward(&x, None).unwrap().0;
            out.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        assert_eq!(logits(&a), logits(&b));
        let p = softmax_last(&Tensor::new(&[[1f32, 2., 3.]], &Device::Cpu).unwrap()).unwrap();
        // e^1 + e^2 + e^3 = 2.71828 + 7.38906 + 20.08554 = 30.19288; p3 = 20.08554 / 30.19288
        let v = p.to_vec2::<f32>().unwrap();
        assert!((v[0][2] - 0.665241).abs() < 1e-5);
        assert!((v[0].iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn bad_config_and_overlong_input_are_errors() {
        let mut c = cfg();
        c.n_heads = 3;
        assert!(TinyGpt::new(&c, 0, &Device::Cpu).is_err());
        let mut c = cfg();
        c.n_outputs = 7;
        assert!(TinyGpt::new(&c, 0, &Device::Cpu).is_err());
        let m = TinyGpt::new(&cfg(), 0, &Device::Cpu).unwrap();
        assert!(m.forward(&toks(&[0; 17], 1), None).is_err());
    }
}
