//! Figures: files are written in both formats, text is present, bad options are typed errors.

use std::path::PathBuf;

use conad_eval::{
    DropIntermediate, Error, HistogramOptions, ImageFormat, PlotOptions, RocSeries, plot_roc,
    plot_score_histogram, roc_curve, roc_svg, score_histogram_svg,
};

fn data() -> (Vec<f64>, Vec<bool>) {
    let s: Vec<f64> = (0..200)
        .map(|i| f64::from((i * 37) % 101) / 100.0 + if i % 4 == 0 { 0.4 } else { 0.0 })
        .collect();
    let y: Vec<bool> = (0..200).map(|i| i % 4 == 0).collect();
    (s, y)
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("conad-eval-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn roc_figure_in_png_and_svg() {
    let (s, y) = data();
    let curve = roc_curve(&s, &y, DropIntermediate::Collinear).unwrap();
    let series = [RocSeries {
        label: "kNN",
        curve: &curve,
    }];
    let dir = temp_dir("roc");
    for name in ["roc.png", "roc.SVG"] {
        plot_roc(dir.join(name), &series, &PlotOptions::default()).unwrap();
    }
    let png = std::fs::read(dir.join("roc.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 10_000, "PNG of {} bytes", png.len());
    let svg = std::fs::read_to_string(dir.join("roc.SVG")).unwrap();
    assert!(
        svg.contains(&format!("kNN (AUROC {:.3})", curve.auc())),
        "legend missing"
    );
    assert!(svg.contains("ROC curve") && svg.contains("false-positive rate"));
    std::fs::remove_dir_all(dir).unwrap();

    let titled = PlotOptions {
        title: Some("BreastMNIST".into()),
        ..PlotOptions::default()
    };
    assert!(roc_svg(&series, &titled).unwrap().contains("BreastMNIST"));
}

#[test]
fn histogram_figure_in_png_and_svg() {
    let (s, y) = data();
    let dir = temp_dir("hist");
    plot_score_histogram(dir.join("h.png"), &s, &y, &HistogramOptions::default()).unwrap();
    let png = std::fs::read(dir.join("h.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    std::fs::remove_dir_all(dir).unwrap();
    let svg = score_histogram_svg(
        &s,
        &y,
        &HistogramOptions {
            bins: 20,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(svg.contains("normal (n = 150)") && svg.contains("anomaly (n = 50)"));
    assert!(svg.contains("<rect"), "no bars");
}

#[test]
fn bad_plot_input_is_a_typed_error() {
    let (s, y) = data();
    let curve = roc_curve(&s, &y, DropIntermediate::Keep).unwrap();
    let series = [RocSeries {
        label: "x",
        curve: &curve,
    }];
    let e = plot_roc("/tmp/x.jpg", &series, &PlotOptions::default()).unwrap_err();
    assert!(
        matches!(&e, Error::UnsupportedImageFormat { path } if path.ends_with("x.jpg")),
        "{e:?}"
    );
    assert_eq!(
        ImageFormat::from_path("a/b.Png".as_ref()).unwrap(),
        ImageFormat::Png
    );
    assert!(matches!(
        roc_svg(&[], &PlotOptions::default()),
        Err(Error::NothingToPlot)
    ));
    let tiny = PlotOptions {
        width: 10,
        ..PlotOptions::default()
    };
    assert!(matches!(
        roc_svg(&series, &tiny),
        Err(Error::InvalidConfig { field, .. }) if field == "width"
    ));
    let no_bins = HistogramOptions {
        bins: 0,
        ..Default::default()
    };
    assert!(matches!(
        score_histogram_svg(&s, &y, &no_bins),
        Err(Error::InvalidConfig { field, .. }) if field == "bins"
    ));
    let one_class = score_histogram_svg(&s, &vec![false; s.len()], &HistogramOptions::default());
    assert!(matches!(one_class, Err(Error::SingleClass { .. })));
    let e = plot_roc("/nonexistent-dir/roc.png", &series, &PlotOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Plot { .. }), "{e:?}");
}
