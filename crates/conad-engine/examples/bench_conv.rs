//! Per-layer convolution benchmark: forward, grad-input and grad-weight GF/s of every
//! distinct ResNet-18 (CIFAR stem) conv layer shape, for 32×32×3 and 28×28×1 inputs at widths 1
//! and 1/4, batch 64 (32 images × 2 views).
//!
//! ```text
//! cargo run --release -p conad-engine --example bench_conv -- [--quick] [--reps R]
//!     [--impl conad|candle] [--config w1_32x32x3] [--layer layer4] [--precision f32|bf16]
//! ```
//! Prints one JSON line per layer shape (`bench`, `case`, `impl`, `seconds` = forward +
//! grad-input + grad-weight median times, `fwd_gflops`, `gin_gflops`, `gw_gflops`, `count` = how
//! many layers of the model have this shape, `checksum` = mean|y| + mean|dx| + mean|dw| on the
//! deterministic inputs that `xtask/scripts/bench_conv.py` builds too). `--impl candle` times
//! candle 0.11.1's own CPU conv (forward, and its backward through autograd) for comparison.

use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use conad_engine::{ConvGeometry, conv_backward, conv_forward};

/// `(name, in, out, kernel, stride, padding, input side, count in the model)`.
type Layer = (String, usize, usize, usize, usize, usize, usize, usize);

fn layers(side: usize, channels: usize, width: f64) -> Vec<Layer> {
    let w: Vec<usize> = [64.0, 128.0, 256.0, 512.0]
        .iter()
        .map(|c: &f64| ((c * width).round() as usize).max(1))
        .collect();
    let down = |s: usize| (s + 2 - 3) / 2 + 1;
    let mut v = vec![
        ("stem".to_string(), channels, w[0], 3, 1, 1, side, 1),
        ("layer1".to_string(), w[0], w[0], 3, 1, 1, side, 4),
    ];
    let mut s = side;
    for i in 1..4 {
        let so = down(s);
        v.push((
            format!("layer{}.0.conv1", i + 1),
            w[i - 1],
            w[i],
            3,
            2,
            1,
            s,
            1,
        ));
        v.push((
            format!("layer{}.0.down", i + 1),
            w[i - 1],
            w[i],
            1,
            2,
            0,
            s,
            1,
        ));
        v.push((format!("layer{}", i + 1), w[i], w[i], 3, 1, 1, so, 3));
        s = so;
    }
    v
}

/// The deterministic inputs both sides build: `v_i = ((i·a) mod 1000)/1000 − 0.5`, times `scale`.
fn pattern(len: usize, a: usize, scale: f32) -> Vec<f32> {
    (0..len)
        .map(|i| (((i * a) % 1000) as f32 / 1000.0 - 0.5) * scale)
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn mean_abs(v: &[f32]) -> f64 {
    v.iter().map(|x| x.abs() as f64).sum::<f64>() / v.len() as f64
}

fn time<R>(reps: usize, mut f: impl FnMut() -> R) -> (f64, R) {
    let mut out = f();
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        out = f();
        t.push(t0.elapsed().as_secs_f64());
    }
    (median(t), out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let quick = argv.iter().any(|a| a == "--quick");
    let value = |flag: &str| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1).cloned())
    };
    let reps: usize = value("--reps").map_or(Ok(if quick { 1 } else { 5 }), |s| s.parse())?;
    let implementation = value("--impl").unwrap_or_else(|| "conad".into());
    if implementation != "conad" && implementation != "candle" {
        return Err(format!("--impl must be conad or candle, got {implementation}").into());
    }
    let precision: conad_engine::Precision = value("--precision")
        .unwrap_or_else(|| "f32".into())
        .parse()?;
    // The convolutions below dispatch on this thread's precision (bf16: AMX kernels where they
    // apply, f32 elsewhere).
    let _scope = precision.scope()?;
    let only = value("--config");
    let only_layer = value("--layer");
    let batch = if quick { 4 } else { 64 };
    let configs: Vec<(f64, usize, usize)> = if quick {
        vec![(0.125, 8, 3)]
    } else {
        vec![(1.0, 32, 3), (0.25, 32, 3), (1.0, 28, 1), (0.25, 28, 1)]
    };
    eprintln!(
        "bench_conv: impl {implementation}, batch {batch}, {reps} reps, {} threads",
        rayon::current_num_threads()
    );
    for (width, side, channels) in configs {
        let config = format!("w{width}_{side}x{side}x{channels}");
        if only.as_ref().is_some_and(|o| o != &config) {
            continue;
        }
        for (name, cin, cout, k, s, p, hw, count) in layers(side, channels, width) {
            if only_layer.as_ref().is_some_and(|l| *l != name) {
                continue;
            }
            let g = ConvGeometry::new(&[batch, cin, hw, hw], &[cout, cin, k, k], s, p)?;
            let x = pattern(batch * cin * hw * hw, 7919, 1.0);
            let w = pattern(cout * cin * k * k, 104_729, 0.1);
            let dy = pattern(batch * cout * g.out_pixels(), 31, 1.0);
            let (tf, tgi, tgw, y, dx, dw) = if implementation == "conad" {
                let (tf, y) = time(reps, || conv_forward(&g, &x, &w));
                let (tgi, (dx, _)) = time(reps, || conv_backward(&g, &x, &w, &dy, true, false));
                let (tgw, (_, dw)) = time(reps, || conv_backward(&g, &x, &w, &dy, false, true));
                (
                    tf,
                    tgi,
                    tgw,
                    y,
                    dx.unwrap_or_default(),
                    dw.unwrap_or_default(),
                )
            } else {
                let dev = Device::Cpu;
                let xt = Tensor::from_vec(x.clone(), (batch, cin, hw, hw), &dev)?;
                let wt = Tensor::from_vec(w.clone(), (cout, cin, k, k), &dev)?;
                let dyt = Tensor::from_vec(
                    dy.clone(),
                    (batch, cout, g.out_height(), g.out_width()),
                    &dev,
                )?;
                let (tf, y) = time(reps, || xt.conv2d(&wt, p, s, 1, 1));
                let xv = Var::from_tensor(&xt)?;
                let wv = Var::from_tensor(&wt)?;
                // Gradient w.r.t. one argument at a time (the other is a constant).
                let (tgi, gx) = time(reps, || -> candle_core::Result<Tensor> {
                    let y = xv.as_tensor().conv2d(&wt, p, s, 1, 1)?;
                    let gr = (y * &dyt)?.sum_all()?.backward()?;
                    Ok(gr.get(xv.as_tensor()).expect("grad").clone())
                });
                let (tgw, gw) = time(reps, || -> candle_core::Result<Tensor> {
                    let y = xt.conv2d(wv.as_tensor(), p, s, 1, 1)?;
                    let gr = (y * &dyt)?.sum_all()?.backward()?;
                    Ok(gr.get(wv.as_tensor()).expect("grad").clone())
                });
                let flat =
                    |t: Tensor| -> candle_core::Result<Vec<f32>> { t.flatten_all()?.to_vec1() };
                // The autograd timings include one forward; subtract it to isolate the gradient.
                (
                    tf,
                    (tgi - tf).max(1e-9),
                    (tgw - tf).max(1e-9),
                    flat(y?)?,
                    flat(gx?)?,
                    flat(gw?)?,
                )
            };
            let gf = g.flops() / 1e9;
            println!(
                "{{\"bench\":\"conv\",\"case\":\"{config}_{name}_{cin}to{cout}_k{k}s{s}_{hw}x{hw}\",\"impl\":\"{implementation}\",\"seconds\":{:.6},\"fwd_s\":{tf:.6},\"gin_s\":{tgi:.6},\"gw_s\":{tgw:.6},\"fwd_gflops\":{:.2},\"gin_gflops\":{:.2},\"gw_gflops\":{:.2},\"count\":{count},\"checksum\":{:.6}}}",
                tf + tgi + tgw,
                gf / tf,
                gf / tgi,
                gf / tgw,
                mean_abs(&y) + mean_abs(&dx) + mean_abs(&dw)
            );
        }
    }
    Ok(())
}
