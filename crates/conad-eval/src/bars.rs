//! Bar charts of summary figures (AUROC per method): one bar per entry with an optional ± error
//! bar (e.g. the std over seeds) and an optional reference marker (e.g. the published figure),
//! PNG or SVG by extension, text in the embedded font of [`crate::plot`].

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::plot::{FONT, ensure_font, render_to_file};

/// One bar.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// Label under the bar.
    pub label: String,
    /// Height.
    pub value: f64,
    /// Half-length of the error bar (drawn as value ± error).
    pub error: Option<f64>,
    /// A reference value drawn as a black diamond (e.g. the paper's figure).
    pub reference: Option<f64>,
}

/// Writes a bar chart to `path` (`.png` or `.svg`) with the y axis over `y_range`.
///
/// # Errors
/// [`Error::NothingToPlot`] for no bars; [`Error::InvalidOption`] for a non-finite value or an
/// empty y range; [`Error::UnsupportedImageFormat`]; [`Error::Plot`].
pub fn plot_bars(
    path: impl AsRef<Path>,
    bars: &[Bar],
    title: &str,
    y_desc: &str,
    y_range: (f64, f64),
) -> Result<()> {
    if bars.is_empty() {
        return Err(Error::NothingToPlot);
    }
    let finite = bars.iter().all(|b| {
        b.value.is_finite()
            && b.error.is_none_or(f64::is_finite)
            && b.reference.is_none_or(f64::is_finite)
    });
    let ordered = y_range.0.is_finite() && y_range.1.is_finite() && y_range.0 < y_range.1;
    if !finite || !ordered {
        return Err(Error::invalid(
            "bars",
            format!("{bars:?}, y range {y_range:?}"),
            "finite values, errors and references, and a non-empty y range",
        ));
    }
    ensure_font()?;
    let width = (160 + 90 * bars.len()).clamp(480, 1600) as u32;
    render_to_file(
        path.as_ref(),
        (width, 480),
        |root| draw(root, bars, title, y_desc, y_range),
        |root| draw(root, bars, title, y_desc, y_range),
    )
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    bars: &[Bar],
    title: &str,
    y_desc: &str,
    (lo, hi): (f64, f64),
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let n = bars.len();
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 20))
        .margin(15)
        .x_label_area_size(70)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..n as f64, lo..hi)
        .map_err(e)?;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 1e-9 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(e)?;
    for (i, b) in bars.iter().enumerate() {
        let x = i as f64;
        let colour = Palette99::pick(i).to_rgba();
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x + 0.15, lo), (x + 0.85, b.value.clamp(lo, hi))],
                colour.filled(),
            )))
            .map_err(e)?;
        if let Some(err) = b.error {
            let (a, z) = ((b.value - err).max(lo), (b.value + err).min(hi));
            chart
                .draw_series(std::iter::once(PathElement::new(
                    [(x + 0.5, a), (x + 0.5, z)],
                    BLACK.stroke_width(2),
                )))
                .map_err(e)?;
        }
        if let Some(r) = b.reference {
            chart
                .draw_series(std::iter::once(TriangleMarker::new(
                    (x + 0.5, r.clamp(lo, hi)),
                    7,
                    BLACK.filled(),
                )))
                .map_err(e)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_rejected_and_a_chart_is_written() {
        let dir = std::env::temp_dir().join(format!("conad-bars-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bar = |v: f64| Bar {
            label: "m".into(),
            value: v,
            error: Some(0.01),
            reference: Some(0.8),
        };
        assert!(matches!(
            plot_bars(dir.join("x.svg"), &[], "t", "AUROC", (0.0, 1.0)),
            Err(Error::NothingToPlot)
        ));
        assert!(matches!(
            plot_bars(
                dir.join("x.svg"),
                &[bar(f64::NAN)],
                "t",
                "AUROC",
                (0.0, 1.0)
            ),
            Err(Error::InvalidConfig { .. })
        ));
        let path = dir.join("bars.svg");
        plot_bars(&path, &[bar(0.7), bar(0.9)], "t", "AUROC", (0.5, 1.0)).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        // Two bars (filled rectangles) and a marker per bar.
        assert!(svg.matches("<rect").count() >= 2, "{svg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
