//! Shared by the PyTorch golden tests: fixture loading and the value + gradient comparison.
#![allow(dead_code)] // each test binary uses a subset

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Tensor, Var};

/// The arrays of one golden `.npz` fixture, by name.
pub type Golden = HashMap<String, Tensor>;

/// Reads `fixtures/losses/<file>`.
pub fn load_golden(file: &str) -> Golden {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/losses")
        .join(file);
    Tensor::read_npz(path).unwrap().into_iter().collect()
}

/// Every element as f64, row-major.
pub fn vec64(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// Largest absolute difference relative to `b`'s largest magnitude (at least 1).
pub fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (vec64(a), vec64(b));
    let scale = b.iter().fold(0f64, |m, x| m.max(x.abs()));
    a.iter()
        .zip(&b)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale.max(1.0)
}

/// Runs `f` on Vars made from `case.input{i}` in f64 (tolerance 1e-10) and f32 (1e-5); compares
/// the loss with `case.loss` and every input gradient with `case.grad{i}`.
pub fn check(g: &Golden, case: &str, n_inputs: usize, f: impl Fn(&[Tensor]) -> Tensor) {
    for (dtype, tol) in [(DType::F64, 1e-10), (DType::F32, 1e-5)] {
        let vars: Vec<Var> = (0..n_inputs)
            .map(|i| {
                Var::from_tensor(&g[&format!("{case}.input{i}")].to_dtype(dtype).unwrap()).unwrap()
            })
            .collect();
        let inputs: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let loss = f(&inputs);
        let want = &g[&format!("{case}.loss")];
        let d = max_rel(&loss, want);
        assert!(d < tol, "{case} {dtype:?}: loss {loss} vs {want}: {d}");
        let grads = loss.backward().unwrap();
        for (i, v) in vars.iter().enumerate() {
            let got = grads.get(v.as_tensor()).unwrap();
            let d = max_rel(got, &g[&format!("{case}.grad{i}")]);
            assert!(
                d < tol,
                "{case} {dtype:?}: grad of input {i} differs by {d}"
            );
        }
    }
}
