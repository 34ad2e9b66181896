//! AULC (docs/reference.md §4.7): composite Simpson + final trapezoid, checked against scipy.

use conad_eval::{Error, aulc};

const CURVE: [f64; 8] = [0.61, 0.7, 0.74, 0.81, 0.83, 0.86, 0.855, 0.87];

// >>> import numpy as np; from scipy.integrate import simpson          # scipy 1.10.1
// >>> y = np.array([0.61, 0.7, 0.74, 0.81, 0.83, 0.86, 0.855, 0.87])
// >>> for n in (3, 7): x = np.linspace(0, 1, n); print(n, simpson(y[:n], x=x))
// 3 0.6916666666666665
// 7 0.7825
// >>> for n in (4, 8):   # Simpson on the first n-1 points + trapezoid on the last interval
// ...     x = np.linspace(0, 1, n); v = y[:n]
// ...     print(n, simpson(v[:n-1], x=x[:n-1]) + np.trapz(v[-2:], x[-2:]))
// 4 0.7194444444444443
// 8 0.7939285714285714
#[test]
fn matches_scipy_for_odd_and_even_lengths() {
    for (n, want) in [
        (3, 0.691_666_666_666_666_5),
        (7, 0.7825),
        (4, 0.719_444_444_444_444_3),
        (8, 0.793_928_571_428_571_4),
    ] {
        let got = aulc(&CURVE[..n]).unwrap();
        assert!((got - want).abs() < 1e-14, "n = {n}: {got} vs {want}");
    }
}

#[test]
fn small_lengths_and_exactness() {
    assert_eq!(aulc(&[0.8]).unwrap(), 0.8);
    assert_eq!(aulc(&[0.6, 0.8]).unwrap(), 0.7);
    // A linear curve integrates to its mean for any n; a cubic exactly for odd n.
    for n in 2..12 {
        let lin: Vec<f64> = (0..n)
            .map(|i| 0.5 + 0.4 * i as f64 / (n - 1) as f64)
            .collect();
        assert!((aulc(&lin).unwrap() - 0.7).abs() < 1e-14, "n = {n}");
    }
    for n in [3, 5, 9, 201] {
        let cubic: Vec<f64> = (0..n)
            .map(|i| (i as f64 / (n - 1) as f64).powi(3))
            .collect();
        assert!((aulc(&cubic).unwrap() - 0.25).abs() < 1e-14, "n = {n}");
    }
}

#[test]
fn empty_and_non_finite_are_typed_errors() {
    assert!(matches!(aulc(&[]), Err(Error::EmptyLearningCurve)));
    let e = aulc(&[0.5, 0.6, f64::NAN]).unwrap_err();
    assert!(
        matches!(e, Error::NonFiniteCurveValue { index: 2, .. }),
        "{e:?}"
    );
}
