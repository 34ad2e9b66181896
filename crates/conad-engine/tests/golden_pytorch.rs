//! Golden tests against PyTorch 1.13: conv2d forward, grad-input and grad-weight on awkward
//! shapes, and training-mode BatchNorm2d(+ReLU) forward, gradients and running statistics.
//! Fixtures: `fixtures/engine/*.safetensors`, written by `xtask/scripts/golden_conv.py`
//! (`/usr/bin/python3 xtask/scripts/golden_conv.py`).

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor, Var};
use conad_engine::{BatchNorm2d, Conv2d};

fn load(name: &str) -> HashMap<String, Tensor> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/engine")
        .join(name);
    candle_core::safetensors::load(&path, &Device::Cpu).expect("fixture (run golden_conv.py)")
}

fn max_abs(a: &Tensor) -> f32 {
    let flat = a.abs().unwrap().flatten_all().unwrap();
    flat.max(0).unwrap().to_scalar().unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    max_abs(&(a - b).unwrap())
}

/// max |a − b| relative to `1 + max |b|` (sums over a thousand products carry f32 rounding of
/// their magnitude).
fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    max_abs_diff(a, b) / (1.0 + max_abs(b))
}

fn cases(t: &HashMap<String, Tensor>) -> Vec<String> {
    let mut v: Vec<String> = t
        .keys()
        .filter_map(|k| k.strip_suffix(".meta").map(str::to_string))
        .collect();
    v.sort();
    v
}

#[test]
fn conv_forward_and_both_gradients_match_pytorch() {
    let t = load("conv.safetensors");
    let names = cases(&t);
    assert_eq!(names.len(), 15);
    for name in names {
        let get = |f: &str| t[&format!("{name}.{f}")].clone();
        let meta = get("meta").to_vec1::<f32>().unwrap();
        let (stride, padding) = (meta[0] as usize, meta[1] as usize);
        let x = Var::from_tensor(&get("x")).unwrap();
        let w = Var::from_tensor(&get("w")).unwrap();
        let conv = Conv2d::new(w.as_tensor().clone(), stride, padding).unwrap();
        assert!(conv.uses_engine(x.as_tensor()));
        let y = conv.forward(x.as_tensor()).unwrap();
        let dy = get("dy");
        let e = max_abs_diff(&y, &get("y"));
        assert!(e < 2e-5, "{name}: forward max |Δ| = {e}");
        let grads = (y * &dy).unwrap().sum_all().unwrap().backward().unwrap();
        let e = max_abs_diff(grads.get(x.as_tensor()).unwrap(), &get("dx"));
        assert!(e < 2e-5, "{name}: grad-input max |Δ| = {e}");
        let e = rel_diff(grads.get(w.as_tensor()).unwrap(), &get("dw"));
        assert!(e < 1e-5, "{name}: grad-weight relative max |Δ| = {e}");
    }
}

#[test]
fn batch_norm_relu_training_matches_pytorch() {
    let t = load("batch_norm.safetensors");
    let names = cases(&t);
    assert_eq!(names.len(), 4);
    for name in names {
        let get = |f: &str| t[&format!("{name}.{f}")].clone();
        let meta = get("meta").to_vec1::<f32>().unwrap();
        let (relu, affine) = (meta[0] == 1.0, meta[1] == 1.0);
        let x = Var::from_tensor(&get("x")).unwrap();
        let channels = x.dim(1).unwrap();
        let rm = Var::from_tensor(&get("rm0")).unwrap();
        let rv = Var::from_tensor(&get("rv0")).unwrap();
        let (gamma, beta) = if affine {
            (
                Some(Var::from_tensor(&get("gamma")).unwrap()),
                Some(Var::from_tensor(&get("beta")).unwrap()),
            )
        } else {
            (None, None)
        };
        let inner = match (&gamma, &beta) {
            (Some(g), Some(b)) => candle_nn::BatchNorm::new_with_momentum(
                channels,
                rm.as_tensor().clone(),
                rv.as_tensor().clone(),
                g.as_tensor().clone(),
                b.as_tensor().clone(),
                1e-5,
                0.1,
            ),
            _ => candle_nn::BatchNorm::new_no_bias_with_momentum(
                channels,
                rm.as_tensor().clone(),
                rv.as_tensor().clone(),
                1e-5,
                0.1,
            ),
        }
        .unwrap();
        let bn = BatchNorm2d::from_candle(inner);
        assert!(bn.uses_engine(x.as_tensor()));
        let y = bn.forward(x.as_tensor(), true, relu).unwrap();
        let e = max_abs_diff(&y, &get("y"));
        assert!(e < 2e-5, "{name}: forward max |Δ| = {e}");
        let e = max_abs_diff(rm.as_tensor(), &get("rm"));
        assert!(e < 1e-6, "{name}: running_mean max |Δ| = {e}");
        let e = max_abs_diff(rv.as_tensor(), &get("rv"));
        assert!(e < 2e-6, "{name}: running_var max |Δ| = {e}");
        let grads = (y * get("dy"))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let e = max_abs_diff(grads.get(x.as_tensor()).unwrap(), &get("dx"));
        assert!(e < 2e-5, "{name}: grad-input max |Δ| = {e}");
        if let (Some(g), Some(b)) = (&gamma, &beta) {
            let e = max_abs_diff(grads.get(g.as_tensor()).unwrap(), &get("dgamma"));
            assert!(e < 5e-5, "{name}: dγ max |Δ| = {e}");
            let e = max_abs_diff(grads.get(b.as_tensor()).unwrap(), &get("dbeta"));
            assert!(e < 5e-5, "{name}: dβ max |Δ| = {e}");
        }
        // Evaluation mode normalises with the (updated) running statistics, like PyTorch.
        let ye = bn.forward(x.as_tensor(), false, false).unwrap();
        let rstd = (rv.as_tensor() + 1e-5)
            .unwrap()
            .sqrt()
            .unwrap()
            .reshape((1, channels, 1, 1))
            .unwrap();
        let mut want = x
            .as_tensor()
            .broadcast_sub(&rm.as_tensor().reshape((1, channels, 1, 1)).unwrap())
            .unwrap()
            .broadcast_div(&rstd)
            .unwrap();
        if let (Some(g), Some(b)) = (&gamma, &beta) {
            want = want
                .broadcast_mul(&g.as_tensor().reshape((1, channels, 1, 1)).unwrap())
                .unwrap()
                .broadcast_add(&b.as_tensor().reshape((1, channels, 1, 1)).unwrap())
                .unwrap();
        }
        assert!(max_abs_diff(&ye, &want) < 1e-5, "{name}: eval mode");
    }
}
