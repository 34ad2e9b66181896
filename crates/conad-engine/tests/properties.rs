//! Properties of the engine ops that a wrong implementation would break: exact agreement of the
//! conv gradients with finite differences (the loss is linear in x and w), batch-norm gradients vs
//! finite differences, bit-identical results for rayon pools of 1, 2 and 3 threads, and training
//! a tiny ResNet with SGD matching the same model built from candle's ops.

use candle_core::{DType, Device, ModuleT, Tensor, Var};
use candle_nn::{Optimizer, SGD};
use conad_engine::{BatchNorm2d, Conv2d};
use conad_rng::SeedTree;
use rand_distr::{Distribution, StandardNormal};

fn randn(seed: &str, shape: &[usize], scale: f32) -> Tensor {
    let mut rng = SeedTree::new(4).child(seed).rng();
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| {
            let z: f32 = StandardNormal.sample(&mut rng);
            z * scale
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Appends the bit patterns of `t`'s values.
fn push_bits(bits: &mut Vec<u32>, t: &Tensor) {
    let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    bits.extend(v.iter().map(|v| v.to_bits()));
}

/// `got` and `want` hold the same bit patterns.
fn assert_same_bits(got: &[u32], want: &[u32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let differ = got.iter().zip(want).filter(|(p, q)| p != q).count();
    assert_eq!(differ, 0, "{what}: {differ} values differ");
}

/// A bias-free convolution ("same" padding) whose weight is a fresh variable.
fn conv_layer(seed: &str, o: usize, i: usize, k: usize, stride: usize) -> (Conv2d, Var) {
    let w = Var::from_tensor(&randn(seed, &[o, i, k, k], 0.3)).unwrap();
    let c = Conv2d::new(w.as_tensor().clone(), stride, k / 2).unwrap();
    (c, w)
}

/// The bits of `y`, of the gradients of `weights`, of each batch norm's `γ`, `β` (the first two
/// of [`bn_layer`]'s variables) and of `x` when given, then of the batch norms' running
/// statistics.
fn result_bits(
    y: &Tensor,
    grads: &candle_core::backprop::GradStore,
    weights: &[&Var],
    bns: &[&Vec<Var>],
    x: Option<&Var>,
) -> Vec<u32> {
    let mut bits = Vec::new();
    push_bits(&mut bits, y);
    let affine = bns.iter().flat_map(|v| &v[..2]);
    for v in weights.iter().copied().chain(affine).chain(x) {
        let g = grads.get(v.as_tensor());
        push_bits(&mut bits, g.expect("a gradient for every variable"));
    }
    for running in bns.iter().flat_map(|v| &v[2..]) {
        push_bits(&mut bits, running.as_tensor());
    }
    bits
}

fn bn_layer(channels: usize, seed: &str) -> (BatchNorm2d, Vec<Var>) {
    let gamma =
        Var::from_tensor(&(randn(&format!("{seed}.g"), &[channels], 0.3) + 1.0).unwrap()).unwrap();
    let beta = Var::from_tensor(&randn(&format!("{seed}.b"), &[channels], 0.3)).unwrap();
    let rm = Var::zeros(channels, DType::F32, &Device::Cpu).unwrap();
    let rv = Var::ones(channels, DType::F32, &Device::Cpu).unwrap();
    let inner = candle_nn::BatchNorm::new_with_momentum(
        channels,
        rm.as_tensor().clone(),
        rv.as_tensor().clone(),
        gamma.as_tensor().clone(),
        beta.as_tensor().clone(),
        1e-5,
        0.1,
    )
    .unwrap();
    (BatchNorm2d::from_candle(inner), vec![gamma, beta, rm, rv])
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

#[test]
fn conv_gradients_equal_finite_differences() {
    // L = Σ conv(x, w)·r is bilinear, so (L(x + h·e) − L(x − h·e)) / 2h is the exact partial
    // derivative up to rounding; the test perturbs single entries of x and w.
    for &(n, c, h, w, o, k, s, p) in &[(2, 3, 5, 6, 4, 3, 2, 1), (1, 2, 4, 4, 3, 1, 2, 0)] {
        let x = Var::from_tensor(&randn("fd.x", &[n, c, h, w], 1.0)).unwrap();
        let wt = Var::from_tensor(&randn("fd.w", &[o, c, k, k], 0.5)).unwrap();
        let loss = |xt: &Tensor, wv: &Tensor| -> Tensor {
            let y = Conv2d::new(wv.clone(), s, p).unwrap().forward(xt).unwrap();
            let r = randn("fd.r", y.dims(), 1.0);
            (y.to_dtype(DType::F64).unwrap() * r.to_dtype(DType::F64).unwrap())
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let grads = loss(x.as_tensor(), wt.as_tensor()).backward().unwrap();
        for (var, is_x) in [(&x, true), (&wt, false)] {
            let g = grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let base = var
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            for idx in (0..base.len()).step_by(base.len() / 7 + 1) {
                let hstep = 0.5f32;
                let at = |delta: f32| {
                    let mut v = base.clone();
                    v[idx] += delta;
                    let t = Tensor::from_vec(v, var.dims(), &Device::Cpu).unwrap();
                    if is_x {
                        scalar(&loss(&t, wt.as_tensor()))
                    } else {
                        scalar(&loss(x.as_tensor(), &t))
                    }
                };
                let fd = (at(hstep) - at(-hstep)) / (2.0 * hstep as f64);
                assert!(
                    (fd - g[idx] as f64).abs() < 2e-4 * (1.0 + fd.abs()),
                    "{} entry {idx}: analytic {} vs finite difference {fd}",
                    if is_x { "x" } else { "w" },
                    g[idx]
                );
            }
        }
    }
}

#[test]
fn batch_norm_gradients_match_finite_differences() {
    let (bn, vars) = bn_layer(3, "fdbn");
    let x = Var::from_tensor(&randn("fdbn.x", &[2, 3, 3, 4], 2.0)).unwrap();
    let r = randn("fdbn.r", &[2, 3, 3, 4], 1.0)
        .to_dtype(DType::F64)
        .unwrap();
    let loss = |xt: &Tensor, g: &Tensor| -> f64 {
        // Evaluate with a fresh layer sharing nothing but γ (β enters linearly).
        let inner = candle_nn::BatchNorm::new_with_momentum(
            3,
            Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
            Tensor::ones(3, DType::F32, &Device::Cpu).unwrap(),
            g.clone(),
            vars[1].as_tensor().clone(),
            1e-5,
            0.1,
        )
        .unwrap();
        let y = BatchNorm2d::from_candle(inner)
            .forward(xt, true, false)
            .unwrap();
        scalar(
            &(y.to_dtype(DType::F64).unwrap() * &r)
                .unwrap()
                .sum_all()
                .unwrap(),
        )
    };
    let y = bn.forward(x.as_tensor(), true, false).unwrap();
    let grads = (y.to_dtype(DType::F64).unwrap() * &r)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gx = grads
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let gg = grads
        .get(vars[0].as_tensor())
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let xb = x
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let h = 1e-2f32;
    for idx in [0, 5, 17, 30, 71] {
        let at = |d: f32| {
            let mut v = xb.clone();
            v[idx] += d;
            loss(
                &Tensor::from_vec(v, (2, 3, 3, 4), &Device::Cpu).unwrap(),
                vars[0].as_tensor(),
            )
        };
        let fd = (at(h) - at(-h)) / (2.0 * h as f64);
        assert!(
            (fd - gx[idx] as f64).abs() < 5e-3 * (1.0 + fd.abs()),
            "dx[{idx}]: {} vs {fd}",
            gx[idx]
        );
    }
    let gb = vars[0].as_tensor().to_vec1::<f32>().unwrap();
    for c in 0..3 {
        let at = |d: f32| {
            let mut v = gb.clone();
            v[c] += d;
            loss(
                x.as_tensor(),
                &Tensor::from_vec(v, 3, &Device::Cpu).unwrap(),
            )
        };
        let fd = (at(h) - at(-h)) / (2.0 * h as f64);
        assert!(
            (fd - gg[c] as f64).abs() < 5e-3 * (1.0 + fd.abs()),
            "dγ[{c}]: {} vs {fd}",
            gg[c]
        );
    }
}

/// Forward + backward of fused conv+BN+ReLU → strided conv → 64-channel 3×3 conv (Winograd) → BN
/// on a shape with many chunks and several reduction groups; returns every output and gradient as
/// raw bits.
fn run_graph() -> Vec<u32> {
    let x = Var::from_tensor(&randn("det.x", &[20, 3, 24, 24], 1.0)).unwrap();
    let w1 = Var::from_tensor(&randn("det.w1", &[8, 3, 3, 3], 0.3)).unwrap();
    let w2 = Var::from_tensor(&randn("det.w2", &[64, 8, 3, 3], 0.2)).unwrap();
    let w3 = Var::from_tensor(&randn("det.w3", &[64, 64, 3, 3], 0.05)).unwrap();
    let (bn1, v1) = bn_layer(8, "det.bn1");
    let (bn2, v2) = bn_layer(64, "det.bn2");
    // Fused conv + BN + ReLU, then the separate ops.
    let conv1 = Conv2d::new(w1.as_tensor().clone(), 1, 1).unwrap();
    let h = bn1.forward_conv(&conv1, x.as_tensor(), true, true).unwrap();
    let h = Conv2d::new(w2.as_tensor().clone(), 2, 1)
        .unwrap()
        .forward(&h)
        .unwrap();
    let h = Conv2d::new(w3.as_tensor().clone(), 1, 1)
        .unwrap()
        .forward(&h)
        .unwrap();
    let y = bn2.forward(&h, true, false).unwrap();
    let r = randn("det.r", y.dims(), 1.0);
    let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let mut bits = Vec::new();
    let mut push = |t: &Tensor| {
        bits.extend(
            t.flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits()),
        )
    };
    push(&y);
    for v in [&x, &w1, &w2, &w3, &v1[0], &v1[1], &v2[0], &v2[1]] {
        push(grads.get(v.as_tensor()).unwrap());
    }
    push(v1[2].as_tensor());
    push(v1[3].as_tensor());
    bits
}

#[test]
fn results_are_bit_identical_for_any_thread_count() {
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    let one = pool(1).install(run_graph);
    let two = pool(2).install(run_graph);
    let three = pool(3).install(run_graph);
    assert!(one == two, "1 vs 2 threads differ");
    assert!(one == three, "1 vs 3 threads differ");
}

/// A tiny residual network: stem conv–BN–ReLU, then a strided block with a 1×1 downsample
/// shortcut, global average pool, linear layer. `engine` picks conad-engine's layers or
/// candle's (`Tensor::conv2d` + candle-nn `BatchNorm`) on the same parameters.
struct TinyResNet {
    convs: Vec<(Var, usize, usize)>,
    bns: Vec<(candle_nn::BatchNorm, Vec<Var>)>,
    fc: Var,
}

impl TinyResNet {
    fn new() -> Self {
        let specs = [
            ("c0", 4, 3, 3, 1, 1),
            ("c1", 8, 4, 3, 2, 1),
            ("c2", 8, 8, 3, 1, 1),
            ("cd", 8, 4, 1, 2, 0),
        ];
        let convs = specs
            .iter()
            .map(|&(n, o, i, k, s, p)| {
                let fan_out = (o * k * k) as f32;
                (
                    Var::from_tensor(&randn(n, &[o, i, k, k], (2.0 / fan_out).sqrt())).unwrap(),
                    s,
                    p,
                )
            })
            .collect();
        let bns = [("b0", 4), ("b1", 8), ("b2", 8), ("bd", 8)]
            .iter()
            .map(|&(n, c)| {
                let (bn, vars) = bn_layer(c, n);
                (bn.inner().clone(), vars)
            })
            .collect();
        let fc = Var::from_tensor(&randn("fc", &[8, 5], 0.3)).unwrap();
        Self { convs, bns, fc }
    }

    fn vars(&self) -> Vec<Var> {
        let mut v: Vec<Var> = self.convs.iter().map(|c| c.0.clone()).collect();
        for (_, vars) in &self.bns {
            v.extend(vars[..2].iter().cloned());
        }
        v.push(self.fc.clone());
        v
    }

    fn forward(&self, x: &Tensor, engine: bool) -> Tensor {
        let conv = |i: usize, x: &Tensor| {
            let (w, s, p) = &self.convs[i];
            if engine {
                Conv2d::new(w.as_tensor().clone(), *s, *p)
                    .unwrap()
                    .forward(x)
                    .unwrap()
            } else {
                x.conv2d(w.as_tensor(), *p, *s, 1, 1).unwrap()
            }
        };
        let bn = |i: usize, x: &Tensor, relu: bool| {
            let inner = &self.bns[i].0;
            if engine {
                BatchNorm2d::from_candle(inner.clone())
                    .forward(x, true, relu)
                    .unwrap()
            } else {
                let y = inner.forward_t(x, true).unwrap();
                if relu { y.relu().unwrap() } else { y }
            }
        };
        let h = bn(0, &conv(0, x), true);
        let out = bn(1, &conv(1, &h), true);
        let out = bn(2, &conv(2, &out), false);
        let short = bn(3, &conv(3, &h), false);
        let h = (out + short).unwrap().relu().unwrap().mean((2, 3)).unwrap();
        h.matmul(self.fc.as_tensor()).unwrap()
    }
}

#[test]
fn sgd_training_matches_candle_ops() {
    let engine = TinyResNet::new();
    let candle = TinyResNet::new();
    let mut opt_e = SGD::new(engine.vars(), 0.05).unwrap();
    let mut opt_c = SGD::new(candle.vars(), 0.05).unwrap();
    let target = randn("target", &[6, 5], 1.0);
    let mut moved = 0.0f32;
    for step in 0..5 {
        let x = randn(&format!("x{step}"), &[6, 3, 9, 7], 1.0);
        let le = (engine.forward(&x, true) - &target)
            .unwrap()
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap();
        let lc = (candle.forward(&x, false) - &target)
            .unwrap()
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap();
        let (le_v, lc_v) = (
            le.to_scalar::<f32>().unwrap(),
            lc.to_scalar::<f32>().unwrap(),
        );
        assert!(
            (le_v - lc_v).abs() < 1e-4 * (1.0 + lc_v.abs()),
            "step {step}: loss {le_v} vs {lc_v}"
        );
        opt_e.backward_step(&le).unwrap();
        opt_c.backward_step(&lc).unwrap();
    }
    let (ve, vc) = (engine.vars(), candle.vars());
    for (a, b) in ve.iter().zip(&vc) {
        let d: f32 = (a.as_tensor() - b.as_tensor())
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(d < 1e-4, "parameter {:?} differs by {d}", a.dims());
    }
    for ((_, a), (_, b)) in engine.bns.iter().zip(&candle.bns) {
        for k in 2..4 {
            let d: f32 = (a[k].as_tensor() - b[k].as_tensor())
                .unwrap()
                .abs()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar()
                .unwrap();
            assert!(d < 1e-5, "running statistic differs by {d}");
        }
    }
    // Training actually moved the parameters (a no-op backward would pass the checks above).
    let w0 = randn("c0", &[4, 3, 3, 3], (2.0f32 / 36.0).sqrt());
    moved += (ve[0].as_tensor() - w0)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(moved > 1e-3, "SGD did not change the stem weights");
}

#[test]
fn add_relu_matches_candle_forward_and_gradients() {
    let a = Var::from_tensor(&randn("ar.a", &[3, 4, 5, 6], 1.0)).unwrap();
    let b = Var::from_tensor(&randn("ar.b", &[3, 4, 5, 6], 1.0)).unwrap();
    let r = randn("ar.r", &[3, 4, 5, 6], 1.0);
    let ours = conad_engine::add_relu(a.as_tensor(), b.as_tensor()).unwrap();
    let theirs = (a.as_tensor() + b.as_tensor()).unwrap().relu().unwrap();
    let bits = |t: &Tensor| -> Vec<u32> {
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        v.iter().map(|x| x.to_bits()).collect()
    };
    assert_eq!(bits(&ours), bits(&theirs));
    let g1 = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let g2 = (&theirs * &r)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for v in [&a, &b] {
        let x = g1.get(v.as_tensor()).unwrap();
        assert_eq!(bits(x), bits(g2.get(v.as_tensor()).unwrap()));
    }
    // About half the entries are masked: the gradient is not a plain copy of r.
    let zeros = bits(g1.get(a.as_tensor()).unwrap())
        .iter()
        .filter(|&&b| b == 0)
        .count();
    assert!(zeros > 100 && zeros < 260, "{zeros} masked entries of 360");
    let short = Tensor::zeros((3, 4, 5, 5), DType::F32, &Device::Cpu).unwrap();
    assert!(conad_engine::add_relu(a.as_tensor(), &short).is_err());
}

#[test]
fn fused_conv_batch_norm_is_bit_identical_to_the_separate_ops() {
    for &(relu, stride, pad, k) in &[(true, 1, 1, 3), (false, 2, 1, 3), (false, 2, 0, 1)] {
        let run = |fused: bool| -> Vec<u32> {
            let x = Var::from_tensor(&randn("cb.x", &[5, 3, 9, 8], 1.0)).unwrap();
            let w = Var::from_tensor(&randn("cb.w", &[6, 3, k, k], 0.4)).unwrap();
            let (bn, vars) = bn_layer(6, "cb.bn");
            let conv = Conv2d::new(w.as_tensor().clone(), stride, pad).unwrap();
            let y = if fused {
                bn.forward_conv(&conv, x.as_tensor(), true, relu).unwrap()
            } else {
                bn.forward(&conv.forward(x.as_tensor()).unwrap(), true, relu)
                    .unwrap()
            };
            let r = randn("cb.r", y.dims(), 1.0);
            let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let mut bits = Vec::new();
            let mut push = |t: &Tensor| push_bits(&mut bits, t);
            push(&y);
            for v in [&x, &w, &vars[0], &vars[1]] {
                push(grads.get(v.as_tensor()).unwrap());
            }
            push(vars[2].as_tensor());
            push(vars[3].as_tensor());
            bits
        };
        assert!(
            run(true) == run(false),
            "relu {relu} stride {stride} kernel {k}"
        );
    }
}

/// The fused block — with its parameters as one graph input, and with its parameter gradients
/// handed to a `DirectGradients` scope — gives the separate ops' output, gradients and running
/// statistics bit for bit.
#[test]
fn fused_residual_block_is_bit_identical_to_the_separate_ops() {
    use conad_engine::{DirectGradients, ResidualBlock};
    // (in, out, stride): a projection shortcut and an identity shortcut.
    for &(cin, cout, stride) in &[(4, 6, 2), (5, 5, 1)] {
        // 0: separate ops, 1: fused block, 2: fused block with direct parameter gradients.
        let run = |mode: u8| -> Vec<u32> {
            let x = Var::from_tensor(&randn("rb.x", &[4, cin, 9, 7], 1.0)).unwrap();
            let w1 = Var::from_tensor(&randn("rb.w1", &[cout, cin, 3, 3], 0.3)).unwrap();
            let w2 = Var::from_tensor(&randn("rb.w2", &[cout, cout, 3, 3], 0.3)).unwrap();
            let wd = Var::from_tensor(&randn("rb.wd", &[cout, cin, 1, 1], 0.5)).unwrap();
            let (bn1, v1) = bn_layer(cout, "rb.bn1");
            let (bn2, v2) = bn_layer(cout, "rb.bn2");
            let (bnd, vd) = bn_layer(cout, "rb.bnd");
            let conv1 = Conv2d::new(w1.as_tensor().clone(), stride, 1).unwrap();
            let conv2 = Conv2d::new(w2.as_tensor().clone(), 1, 1).unwrap();
            let convd = Conv2d::new(wd.as_tensor().clone(), stride, 0).unwrap();
            let down = cin != cout;
            let direct = (mode == 2).then(DirectGradients::scope);
            let y = if mode > 0 {
                ResidualBlock {
                    conv1: &conv1,
                    bn1: &bn1,
                    conv2: &conv2,
                    bn2: &bn2,
                    downsample: down.then_some((&convd, &bnd)),
                }
                .forward(x.as_tensor(), true)
                .unwrap()
            } else {
                let a = bn1.forward_conv(&conv1, x.as_tensor(), true, true).unwrap();
                let b = bn2.forward_conv(&conv2, &a, true, false).unwrap();
                let s = if down {
                    bnd.forward_conv(&convd, x.as_tensor(), true, false)
                        .unwrap()
                } else {
                    x.as_tensor().clone()
                };
                conad_engine::add_relu(&b, &s).unwrap()
            };
            let r = randn("rb.r", y.dims(), 1.0);
            let mut grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            if let Some(direct) = direct {
                direct.merge_into(&mut grads).unwrap();
            }
            let mut bits = Vec::new();
            let mut push = |t: &Tensor| push_bits(&mut bits, t);
            push(&y);
            let mut vars = vec![&x, &w1, &w2, &v1[0], &v1[1], &v2[0], &v2[1]];
            if down {
                vars.extend([&wd, &vd[0], &vd[1]]);
            }
            for v in vars {
                push(grads.get(v.as_tensor()).unwrap());
            }
            for v in v1[2..]
                .iter()
                .chain(&v2[2..])
                .chain(if down { &vd[2..] } else { &vd[..0] })
            {
                push(v.as_tensor());
            }
            bits
        };
        let separate = run(0);
        for mode in [1, 2] {
            let what = format!("mode {mode}, in {cin} out {cout} stride {stride}");
            assert_same_bits(&run(mode), &separate, &what);
        }
    }
}

/// A stage of two blocks (projection, then identity shortcut) as one op inside a
/// `DirectGradients` scope gives the separate ops' output, input and parameter gradients and
/// running statistics bit for bit; so does the stage without a scope (block by block). A stage
/// fed by an input that tracks no gradient falls back to the blocks one by one (the first on the
/// graph path, the second direct) and still delivers every parameter gradient.
#[test]
fn fused_residual_stage_is_bit_identical_to_the_separate_ops() {
    use conad_engine::{DirectGradients, ResidualBlock, ResidualStage};
    let (cin, cout) = (4, 6);
    // 0: separate ops, 1: stage block by block, 2: stage as one op (direct gradients).
    let run = |mode: u8, x_tracks: bool| -> Vec<u32> {
        let xt = randn("st.x", &[4, cin, 9, 7], 1.0);
        let x = Var::from_tensor(&xt).unwrap();
        let input = if x_tracks { x.as_tensor().clone() } else { xt };
        let (a1, wa1) = conv_layer("st.a1", cout, cin, 3, 2);
        let (a2, wa2) = conv_layer("st.a2", cout, cout, 3, 1);
        let (ad, wad) = conv_layer("st.ad", cout, cin, 1, 2);
        let (b1, wb1) = conv_layer("st.b1", cout, cout, 3, 1);
        let (b2, wb2) = conv_layer("st.b2", cout, cout, 3, 1);
        let (bna1, va1) = bn_layer(cout, "st.bna1");
        let (bna2, va2) = bn_layer(cout, "st.bna2");
        let (bnad, vad) = bn_layer(cout, "st.bnad");
        let (bnb1, vb1) = bn_layer(cout, "st.bnb1");
        let (bnb2, vb2) = bn_layer(cout, "st.bnb2");
        let direct = (mode == 2).then(DirectGradients::scope);
        let y = if mode > 0 {
            let blocks = [
                ResidualBlock {
                    conv1: &a1,
                    bn1: &bna1,
                    conv2: &a2,
                    bn2: &bna2,
                    downsample: Some((&ad, &bnad)),
                },
                ResidualBlock {
                    conv1: &b1,
                    bn1: &bnb1,
                    conv2: &b2,
                    bn2: &bnb2,
                    downsample: None,
                },
            ];
            ResidualStage { blocks: &blocks }
                .forward(&input, true)
                .unwrap()
        } else {
            let a = bna1.forward_conv(&a1, &input, true, true).unwrap();
            let b = bna2.forward_conv(&a2, &a, true, false).unwrap();
            let s = bnad.forward_conv(&ad, &input, true, false).unwrap();
            let h = conad_engine::add_relu(&b, &s).unwrap();
            let a = bnb1.forward_conv(&b1, &h, true, true).unwrap();
            let b = bnb2.forward_conv(&b2, &a, true, false).unwrap();
            conad_engine::add_relu(&b, &h).unwrap()
        };
        let r = randn("st.r", y.dims(), 1.0);
        let mut grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        if let Some(direct) = direct {
            direct.merge_into(&mut grads).unwrap();
        }
        let weights = [&wa1, &wa2, &wad, &wb1, &wb2];
        let bns = [&va1, &va2, &vad, &vb1, &vb2];
        result_bits(&y, &grads, &weights, &bns, x_tracks.then_some(&x))
    };
    for x_tracks in [true, false] {
        let separate = run(0, x_tracks);
        for mode in [1, 2] {
            let what = format!("mode {mode}, x tracks {x_tracks}");
            assert_same_bits(&run(mode, x_tracks), &separate, &what);
        }
    }
}

/// The trunk (stem conv + batch norm + ReLU, then stages) as one op inside a
/// `DirectGradients` scope gives the separate ops' output, every parameter gradient (and the
/// input's when it tracks) and running statistics bit for bit; so does the layer-by-layer path
/// it takes without a scope or with a frozen stem weight (no fused op then).
#[test]
fn fused_residual_network_is_bit_identical_to_the_separate_ops() {
    use conad_engine::{DirectGradients, ResidualBlock, ResidualNetwork, ResidualStage};
    let (cin, c1, c2) = (3, 4, 6);
    // 0: separate ops, 1: network without a scope, 2: network in a scope (one op),
    // 3: network in a scope with a frozen stem weight (layer by layer).
    let run = |mode: u8, x_tracks: bool| -> Vec<u32> {
        let xt = randn("net.x", &[3, cin, 8, 7], 1.0);
        let x = Var::from_tensor(&xt).unwrap();
        let input = if x_tracks { x.as_tensor().clone() } else { xt };
        let (stem, wstem) = conv_layer("net.stem", c1, cin, 3, 1);
        let stem = if mode == 3 {
            Conv2d::new(wstem.as_tensor().detach(), 1, 1).unwrap()
        } else {
            stem
        };
        let (a1, wa1) = conv_layer("net.a1", c1, c1, 3, 1);
        let (a2, wa2) = conv_layer("net.a2", c1, c1, 3, 1);
        let (b1, wb1) = conv_layer("net.b1", c2, c1, 3, 2);
        let (b2, wb2) = conv_layer("net.b2", c2, c2, 3, 1);
        let (bd, wbd) = conv_layer("net.bd", c2, c1, 1, 2);
        let (bns, vs) = bn_layer(c1, "net.bns");
        let (bna1, va1) = bn_layer(c1, "net.bna1");
        let (bna2, va2) = bn_layer(c1, "net.bna2");
        let (bnb1, vb1) = bn_layer(c2, "net.bnb1");
        let (bnb2, vb2) = bn_layer(c2, "net.bnb2");
        let (bnbd, vbd) = bn_layer(c2, "net.bnbd");
        let direct = (mode >= 2).then(DirectGradients::scope);
        let y = if mode > 0 {
            let first = [ResidualBlock {
                conv1: &a1,
                bn1: &bna1,
                conv2: &a2,
                bn2: &bna2,
                downsample: None,
            }];
            let second = [ResidualBlock {
                conv1: &b1,
                bn1: &bnb1,
                conv2: &b2,
                bn2: &bnb2,
                downsample: Some((&bd, &bnbd)),
            }];
            let stages = [
                ResidualStage { blocks: &first },
                ResidualStage { blocks: &second },
            ];
            let net = ResidualNetwork {
                stem_conv: &stem,
                stem_bn: &bns,
                stages: &stages,
            };
            let fused = net.forward_fused(&input, true).unwrap();
            assert_eq!(fused.is_some(), mode == 2, "one op exactly in mode 2");
            assert!(
                net.forward_fused(&input, false).unwrap().is_none(),
                "evaluation runs layer by layer"
            );
            // Once through `forward` as well (running statistics move twice in every mode).
            let _ = net.forward(&input, true).unwrap();
            fused.unwrap_or_else(|| net.forward(&input, true).unwrap())
        } else {
            let mut last = None;
            for _ in 0..2 {
                let h = bns.forward_conv(&stem, &input, true, true).unwrap();
                let a = bna1.forward_conv(&a1, &h, true, true).unwrap();
                let b = bna2.forward_conv(&a2, &a, true, false).unwrap();
                let h = conad_engine::add_relu(&b, &h).unwrap();
                let a = bnb1.forward_conv(&b1, &h, true, true).unwrap();
                let b = bnb2.forward_conv(&b2, &a, true, false).unwrap();
                let s = bnbd.forward_conv(&bd, &h, true, false).unwrap();
                last = Some(conad_engine::add_relu(&b, &s).unwrap());
            }
            last.unwrap()
        };
        let r = randn("net.r", y.dims(), 1.0);
        let mut grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        if let Some(direct) = direct {
            direct.merge_into(&mut grads).unwrap();
        }
        let mut weights = vec![&wa1, &wa2, &wb1, &wb2, &wbd];
        if mode != 3 {
            weights.push(&wstem);
        }
        let bns = [&vs, &va1, &va2, &vb1, &vb2, &vbd];
        result_bits(&y, &grads, &weights, &bns, x_tracks.then_some(&x))
    };
    for x_tracks in [true, false] {
        let separate = run(0, x_tracks);
        for mode in [1, 2] {
            let what = format!("mode {mode}, x tracks {x_tracks}");
            assert_same_bits(&run(mode, x_tracks), &separate, &what);
        }
        // Frozen stem: the same values without the stem weight's gradient.
        let frozen = run(3, x_tracks);
        let stem_grad = 3 * 3 * cin * c1;
        let y_len = 3 * c2 * 4 * 4;
        let grads_before_stem = y_len + (c1 * c1 * 9) * 2 + c2 * c1 * 9 + c2 * c2 * 9 + c2 * c1;
        let mut want = separate.clone();
        want.drain(grads_before_stem..grads_before_stem + stem_grad);
        assert_same_bits(&frozen, &want, &format!("frozen stem, x tracks {x_tracks}"));
    }
}

/// A fused block built inside a `DirectGradients` scope whose backward runs after the scope
/// ended reports an error instead of dropping its parameter gradients.
#[test]
fn backward_after_the_direct_gradient_scope_is_an_error() {
    use conad_engine::{DirectGradients, ResidualBlock};
    let x = Var::from_tensor(&randn("late.x", &[2, 4, 6, 6], 1.0)).unwrap();
    let w1 = Var::from_tensor(&randn("late.w1", &[4, 4, 3, 3], 0.3)).unwrap();
    let w2 = Var::from_tensor(&randn("late.w2", &[4, 4, 3, 3], 0.3)).unwrap();
    let (bn1, _v1) = bn_layer(4, "late.bn1");
    let (bn2, _v2) = bn_layer(4, "late.bn2");
    let conv1 = Conv2d::new(w1.as_tensor().clone(), 1, 1).unwrap();
    let conv2 = Conv2d::new(w2.as_tensor().clone(), 1, 1).unwrap();
    let block = ResidualBlock {
        conv1: &conv1,
        bn1: &bn1,
        conv2: &conv2,
        bn2: &bn2,
        downsample: None,
    };
    let scope = DirectGradients::scope();
    let y = block.forward(x.as_tensor(), true).unwrap();
    drop(scope);
    let err = y.sum_all().unwrap().backward().unwrap_err();
    assert!(err.to_string().contains("merge_into"), "{err}");
    // Outside any scope the same block takes the graph path and delivers every gradient.
    let y = block.forward(x.as_tensor(), true).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert!(grads.get(w1.as_tensor()).is_some() && grads.get(w2.as_tensor()).is_some());
}

/// Evaluation mode: the engine op equals candle-nn's `BatchNorm` in eval mode (+ ReLU) within
/// float tolerance, and its gradients for x, γ and β equal candle's autograd through those ops —
/// with running statistics far from 0/1 so a mix-up of batch and running statistics shows.
#[test]
fn eval_mode_batch_norm_matches_candle_nn() {
    let (bn, vars) = bn_layer(5, "eval");
    vars[2].set(&randn("eval.rm", &[5], 0.5)).unwrap();
    vars[3]
        .set(&(randn("eval.rv", &[5], 0.3).abs().unwrap() + 0.5).unwrap())
        .unwrap();
    let x = Var::from_tensor(&randn("eval.x", &[3, 5, 4, 6], 1.5)).unwrap();
    let r = randn("eval.r", &[3, 5, 4, 6], 1.0);
    for relu in [false, true] {
        let ours = bn.forward(x.as_tensor(), false, relu).unwrap();
        let theirs = bn.inner().forward_t(x.as_tensor(), false).unwrap();
        let theirs = if relu { theirs.relu().unwrap() } else { theirs };
        let diff = scalar(
            &(&ours - &theirs)
                .unwrap()
                .abs()
                .unwrap()
                .max_keepdim(0)
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap(),
        );
        assert!(diff < 1e-5, "forward differs by {diff} (relu {relu})");
        let g1 = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (&theirs * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (name, t) in [
            ("x", x.as_tensor()),
            ("gamma", vars[0].as_tensor()),
            ("beta", vars[1].as_tensor()),
        ] {
            let a = g1
                .get(t)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let b = g2
                .get(t)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            for (u, v) in a.iter().zip(&b) {
                assert!(
                    (u - v).abs() <= 1e-4 * (1.0 + v.abs()),
                    "d{name}: {u} vs {v} (relu {relu})"
                );
            }
        }
    }
    // The running statistics are untouched in evaluation mode.
    let rm = vars[2].as_tensor().to_vec1::<f32>().unwrap();
    assert_eq!(rm, randn("eval.rm", &[5], 0.5).to_vec1::<f32>().unwrap());
}
