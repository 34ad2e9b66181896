//! Golden values from scikit-learn 1.2.1.
//!
//! Small cases are inline with their generating snippet; the larger tied data sets come from
//! `fixtures/eval/sklearn_golden.json`, written by `fixtures/eval/make_sklearn_golden.py`
//! (`/usr/bin/python3 fixtures/eval/make_sklearn_golden.py > fixtures/eval/sklearn_golden.json`),
//! which records `roc_auc_score`, `average_precision_score`, `min(fpr[tpr >= 0.95])` and both
//! `roc_curve` variants per case.

use conad_eval::{
    Class, DropIntermediate, Error, Metrics, auroc, average_precision, fpr_at_95_tpr, roc_curve,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    sklearn: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    scores: Vec<f64>,
    labels: Vec<u8>,
    auroc: f64,
    aupr: f64,
    fpr_at_95_tpr: f64,
    roc_full: Roc,
    roc_drop: Roc,
}

#[derive(Deserialize)]
struct Roc {
    fpr: Vec<f64>,
    tpr: Vec<f64>,
    /// Without sklearn's first threshold (`max + 1` in 1.2, `inf` in ≥ 1.3).
    thresholds: Vec<f64>,
}

fn golden() -> Golden {
    serde_json::from_str(include_str!("../../../fixtures/eval/sklearn_golden.json")).unwrap()
}

fn labels(c: &Case) -> Vec<bool> {
    c.labels.iter().map(|&l| l == 1).collect()
}

fn assert_close(name: &str, what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{name}: {what} = {got}, sklearn {want}"
    );
}

fn assert_roc(name: &str, got: &conad_eval::RocCurve, want: &Roc) {
    assert_eq!(got.len(), want.fpr.len(), "{name}: number of ROC points");
    for i in 0..got.len() {
        assert_close(name, "fpr", got.fpr[i], want.fpr[i], 1e-15);
        assert_close(name, "tpr", got.tpr[i], want.tpr[i], 1e-15);
    }
    assert_eq!(got.thresholds[0], f64::INFINITY);
    assert_eq!(
        got.thresholds[1..],
        want.thresholds[..],
        "{name}: thresholds"
    );
}

#[test]
fn fixture_was_made_with_the_pinned_sklearn() {
    assert_eq!(golden().sklearn, "1.2.1");
}

#[test]
fn auroc_matches_roc_auc_score_on_tied_data() {
    for c in golden().cases {
        let y = labels(&c);
        assert_close(
            &c.name,
            "auroc",
            auroc(&c.scores, &y).unwrap(),
            c.auroc,
            1e-12,
        );
    }
}

#[test]
fn aupr_matches_average_precision_score() {
    for c in golden().cases {
        let y = labels(&c);
        assert_close(
            &c.name,
            "aupr",
            average_precision(&c.scores, &y).unwrap(),
            c.aupr,
            1e-12,
        );
    }
}

#[test]
fn fpr_at_95_tpr_matches_the_numpy_convention() {
    for c in golden().cases {
        let y = labels(&c);
        let got = fpr_at_95_tpr(&c.scores, &y).unwrap();
        assert_close(&c.name, "fpr@95", got, c.fpr_at_95_tpr, 1e-15);
    }
}

#[test]
fn roc_points_match_roc_curve() {
    for c in golden().cases {
        let y = labels(&c);
        let full = roc_curve(&c.scores, &y, DropIntermediate::Keep).unwrap();
        assert_roc(&c.name, &full, &c.roc_full);
        let dropped = roc_curve(&c.scores, &y, DropIntermediate::Sklearn).unwrap();
        assert_roc(&c.name, &dropped, &c.roc_drop);
        for curve in [&full, &dropped] {
            assert_close(&c.name, "trapezoid area", curve.auc(), c.auroc, 1e-12);
        }
    }
}

#[test]
fn metrics_in_one_call_match_sklearn_and_the_single_functions() {
    for c in golden().cases {
        let y = labels(&c);
        let m = Metrics::compute(&c.scores, &y).unwrap();
        assert_close(&c.name, "auroc", m.auroc, c.auroc, 1e-12);
        assert_close(&c.name, "aupr", m.aupr, c.aupr, 1e-12);
        assert_close(&c.name, "fpr@95", m.fpr_at_95_tpr, c.fpr_at_95_tpr, 1e-15);
        assert_eq!(m.auroc.to_bits(), auroc(&c.scores, &y).unwrap().to_bits());
        assert_eq!(
            m.aupr.to_bits(),
            average_precision(&c.scores, &y).unwrap().to_bits()
        );
        assert_eq!(
            m.fpr_at_95_tpr.to_bits(),
            fpr_at_95_tpr(&c.scores, &y).unwrap().to_bits()
        );
    }
}

// >>> from sklearn.metrics import roc_auc_score, average_precision_score, roc_curve
// >>> roc_auc_score([1,0,0,1,0,1,0,0,1,0], [0.5]*10)
// 0.5
// >>> roc_auc_score([0,0,0,1,1,1], [0.1,0.2,0.3,0.7,0.8,0.9])
// 1.0
// >>> roc_auc_score([1,1,1,0,0,0], [0.1,0.2,0.3,0.7,0.8,0.9])
// 0.0
// >>> roc_auc_score([1,0], [0.4,0.4])            # one tied anomaly/normal pair
// 0.5
// >>> roc_auc_score([1,1,0,0], [0.9,0.4,0.4,0.1])  # three ordered pairs + one tied pair
// 0.875
#[test]
fn degenerate_cases_inline() {
    let all_tied = auroc(
        &[0.5; 10],
        &[
            true, false, false, true, false, true, false, false, true, false,
        ],
    );
    assert_eq!(all_tied.unwrap(), 0.5);
    let s = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9];
    assert_eq!(
        auroc(&s, &[false, false, false, true, true, true]).unwrap(),
        1.0
    );
    assert_eq!(
        auroc(&s, &[true, true, true, false, false, false]).unwrap(),
        0.0
    );
    assert_eq!(auroc(&[0.4, 0.4], &[true, false]).unwrap(), 0.5);
    assert_eq!(
        auroc(&[0.9, 0.4, 0.4, 0.1], &[true, true, false, false]).unwrap(),
        0.875
    );
}

// >>> average_precision_score([1,1,0,0], [0.9,0.4,0.4,0.1])
// 0.8333333333333333
// >>> fpr, tpr, th = roc_curve([1,1,0,0], [0.9,0.4,0.4,0.1], drop_intermediate=False)
// >>> fpr, tpr, th
// (array([0. , 0. , 0.5, 1. ]), array([0. , 0.5, 1. , 1. ]), array([1.9, 0.9, 0.4, 0.1]))
#[test]
fn small_tied_example_inline() {
    let (s, y) = ([0.9, 0.4, 0.4, 0.1], [true, true, false, false]);
    assert!((average_precision(&s, &y).unwrap() - 0.833_333_333_333_333_3).abs() < 1e-15);
    let roc = roc_curve(&s, &y, DropIntermediate::Keep).unwrap();
    assert_eq!(roc.fpr, [0.0, 0.0, 0.5, 1.0]);
    assert_eq!(roc.tpr, [0.0, 0.5, 1.0, 1.0]);
    assert_eq!(roc.thresholds, [f64::INFINITY, 0.9, 0.4, 0.1]);
    // The tied pair moves the curve diagonally from (0, ½) to (½, 1).
    assert_eq!(fpr_at_95_tpr(&s, &y).unwrap(), 0.5);
}

// >>> roc_auc_score([0,0,0], [0.1,0.2,0.3])
// ValueError: Only one class present in y_true. ROC AUC score is not defined in that case.
#[test]
fn one_class_is_a_typed_error() {
    let err = auroc(&[0.1, 0.2, 0.3], &[false, false, false]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SingleClass {
                present: Class::Normal,
                count: 3
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("normal (label false)"), "{err}");
    let err = Metrics::compute(&[0.1, 0.2], &[true, true]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SingleClass {
                present: Class::Anomaly,
                count: 2
            }
        ),
        "{err:?}"
    );
    for e in [
        average_precision(&[0.1], &[true]).unwrap_err(),
        fpr_at_95_tpr(&[0.1], &[false]).unwrap_err(),
        roc_curve(&[0.1], &[false], DropIntermediate::Keep).unwrap_err(),
    ] {
        assert!(matches!(e, Error::SingleClass { .. }), "{e:?}");
    }
}

#[test]
fn bad_input_errors_carry_the_offending_values() {
    let e = auroc(&[0.1, 0.2, 0.3], &[true, false]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::LengthMismatch {
                scores: 3,
                labels: 2
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("3 scores but 2 labels"), "{e}");
    assert!(matches!(auroc(&[], &[]).unwrap_err(), Error::EmptyScores));
    let e = Metrics::compute(&[0.1, 0.2, f64::NAN], &[true, false, true]).unwrap_err();
    assert!(matches!(e, Error::NonFiniteScore { index: 2, .. }), "{e:?}");
    assert!(e.to_string().contains("index 2 is NaN"), "{e}");
    let e = roc_curve(
        &[f64::NEG_INFINITY, 0.2],
        &[true, false],
        DropIntermediate::Keep,
    );
    assert!(
        matches!(e.unwrap_err(), Error::NonFiniteScore { index: 0, value } if value == f64::NEG_INFINITY)
    );
    let e = conad_eval::fpr_at_tpr(&[0.1, 0.2], &[true, false], 1.5).unwrap_err();
    assert!(matches!(e, Error::InvalidTprLevel(v) if v == 1.5), "{e:?}");
}
