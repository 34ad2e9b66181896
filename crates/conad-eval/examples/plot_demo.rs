//! Writes example figures: `cargo run -p conad-eval --example plot_demo -- OUT_DIR`.
//!
//! Two synthetic scorers on a 1 000-normal / 9 000-anomaly split (the CIFAR-10 one-class test
//! shape): ROC curves of both (PNG + SVG) and the score histogram of the better one (PNG + SVG).

use conad_eval::{
    DropIntermediate, HistogramOptions, PlotOptions, RocSeries, plot_roc, plot_score_histogram,
    roc_curve,
};
use conad_rng::SeedTree;
use rand_distr::{Distribution, Normal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/plot_demo".into()),
    );
    std::fs::create_dir_all(&out)?;
    let mut rng = SeedTree::new(0).child("plot_demo").rng();
    let labels: Vec<bool> = (0..10_000).map(|i| i >= 1_000).collect();
    let scores = |shift: f64,
                  rng: &mut conad_rng::ChaCha8Rng|
     -> Result<Vec<f64>, rand_distr::NormalError> {
        let normal = Normal::new(0.0, 1.0)?;
        let anomaly = Normal::new(shift, 1.2)?;
        Ok(labels
            .iter()
            .map(|&l| {
                if l {
                    anomaly.sample(rng)
                } else {
                    normal.sample(rng)
                }
            })
            .collect())
    };
    let good = scores(1.8, &mut rng)?;
    let weak = scores(0.6, &mut rng)?;
    let roc_good = roc_curve(&good, &labels, DropIntermediate::Collinear)?;
    let roc_weak = roc_curve(&weak, &labels, DropIntermediate::Collinear)?;
    let series = [
        RocSeries {
            label: "strong scorer",
            curve: &roc_good,
        },
        RocSeries {
            label: "weak scorer",
            curve: &roc_weak,
        },
    ];
    let opts = PlotOptions {
        title: Some("Synthetic one-class split".into()),
        ..PlotOptions::default()
    };
    for ext in ["png", "svg"] {
        plot_roc(out.join(format!("roc.{ext}")), &series, &opts)?;
        plot_score_histogram(
            out.join(format!("hist.{ext}")),
            &good,
            &labels,
            &HistogramOptions::default(),
        )?;
    }
    eprintln!(
        "wrote roc.png, roc.svg, hist.png, hist.svg to {}",
        out.display()
    );
    Ok(())
}
