//! Tests of the building blocks: both modes agree, fused ops match their written-out forms, the cache appends and grows.

use candle_core::{Device, Tensor, Var};

use crate::kernels::grad_ops;
use crate::softmax_last;

use super::attention::*;
use super::ops::*;
use super::rotary::*;
use crate::testing::max_abs_diff as close;

#[test]
fn rms_norm_and_rotary_fused_match_written_out() {
    let dev = Device::Cpu;
    let x = Tensor::new(&[[[3f32, 4.0], [1.0, -1.0]]], &dev).unwrap();
    let w = Tensor::new(&[2f32, 0.5], &dev).unwrap();
    // Row [3, 4]: mean square 12.5, rms 3.5355; [3, 4] / 3.5355 * [2, 0.5] = [1.6971, 0.5657].
    let a = rms_norm(&x, &w, 0.0, Mode::Train).unwrap();
    let b = rms_norm(&x, &w, 0.0, Mode::Infer).unwrap();
    let v = a.to_vec3::<f32>().unwrap();
    assert!((v[0][0][0] - 1.697_056).abs() < 1e-5 && (v[0][0][1] - 0.565_685).abs() < 1e-5);
    assert!(close(&a, &b) < 1e-6);

    // Rotary: head_dim 4, one position at angle a: [x0, x1, x2, x3] ->
    // [x0 c - x2 s, x1 c' - x3 s', x2 c + x0 s, x3 c' + x1 s'].
    let q = Tensor::arange(0f32, 2.0 * 3.0 * 4.0, &dev)
        .unwrap()
        .reshape((1, 2, 3, 4))
        .unwrap();
    let (cos, sin) = Rotary {
        inv_freq: vec![1.0, 0.01],
    }
    .cos_sin(&[0, 1, 2], 1, 3, &dev)
    .unwrap();
    let a = apply_rotary(&q, &cos, &sin, Mode::Train).unwrap();
    let b = apply_rotary(&q, &cos, &sin, Mode::Infer).unwrap();
    assert!(close(&a, &b) < 1e-6);
    // Position 1, head 0: x = [4, 5, 6, 7], angle 1 and 0.01.
    let r = a
        .get(0)
        .unwrap()
        .get(0)
        .unwrap()
        .get(1)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let (c, s) = (1f32.cos(), 1f32.sin());
    assert!((r[0] - (4.0 * c - 6.0 * s)).abs() < 1e-5);
    assert!((r[2] - (6.0 * c + 4.0 * s)).abs() < 1e-5);
}

/// Values and gradients of `f` (fused) and `g` (written out) of a Var
/// holding `shape` deterministic values, under the loss `sum(f(x) * c)`.
fn compare_grads(
    shape: &[usize],
    fused: impl Fn(&Tensor) -> Tensor,
    written: impl Fn(&Tensor) -> Tensor,
) {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n)
        .map(|i| ((i * 7919 % 101) as f32 - 50.0) / 20.0)
        .collect();
    let x = Var::from_tensor(&Tensor::from_vec(data, shape, &Device::Cpu).unwrap()).unwrap();
    let run = |f: &dyn Fn(&Tensor) -> Tensor| {
        let y = f(x.as_tensor());
        let c: Vec<f32> = (0..y.elem_count())
            .map(|i| ((i * 104_729 % 37) as f32 - 18.0) / 9.0)
            .collect();
        let c = Tensor::from_vec(c, y.shape(), &Device::Cpu).unwrap();
        let g = (&y * &c).unwrap().sum_all().unwrap().backward().unwrap();
        (y, g.get(x.as_tensor()).unwrap().clone())
    };
    let (ya, ga) = run(&fused);
    let (yb, gb) = run(&written);
    assert!(close(&ya, &yb) < 1e-5, "values {}", close(&ya, &yb));
    assert!(close(&ga, &gb) < 1e-4, "gradients {}", close(&ga, &gb));
    assert!(
        gb.abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            > 0.0
    );
}

#[test]
fn frozen_matmul_matches_the_plain_matmul_in_value_and_input_gradient() {
    let w: Vec<f32> = (0..7 * 5)
        .map(|i| ((i * 31 % 17) as f32 - 8.0) / 10.0)
        .collect();
    let w = Tensor::from_vec(w, (7, 5), &Device::Cpu).unwrap();
    compare_grads(
        &[2, 3, 5],
        |x| {
            x.apply_op1(grad_ops::FrozenMatmul { w: w.clone() })
                .unwrap()
        },
        |x| {
            x.reshape((6, 5))
                .unwrap()
                .matmul(&w.t().unwrap())
                .unwrap()
                .reshape((2, 3, 7))
                .unwrap()
        },
    );
}

#[test]
fn lora_matmul_matches_the_written_out_update_in_value_and_every_gradient() {
    let dev = Device::Cpu;
    let vals = |n: usize, k: usize| -> Vec<f32> {
        (0..n)
            .map(|i| ((i * k % 23) as f32 - 11.0) / 15.0)
            .collect()
    };
    let w = Tensor::from_vec(vals(7 * 5, 31), (7, 5), &dev).unwrap();
    let var = |n, k, shape: &[usize]| {
        Var::from_tensor(&Tensor::from_vec(vals(n, k), shape, &dev).unwrap()).unwrap()
    };
    let (x, a, b) = (
        var(6 * 5, 7, &[6, 5]),
        var(3 * 5, 13, &[3, 5]),
        var(7 * 3, 17, &[7, 3]),
    );
    let s = 0.75;
    let c = Tensor::from_vec(vals(6 * 7, 29), (6, 7), &dev).unwrap();
    let run = |y: Tensor| {
        let g = (&y * &c).unwrap().sum_all().unwrap().backward().unwrap();
        let grad = |v: &Var| g.get(v.as_tensor()).unwrap().clone();
        (y, grad(&x), grad(&a), grad(&b))
    };
    let fused = run(x
        .as_tensor()
        .apply_op3(
            a.as_tensor(),
            b.as_tensor(),
            grad_ops::LoraMatmul {
                w: w.clone(),
                scale: s,
            },
        )
        .unwrap());
    let update = x
        .matmul(&a.t().unwrap())
        .unwrap()
        .matmul(&b.t().unwrap())
        .unwrap();
    let written = run((x.matmul(&w.t().unwrap()).unwrap() + (update * s).unwrap()).unwrap());
    assert!(close(&fused.0, &written.0) < 1e-5);
    for (i, (f, w)) in [
        (&fused.1, &written.1),
        (&fused.2, &written.2),
        (&fused.3, &written.3),
    ]
    .into_iter()
    .enumerate()
    {
        assert!(close(f, w) < 1e-4, "gradient {i}: {}", close(f, w));
        assert!(
            w.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                > 0.0
        );
    }
}

#[test]
fn fused_training_ops_match_written_out_values_and_gradients() {
    let dev = Device::Cpu;
    // Causal softmax over (2, 3, 5, 7): 5 queries after 2 cached keys.
    let mask: Vec<f32> = (0..5)
        .flat_map(|i| (0..7).map(move |j| if j <= 2 + i { 0. } else { f32::NEG_INFINITY }))
        .collect();
    let mask = Tensor::from_vec(mask, (5, 7), &dev).unwrap();
    let causal = |past, scale| {
        move |x: &Tensor| {
            let op = grad_ops::CausalSoftmax { t: 5, past, scale };
            x.apply_op1(op).unwrap()
        }
    };
    compare_grads(&[2, 3, 5, 7], causal(2, 1.0), |x| {
        softmax_last(&x.broadcast_add(&mask).unwrap()).unwrap()
    });
    compare_grads(
        &[4, 9],
        |x| x.apply_op1(grad_ops::LogSoftmax).unwrap(),
        |x| crate::log_softmax_last(x).unwrap(),
    );
    compare_grads(&[2, 3, 5, 7], causal(7, 0.5), |x| {
        softmax_last(&(x * 0.5).unwrap()).unwrap()
    });
    compare_grads(
        &[3, 10],
        |x| entropy(x).unwrap(),
        |x| {
            (x.exp().unwrap() * x)
                .unwrap()
                .sum(1)
                .unwrap()
                .neg()
                .unwrap()
        },
    );
    let up = Tensor::from_vec(
        (0..30).map(|i| (i % 7) as f32 - 3.0).collect(),
        (3, 10),
        &dev,
    )
    .unwrap();
    compare_grads(
        &[3, 10],
        |x| swiglu(x, &up).unwrap(),
        |x| (x.silu().unwrap() * &up).unwrap(),
    );
    compare_grads(
        &[3, 10],
        |x| swiglu(&up, x).unwrap(),
        |x| (up.silu().unwrap() * x).unwrap(),
    );
    // Rotary with per-row angles (rows = B = 2), T = 3, D = 4.
    let (cos, sin) = Rotary {
        inv_freq: vec![1.0, 0.1],
    }
    .cos_sin(&[0, 1, 2, 5, 6, 7], 2, 3, &dev)
    .unwrap();
    compare_grads(
        &[2, 2, 3, 4],
        |x| apply_rotary(x, &cos, &sin, Mode::Train).unwrap(),
        |x| rotary_written_out(x, &cos, &sin).unwrap(),
    );
    // RMS norm: gradients for x here, for the weight below.
    let w = Tensor::from_vec((0..8).map(|i| 0.5 + i as f32 / 8.0).collect(), 8, &dev).unwrap();
    compare_grads(
        &[3, 2, 8],
        |x| x.apply_op2(&w, grad_ops::RmsNorm { eps: 1e-5 }).unwrap(),
        |x| rms_norm_written_out(x, &w, 1e-5).unwrap(),
    );
    let x = Tensor::from_vec(
        (0..48).map(|i| (i % 11) as f32 - 5.0).collect(),
        (6, 8),
        &dev,
    )
    .unwrap();
    compare_grads(
        &[8],
        |w| x.apply_op2(w, grad_ops::RmsNorm { eps: 1e-5 }).unwrap(),
        |w| rms_norm_written_out(&x, w, 1e-5).unwrap(),
    );
}

#[test]
fn masks_and_positions_skip_left_padding() {
    let dev = Device::Cpu;
    let Mask::Additive(m) = attention_mask(&[1, 0], 0, 3, &dev).unwrap() else {
        panic!("padded rows need an additive mask");
    };
    let m = m.to_vec3::<f32>().unwrap();
    let ninf = f32::NEG_INFINITY;
    // Row 0 has one pad: column 0 is seen only by itself.
    assert_eq!(
        m[0],
        vec![
            vec![0., ninf, ninf],
            vec![ninf, 0., ninf],
            vec![ninf, 0., 0.]
        ]
    );
    assert_eq!(
        m[1],
        vec![vec![0., ninf, ninf], vec![0., 0., ninf], vec![0., 0., 0.]]
    );
    assert!(matches!(
        attention_mask(&[0, 0], 4, 1, &dev).unwrap(),
        Mask::None
    ));
    assert!(matches!(
        attention_mask(&[0, 0], 4, 2, &dev).unwrap(),
        Mask::Causal { past: 4 }
    ));
    assert_eq!(positions(&[0, 0], 2, 2), (vec![2, 3], 1));
    // Row 0: columns 1, 2 are pad, first real token; row 1 is unpadded.
    assert_eq!(positions(&[2, 0], 1, 2), (vec![0, 0, 1, 2], 2));
}
