//! The Llama architecture (Llama 2/3, SmolLM2, TinyLlama), as Hugging Face's
//! `LlamaForCausalLM` computes it:
//!
//! ```text
//! x = embed(tokens)
//! per layer:  x = x + o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n)))   n = rms_norm(x)
//!             x = x + down_proj(silu(gate_proj(n)) * up_proj(n))                  n = rms_norm(x)
//! logits = lm_head(rms_norm(x))        (lm_head = embed when tied)
//! ```
//!
//! Grouped-query attention (`num_key_value_heads <= num_attention_heads`),
//! rotary embeddings in the rotate-half layout with configurable base and
//! optional Llama 3 scaling, optional q/k/v bias (`attention_bias`; Qwen2
//! always has it, see [`crate::qwen2`]).
//!
//! The weights live in [`Var`]s so an optimiser can train them; the model keeps
//! a second, detached view of the same storage for [`Mode::Infer`], which
//! follows optimiser updates without recording a graph.

use std::collections::HashMap;

use candle_core::{DType, Device, Module, Tensor, Var};

use crate::kernels::few_rows;
use crate::layers::{
    apply_rotary, attention, attention_mask, positions, rms_norm, swiglu, take_vars, CausalLm,
    Dropout, KvCache, Linear, LoraPair, Mask, Mode, Rotary,
};
use crate::lora::{self, LoraConfig};
use crate::{Arch, ModelConfig, ModelError};

/// One decoder layer's weights.
#[derive(Clone)]
struct Layer {
    input_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    post_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// All weights, either tracked (training) or detached (inference).
#[derive(Clone)]
struct Weights {
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    /// `None` when tied to `embed`.
    lm_head: Option<Tensor>,
}

impl Weights {
    fn detach(&self) -> Self {
        Self {
            embed: self.embed.detach(),
            layers: self
                .layers
                .iter()
                .map(|l| Layer {
                    input_norm: l.input_norm.detach(),
                    q: l.q.detach(),
                    k: l.k.detach(),
                    v: l.v.detach(),
                    o: l.o.detach(),
                    post_norm: l.post_norm.detach(),
                    gate: l.gate.detach(),
                    up: l.up.detach(),
                    down: l.down.detach(),
                })
                .collect(),
            norm: self.norm.detach(),
            lm_head: self.lm_head.as_ref().map(Tensor::detach),
        }
    }
}

/// A Llama-family causal language model.
pub struct Llama {
    cfg: ModelConfig,
    device: Device,
    vars: Vec<(String, Var)>,
    train: Weights,
    infer: Weights,
    rotary: Rotary,
    /// With an adapter: the model without it (sharing the frozen weights'
    /// storage) and the adapter's settings.
    base: Option<Box<Llama>>,
    lora: Option<LoraConfig>,
    dropout: Option<Dropout>,
}

impl Llama {
    /// Builds the model from Hugging Face-named tensors (any float dtype; kept
    /// as f32 on `device`). The config's `arch` must be [`Arch::Llama`].
    pub fn from_weights(
        cfg: &ModelConfig,
        weights: &HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        cfg.expect_arch(Arch::Llama, "Llama::from_weights")?;
        Self::build(cfg, weights, device)
    }

    /// Shared with Qwen2, whose only difference (q/k/v bias) the config carries.
    pub(crate) fn build(
        cfg: &ModelConfig,
        weights: &HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let vars = take_vars(cfg, weights, device)?;
        crate::layers::advise_huge_pages(vars.iter().map(|(_, v)| v.as_tensor()));
        let by_name: HashMap<&str, Tensor> = vars
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_tensor().clone()))
            .collect();
        let get = |n: &str| by_name.get(n).cloned();
        let need =
            |n: String| get(&n).ok_or_else(|| ModelError::Config(format!("missing tensor {n}")));
        let linear = |p: String| -> Result<Linear, ModelError> {
            Ok(Linear::new(
                need(format!("{p}.weight"))?,
                get(&format!("{p}.bias")),
            ))
        };
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            layers.push(Layer {
                input_norm: need(format!("{p}.input_layernorm.weight"))?,
                q: linear(format!("{p}.self_attn.q_proj"))?,
                k: linear(format!("{p}.self_attn.k_proj"))?,
                v: linear(format!("{p}.self_attn.v_proj"))?,
                o: linear(format!("{p}.self_attn.o_proj"))?,
                post_norm: need(format!("{p}.post_attention_layernorm.weight"))?,
                gate: linear(format!("{p}.mlp.gate_proj"))?,
                up: linear(format!("{p}.mlp.up_proj"))?,
                down: linear(format!("{p}.mlp.down_proj"))?,
            });
        }
        let train = Weights {
            embed: need("model.embed_tokens.weight".into())?,
            layers,
            norm: need("model.norm.weight".into())?,
            lm_head: if cfg.tie_word_embeddings {
                None
            } else {
                Some(need("lm_head.weight".into())?)
            },
        };
        let infer = train.detach();
        Ok(Self {
            cfg: cfg.clone(),
            device: device.clone(),
            vars,
            train,
            infer,
            rotary: Rotary::new(cfg),
            base: None,
            lora: None,
            dropout: None,
        })
    }

    /// This model with a LoRA adapter on the projections `lora` names:
    /// `adapter` holds their `lora_A`/`lora_B` under PEFT's names (see
    /// [`crate::lora`]). The adapter becomes the only trainable variables
    /// (in [`lora::adapted_modules`] order); the base weights are frozen and
    /// kept once, shared with [`CausalLm::base`]. Dropout masks follow `seed`.
    pub fn with_adapter(
        self,
        lora: &LoraConfig,
        adapter: &HashMap<String, Tensor>,
        seed: u64,
    ) -> Result<Self, ModelError> {
        if self.lora.is_some() {
            return Err(ModelError::Config(
                "the model already has an adapter".into(),
            ));
        }
        lora.validate().map_err(ModelError::Config)?;
        lora::check_adapter(&self.cfg, lora, adapter).map_err(ModelError::Config)?;
        let dropout = (lora.dropout > 0.0).then(|| Dropout {
            p: lora.dropout,
            seed,
            calls: Default::default(),
        });
        let mut vars = Vec::new();
        let mut train = self.infer.clone();
        let mods = lora::adapted_modules(&self.cfg, lora);
        let mut mods = mods.iter();
        for layer in train.layers.iter_mut() {
            for (name, lin) in [
                ("q_proj", &mut layer.q),
                ("k_proj", &mut layer.k),
                ("v_proj", &mut layer.v),
                ("o_proj", &mut layer.o),
                ("gate_proj", &mut layer.gate),
                ("up_proj", &mut layer.up),
                ("down_proj", &mut layer.down),
            ] {
                if !lora.targets(name) {
                    continue;
                }
                let m = mods
                    .next()
                    .expect("one adapted module per targeted projection");
                let mut var = |which: char| -> Result<Tensor, ModelError> {
                    let key = m.key(which);
                    let t = adapter[&key]
                        .to_dtype(DType::F32)?
                        .to_device(&self.device)?;
                    let v = Var::from_tensor(&t)?;
                    let t = v.as_tensor().clone();
                    vars.push((key, v));
                    Ok(t)
                };
                lin.lora = Some(LoraPair {
                    a: var('A')?,
                    b: var('B')?,
                    scale: lora.scale(),
                    dropout: dropout.clone(),
                });
            }
        }
        let infer = train.detach();
        Ok(Self {
            cfg: self.cfg.clone(),
            device: self.device.clone(),
            vars,
            train,
            infer,
            rotary: self.rotary.clone(),
            lora: Some(lora.clone()),
            dropout,
            base: Some(Box::new(self)),
        })
    }

    /// Points the inference path ([`Mode::Infer`]: sampling, old and
    /// reference log-probs, probes) at merged copies `W + s B A` of the
    /// adapted projections, so decoding takes the fast path of a plain model
    /// at the cost of one copy of those weights. The copies do not follow
    /// optimiser steps: call again after each update. No-op without an adapter.
    pub fn merge_for_inference(&mut self) -> Result<(), ModelError> {
        if self.lora.is_none() {
            return Ok(());
        }
        let mut infer = self.train.detach();
        for layer in infer.layers.iter_mut() {
            for lin in [
                &mut layer.q,
                &mut layer.k,
                &mut layer.v,
                &mut layer.o,
                &mut layer.gate,
                &mut layer.up,
                &mut layer.down,
            ] {
                if let Some(l) = lin.lora.take() {
                    let delta = (l.b.matmul(&l.a)? * l.scale)?;
                    lin.weight = (&lin.weight + delta)?;
                }
            }
        }
        crate::layers::advise_huge_pages(
            infer
                .layers
                .iter()
                .flat_map(|l| [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down].map(|p| &p.weight)),
        );
        self.infer = infer;
        Ok(())
    }

    fn weights(&self, mode: Mode) -> &Weights {
        match mode {
            Mode::Train => &self.train,
            Mode::Infer => &self.infer,
        }
    }

    /// One decoder layer on `x` `(B, T, hidden)`.
    #[allow(clippy::too_many_arguments)]
    fn layer(
        &self,
        li: usize,
        w: &Layer,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Mask,
        cache: Option<&mut KvCache>,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        let c = &self.cfg;
        let (b, t, _) = x.dims3()?;
        let heads = |y: Tensor, n: usize| -> candle_core::Result<Tensor> {
            y.reshape((b, t, n, c.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let n = rms_norm(x, &w.input_norm, c.rms_norm_eps, mode)?;
        let q = heads(w.q.forward(&n, mode)?, c.num_attention_heads)?;
        let k = heads(w.k.forward(&n, mode)?, c.num_key_value_heads)?;
        let v = heads(w.v.forward(&n, mode)?, c.num_key_value_heads)?;
        let q = apply_rotary(&q, cos, sin, mode)?;
        let k = apply_rotary(&k, cos, sin, mode)?;
        let (k, v) = match cache {
            Some(cache) => cache.append(li, &k, &v)?,
            None => (k, v),
        };
        let y = attention(&q, &k, &v, mask, mode)?;
        let x = (x + w.o.forward(&y, mode)?)?;
        let n = rms_norm(&x, &w.post_norm, c.rms_norm_eps, mode)?;
        let m = swiglu(&w.gate.forward(&n, mode)?, &w.up.forward(&n, mode)?)?;
        x + w.down.forward(&m, mode)?
    }
}

/// Pinned-storage indices of one layer: input norm, post norm, and
/// (weight, bias) of q, k, v, o, gate, up, down.
type LayerIds = (usize, usize, Vec<(usize, Option<usize>)>);

impl Llama {
    /// The decode step of [`crate::decode`]: one token per row after the
    /// cache, on the inference weights' own storage. `None` when the weights
    /// are not contiguous f32 on the CPU (the caller takes the general path).
    fn decode_step(
        &self,
        tokens: &Tensor,
        cache: &mut KvCache,
    ) -> Result<Option<Tensor>, ModelError> {
        use crate::decode::{self, CacheView, LayerSlices, Lin, Pinned};
        // The fast path knows plain projections only (merged ones included).
        let adapted = |l: &Layer| {
            [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down]
                .iter()
                .any(|p| p.lora.is_some())
        };
        if !self.device.is_cpu() || self.infer.layers.iter().any(adapted) {
            return Ok(None);
        }
        let w = &self.infer;
        let mut pin = Pinned::new();
        // Pin every weight first, then take the slices (the guards must outlive them).
        let mut pin_all = || -> Option<(usize, usize, Vec<LayerIds>)> {
            let embed = pin.pin(&w.embed)?;
            let norm = pin.pin(&w.norm)?;
            let mut ids = Vec::with_capacity(w.layers.len());
            for l in &w.layers {
                let mut lin = Vec::with_capacity(7);
                for p in [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down] {
                    let wi = pin.pin(&p.weight)?;
                    let bi = match &p.bias {
                        Some(b) => Some(pin.pin(b)?),
                        None => None,
                    };
                    lin.push((wi, bi));
                }
                ids.push((pin.pin(&l.input_norm)?, pin.pin(&l.post_norm)?, lin));
            }
            Some((embed, norm, ids))
        };
        let Some((embed, norm, ids)) = pin_all() else {
            return Ok(None);
        };
        let lin_of = |(wi, bi): (usize, Option<usize>)| Lin {
            w: pin.get(wi),
            b: bi.map(|i| pin.get(i)),
        };
        let layers: Vec<LayerSlices> = ids
            .iter()
            .map(|(ni, pi, l)| LayerSlices {
                input_norm: pin.get(*ni),
                q: lin_of(l[0]),
                k: lin_of(l[1]),
                v: lin_of(l[2]),
                o: lin_of(l[3]),
                post_norm: pin.get(*pi),
                gate: lin_of(l[4]),
                up: lin_of(l[5]),
                down: lin_of(l[6]),
            })
            .collect();

        let c = &self.cfg;
        let h = c.hidden_size;
        let toks = tokens.flatten_all()?.to_vec1::<u32>()?;
        let rows = toks.len();
        let embed = pin.get(embed);
        let mut x = Vec::with_capacity(rows * h);
        for &t in &toks {
            let t = t as usize;
            if t >= c.vocab_size {
                return Err(ModelError::Config(format!(
                    "token ids: id {t} is outside the vocabulary of {}",
                    c.vocab_size
                )));
            }
            x.extend_from_slice(&embed[t * h..(t + 1) * h]);
        }
        let past = cache.len();
        let pads = cache.left_pad().to_vec();
        let pos: Vec<u32> = pads
            .iter()
            .map(|&p| past.saturating_sub(p) as u32)
            .collect();
        let cos_sin = self.rotary.cos_sin_pairs(&pos);
        for (li, lw) in layers.iter().enumerate() {
            let (q, k, v) = decode::qkv(c, lw, &x, rows, &cos_sin);
            cache.write_column(li, &k, &v, &self.device)?;
            let a = {
                let (kb, vb) = cache
                    .buffers(li)
                    .ok_or_else(|| ModelError::Config(format!("kv cache lacks layer {li}")))?;
                let mut bufs = Pinned::new();
                let (Some(ki), Some(vi)) = (bufs.pin_any(kb), bufs.pin_any(vb)) else {
                    return Err(ModelError::Config("kv cache is not f32 on the CPU".into()));
                };
                let (kl, vl) = (kb.layout(), vb.layout());
                if kl.start_offset() != vl.start_offset() || kl.stride() != vl.stride() {
                    return Err(ModelError::Config(
                        "kv cache: k and v layouts differ".into(),
                    ));
                }
                let st = kl.stride();
                let view = CacheView {
                    k: bufs.get(ki),
                    v: bufs.get(vi),
                    start: kl.start_offset(),
                    strides: [st[0], st[1], st[2]],
                };
                decode::attend(c, &q, &view, &pads, past)
            };
            decode::finish_layer(c, lw, &mut x, &a, rows);
        }
        cache.advance(1);
        let y = decode::rms_norm_rows(&x, pin.get(norm), c.rms_norm_eps);
        Ok(Some(Tensor::from_vec(y, (rows, 1, h), &self.device)?))
    }
}

impl CausalLm for Llama {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn hidden(
        &self,
        tokens: &Tensor,
        mut cache: Option<&mut KvCache>,
        mode: Mode,
    ) -> Result<Tensor, ModelError> {
        let (b, t) = tokens.dims2()?;
        if t == 0 {
            return Err(ModelError::Config("empty token sequence".into()));
        }
        let (past, pads) = match cache.as_deref_mut() {
            None => (0, vec![0; b]),
            Some(c) => {
                if mode == Mode::Train {
                    return Err(ModelError::Config(
                        "the KV cache is for inference; training forwards take whole sequences"
                            .into(),
                    ));
                }
                if c.rows() != b {
                    return Err(ModelError::Config(format!(
                        "batch of {b} rows given a KV cache of {} rows",
                        c.rows()
                    )));
                }
                c.reserve(c.len() + t)?;
                (c.len(), c.left_pad().to_vec())
            }
        };
        if mode == Mode::Infer && t == 1 && b <= few_rows::MAX_ROWS && crate::decode::enabled() {
            if let Some(c) = cache.as_deref_mut() {
                if let Some(h) = self.decode_step(tokens, c)? {
                    return Ok(h);
                }
            }
        }
        let w = self.weights(mode);
        let (pos, rows) = positions(&pads, past, t);
        let (cos, sin) = self.rotary.cos_sin(&pos, rows, t, &self.device)?;
        let mask = attention_mask(&pads, past, t, &self.device)?;
        let mut x = candle_nn::Embedding::new(w.embed.clone(), self.cfg.hidden_size)
            .forward(tokens)
            .map_err(|e| ModelError::Config(format!("token ids: {e}")))?;
        for (li, lw) in w.layers.iter().enumerate() {
            x = self.layer(li, lw, &x, &cos, &sin, &mask, cache.as_deref_mut(), mode)?;
        }
        if let Some(c) = cache {
            c.advance(t);
        }
        Ok(rms_norm(&x, &w.norm, self.cfg.rms_norm_eps, mode)?)
    }

    fn logits(&self, hidden: &Tensor, mode: Mode) -> Result<Tensor, ModelError> {
        let w = self.weights(mode);
        let head = Linear::new(w.lm_head.clone().unwrap_or_else(|| w.embed.clone()), None);
        Ok(head.forward(hidden, mode)?)
    }

    fn named_vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    fn base(&self) -> Option<&dyn CausalLm> {
        self.base.as_deref().map(|b| b as &dyn CausalLm)
    }

    fn lora(&self) -> Option<&LoraConfig> {
        self.lora.as_ref()
    }

    fn seek_dropout(&self, calls: u64) {
        if let Some(d) = &self.dropout {
            d.calls.store(calls, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
