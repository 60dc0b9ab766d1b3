//! AdamW with global gradient-norm clipping.
//!
//! Our own rather than candle-nn's so that the moments are plain state we can
//! inspect, save and restore (checkpoints resume exactly).

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

/// AdamW hyper-parameters.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWConfig {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (0 disables).
    pub grad_clip: f64,
}

impl Default for AdamWConfig {
    /// The synthetic experiment's settings (lr chosen by the sweep in
    /// docs/synthetic.md; Adam's usual betas).
    fn default() -> Self {
        Self {
            lr: 3e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            grad_clip: 1.0,
        }
    }
}

/// Optimiser state: one pair of moments per variable, and the step count.
pub struct AdamW {
    cfg: AdamWConfig,
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: u64,
}

impl AdamW {
    /// Zero moments for `vars`.
    pub fn new(vars: Vec<Var>, cfg: AdamWConfig) -> candle_core::Result<Self> {
        let m = vars
            .iter()
            .map(|v| v.as_tensor().zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let v = m.clone();
        Ok(Self {
            cfg,
            vars,
            m,
            v,
            step: 0,
        })
    }

    /// Steps taken so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The first and second moments, one per variable (checkpoints).
    pub fn moments(&self) -> (&[Tensor], &[Tensor]) {
        (&self.m, &self.v)
    }

    /// Restores the state saved from [`AdamW::moments`] and [`AdamW::step_count`];
    /// every moment must have its variable's shape.
    pub fn restore(
        &mut self,
        step: u64,
        m: Vec<Tensor>,
        v: Vec<Tensor>,
    ) -> candle_core::Result<()> {
        if m.len() != self.vars.len() || v.len() != self.vars.len() {
            candle_core::bail!(
                "AdamW state: {} / {} moments for {} variables",
                m.len(),
                v.len(),
                self.vars.len()
            );
        }
        for (i, var) in self.vars.iter().enumerate() {
            if m[i].dims() != var.dims() || v[i].dims() != var.dims() {
                candle_core::bail!(
                    "AdamW state: moment {i} has shape {:?}, variable {:?}",
                    m[i].dims(),
                    var.dims()
                );
            }
        }
        let dev = self.vars.first().map(|v| v.device().clone());
        let to_dev = |t: Tensor| match &dev {
            Some(d) => t.to_device(d),
            None => Ok(t),
        };
        self.m = m
            .into_iter()
            .map(to_dev)
            .collect::<candle_core::Result<_>>()?;
        self.v = v
            .into_iter()
            .map(to_dev)
            .collect::<candle_core::Result<_>>()?;
        self.step = step;
        Ok(())
    }

    /// Sets the learning rate for the next steps (schedules).
    pub fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    /// One update from `grads`; returns the global gradient norm before clipping.
    /// Variables without a gradient are left unchanged.
    ///
    /// `g <- g * min(1, clip / |g|)`; `m <- b1 m + (1-b1) g`; `v <- b2 v + (1-b2) g^2`;
    /// `theta <- theta - lr * (m / (1-b1^t) / (sqrt(v / (1-b2^t)) + eps) + wd * theta)`.
    pub fn step(&mut self, grads: &GradStore) -> candle_core::Result<f64> {
        let grads: Vec<Option<Tensor>> = self
            .vars
            .iter()
            .map(|v| grads.get(v.as_tensor()).cloned())
            .collect();
        self.step_grads(&grads)
    }

    /// [`AdamW::step`] with one (possibly accumulated) gradient per variable, in
    /// the order the variables were given; `None` leaves a variable unchanged.
    pub fn step_grads(&mut self, grads: &[Option<Tensor>]) -> candle_core::Result<f64> {
        if grads.len() != self.vars.len() {
            candle_core::bail!(
                "AdamW: {} gradients for {} variables",
                grads.len(),
                self.vars.len()
            );
        }
        let mut sq = 0f64;
        for g in grads.iter().flatten() {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
        let norm = sq.sqrt();
        let scale = if self.cfg.grad_clip > 0.0 && norm > self.cfg.grad_clip {
            self.cfg.grad_clip / norm
        } else {
            1.0
        };
        self.step += 1;
        let c = &self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
        let bc2 = 1.0 - c.beta2.powi(self.step as i32);
        for (i, var) in self.vars.iter().enumerate() {
            let Some(g) = &grads[i] else {
                continue;
            };
            // Gradients of ops on variables are themselves tracked tensors; without
            // detaching, each step's moments would keep the previous step's graph
            // (and all its buffers) alive: memory grew ~23 MB per synthetic step.
            let g = (g.detach() * scale)?;
            self.m[i] = ((&self.m[i] * c.beta1)? + (&g * (1.0 - c.beta1))?)?.detach();
            self.v[i] = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?.detach();
            let m_hat = (&self.m[i] / bc1)?;
            let v_hat = (&self.v[i] / bc2)?;
            let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
            let theta = var.as_tensor();
            let decayed = (theta * (1.0 - c.lr * c.weight_decay))?;
            var.set(&(decayed - (update * c.lr)?)?)?;
        }
        Ok(norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn first_step_moves_each_weight_by_lr_against_the_gradient_sign() {
        // With bias correction the first update is lr * g / (|g| + eps) ~ lr * sign(g).
        let w = Var::new(&[1.0f32, -2.0, 3.0], &Device::Cpu).unwrap();
        let cfg = AdamWConfig {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            grad_clip: 0.0,
        };
        let mut opt = AdamW::new(vec![w.clone()], cfg).unwrap();
        // loss = sum(w^2): gradient 2w = (2, -4, 6), norm sqrt(4 + 16 + 36) = 7.4833
        let loss = w.as_tensor().sqr().unwrap().sum_all().unwrap();
        let norm = opt.step(&loss.backward().unwrap()).unwrap();
        assert!((norm - 7.483315).abs() < 1e-4);
        let after = w.as_tensor().to_vec1::<f32>().unwrap();
        for (a, want) in after.iter().zip([0.9f32, -1.9, 2.9]) {
            assert!((a - want).abs() < 1e-5, "{a} vs {want}");
        }
    }

    #[test]
    fn clipping_and_weight_decay() {
        let w = Var::new(&[3.0f32, 4.0], &Device::Cpu).unwrap();
        let cfg = AdamWConfig {
            lr: 0.5,
            beta1: 0.0,
            beta2: 0.0,
            eps: 0.0,
            weight_decay: 0.1,
            grad_clip: 1.0,
        };
        let mut opt = AdamW::new(vec![w.clone()], cfg).unwrap();
        // loss = 3 w0 + 4 w1 -> g = (3, 4), |g| = 5 -> clipped to (0.6, 0.8).
        // beta = 0: update = g / |g| elementwise = (1, 1).
        // theta = theta * (1 - 0.5 * 0.1) - 0.5 = (3 * 0.95 - 0.5, 4 * 0.95 - 0.5) = (2.35, 3.3)
        let c = Tensor::new(&[3.0f32, 4.0], &Device::Cpu).unwrap();
        let loss = (w.as_tensor() * c).unwrap().sum_all().unwrap();
        let norm = opt.step(&loss.backward().unwrap()).unwrap();
        assert!((norm - 5.0).abs() < 1e-6);
        let after = w.as_tensor().to_vec1::<f32>().unwrap();
        assert!((after[0] - 2.35).abs() < 1e-5 && (after[1] - 3.3).abs() < 1e-5);
    }

    #[test]
    fn moments_hold_no_graph_between_steps() {
        // d(sum(a * b))/da = b, a variable: candle returns that gradient as a
        // tracked tensor. Moments built from it must not keep the graph alive,
        // or memory grows with every step (it did: ~23 MB per synthetic step).
        let a = Var::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
        let b = Var::new(&[3.0f32, 4.0], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(vec![a.clone(), b.clone()], AdamWConfig::default()).unwrap();
        for _ in 0..3 {
            let loss = (a.as_tensor() * b.as_tensor()).unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            assert!(grads.get(a.as_tensor()).unwrap().track_op());
            opt.step(&grads).unwrap();
            for t in opt.m.iter().chain(opt.v.iter()) {
                assert!(!t.track_op());
            }
        }
    }
}
