//! ROC-curve and score-histogram figures, PNG or SVG, with plotters (no system font libraries).
//!
//! Text is drawn with DejaVu Sans embedded in the binary (`assets/DejaVuSans.ttf`, Bitstream Vera
//! licence in `assets/DejaVuSans-LICENSE.txt`) and registered once with
//! `plotters::style::register_font` as the `sans-serif` family, so PNGs render text identically on
//! machines without fontconfig/freetype. SVGs reference `sans-serif`; the embedded font is used to
//! measure text when laying them out.
//!
//! The format follows the file extension (`.png` or `.svg`); `*_svg` functions render to a string.
//!
//! - [`plot_roc`]: one or more ROC curves with the chance diagonal; each legend entry shows the
//!   curve's AUROC (trapezoidal area, equal to the mid-rank AUROC).
//! - [`plot_score_histogram`]: normal and anomaly score histograms overlaid on shared bins.
//!   Each class is normalised to sum to 1 (bar height = fraction of that class in the bin), so a
//!   1 000-vs-9 000 test split stays readable.

use std::path::Path;
use std::sync::OnceLock;

use plotters::backend::{BitMapBackend, SVGBackend};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ranking::validate;
use crate::roc::RocCurve;

static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
pub(crate) const FONT: &str = "sans-serif";
const NORMAL_COLOUR: RGBColor = RGBColor(31, 119, 180);
const ANOMALY_COLOUR: RGBColor = RGBColor(214, 39, 40);

/// Registers the embedded font once per process.
///
/// # Errors
/// [`Error::FontRegistration`] if the embedded bytes are not a valid font (never expected).
pub(crate) fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    if *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok()) {
        Ok(())
    } else {
        Err(Error::FontRegistration)
    }
}

/// Image file format, chosen by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageFormat {
    /// `.png` (RGB bitmap).
    Png,
    /// `.svg` (vector).
    Svg,
}

impl ImageFormat {
    /// The format of `path` from its extension (case-insensitive).
    ///
    /// # Errors
    /// [`Error::UnsupportedImageFormat`] for any other extension.
    pub fn from_path(path: &Path) -> Result<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => Ok(Self::Png),
            Some("svg") => Ok(Self::Svg),
            _ => Err(Error::UnsupportedImageFormat {
                path: path.to_owned(),
            }),
        }
    }
}

/// Size and title of a figure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlotOptions {
    /// Width in pixels (64 ..= 8192); default 800.
    pub width: u32,
    /// Height in pixels (64 ..= 8192); default 600.
    pub height: u32,
    /// Caption; `None` = a default caption for the kind of figure.
    pub title: Option<String>,
}

impl Default for PlotOptions {
    fn default() -> Self {
        Self {
            width: 800,
            height: 600,
            title: None,
        }
    }
}

impl PlotOptions {
    /// Checks the size.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a width or height outside 64 ..= 8192.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("width", self.width), ("height", self.height)] {
            if !(64..=8192).contains(&v) {
                return Err(Error::invalid(
                    name,
                    v,
                    "a size in pixels between 64 and 8192",
                ));
            }
        }
        Ok(())
    }
}

/// Options of [`plot_score_histogram`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistogramOptions {
    /// Size and caption.
    pub plot: PlotOptions,
    /// Number of equal-width bins over `[min score, max score]` (1 ..= 10 000); default 50.
    pub bins: usize,
}

impl Default for HistogramOptions {
    fn default() -> Self {
        Self {
            plot: PlotOptions::default(),
            bins: 50,
        }
    }
}

impl HistogramOptions {
    /// Checks the bin count and the size.
    ///
    /// # Errors
    /// [`Error::InvalidOption`].
    pub fn validate(&self) -> Result<()> {
        if !(1..=10_000).contains(&self.bins) {
            return Err(Error::invalid(
                "bins",
                self.bins,
                "between 1 and 10000 bins",
            ));
        }
        self.plot.validate()
    }
}

/// One labelled ROC curve of a figure.
#[derive(Clone, Copy, Debug)]
pub struct RocSeries<'a> {
    /// Legend label (e.g. the method name); the AUROC is appended.
    pub label: &'a str,
    /// The curve.
    pub curve: &'a RocCurve,
}

fn plot_err(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |message| Error::Plot {
        path: path.to_owned(),
        message,
    }
}

/// Renders with the backend `path`'s extension selects; `draw` gets the root area. The figure
/// is drawn to a temporary file beside `path` and renamed over it once complete (`conad-fs`),
/// so a failed or interrupted plot never leaves a truncated image.
pub(crate) fn render_to_file(
    path: &Path,
    (w, h): (u32, u32),
    draw_png: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
    draw_svg: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<()> {
    ensure_font()?;
    let format = ImageFormat::from_path(path)?;
    let target = conad_fs::AtomicPath::new(path).map_err(|e| plot_err(path)(e.to_string()))?;
    let tmp = target.temp_path();
    match format {
        ImageFormat::Png => {
            let root = BitMapBackend::new(tmp, (w, h)).into_drawing_area();
            draw_png(&root).map_err(plot_err(path))?;
            root.present().map_err(|e| plot_err(path)(e.to_string()))?;
        }
        ImageFormat::Svg => {
            let root = SVGBackend::new(tmp, (w, h)).into_drawing_area();
            draw_svg(&root).map_err(plot_err(path))?;
            root.present().map_err(|e| plot_err(path)(e.to_string()))?;
        }
    }
    target.commit().map_err(|e| plot_err(path)(e.to_string()))
}

fn render_to_svg_string(
    (w, h): (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<String> {
    ensure_font()?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        draw(&root).map_err(plot_err(Path::new("")))?;
        root.present()
            .map_err(|e| plot_err(Path::new(""))(e.to_string()))?;
    }
    Ok(out)
}

/// Writes a ROC figure to `path` (`.png` or `.svg`).
///
/// # Errors
/// [`Error::NothingToPlot`] for no series; [`Error::InvalidOption`] from
/// [`PlotOptions::validate`]; [`Error::UnsupportedImageFormat`]; [`Error::Plot`] if plotters
/// fails (e.g. the directory does not exist).
pub fn plot_roc(
    path: impl AsRef<Path>,
    series: &[RocSeries<'_>],
    opts: &PlotOptions,
) -> Result<()> {
    check_roc_input(series, opts)?;
    render_to_file(
        path.as_ref(),
        (opts.width, opts.height),
        |root| draw_roc(root, series, opts),
        |root| draw_roc(root, series, opts),
    )
}

/// The ROC figure of [`plot_roc`] as an SVG document.
///
/// # Errors
/// As [`plot_roc`], except the file-related ones.
pub fn roc_svg(series: &[RocSeries<'_>], opts: &PlotOptions) -> Result<String> {
    check_roc_input(series, opts)?;
    render_to_svg_string((opts.width, opts.height), |root| {
        draw_roc(root, series, opts)
    })
}

fn check_roc_input(series: &[RocSeries<'_>], opts: &PlotOptions) -> Result<()> {
    opts.validate()?;
    if series.is_empty() {
        return Err(Error::NothingToPlot);
    }
    Ok(())
}

fn draw_roc<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &[RocSeries<'_>],
    opts: &PlotOptions,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let title = opts
        .title
        .as_deref()
        .unwrap_or("ROC curve (anomaly = positive)");
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 22))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("false-positive rate (normals flagged)")
        .y_desc("true-positive rate (anomalies found)")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()
        .map_err(e)?;
    let grey = RGBColor(130, 130, 130);
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            6,
            4,
            grey.stroke_width(1),
        ))
        .map_err(e)?
        .label("chance (AUROC 0.500)")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], grey.stroke_width(1)));
    for (i, s) in series.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(s.curve.points(), colour.stroke_width(2)))
            .map_err(e)?
            .label(format!("{} (AUROC {:.3})", s.label, s.curve.auc()))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()
        .map_err(e)?;
    Ok(())
}

/// Per-class histograms on shared bins.
#[derive(Clone, Debug, PartialEq)]
struct ClassHistograms {
    lo: f64,
    width: f64,
    normal: Vec<f64>,
    anomaly: Vec<f64>,
    n_normal: usize,
    n_anomaly: usize,
}

impl ClassHistograms {
    fn new(scores: &[f64], labels: &[bool], bins: usize) -> Result<Self> {
        let n_anomaly = validate(scores, labels)?;
        let (mut lo, mut hi) = scores
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        if lo == hi {
            lo -= 0.5;
            hi += 0.5;
        }
        let width = (hi - lo) / bins as f64;
        let mut normal = vec![0.0; bins];
        let mut anomaly = vec![0.0; bins];
        for (&x, &l) in scores.iter().zip(labels) {
            let b = (((x - lo) / width) as usize).min(bins - 1);
            if l {
                anomaly[b] += 1.0;
            } else {
                normal[b] += 1.0;
            }
        }
        let n_normal = scores.len() - n_anomaly;
        normal.iter_mut().for_each(|c| *c /= n_normal as f64);
        anomaly.iter_mut().for_each(|c| *c /= n_anomaly as f64);
        Ok(Self {
            lo,
            width,
            normal,
            anomaly,
            n_normal,
            n_anomaly,
        })
    }
}

/// Writes the overlaid normal/anomaly score histograms to `path` (`.png` or `.svg`).
///
/// # Errors
/// The input errors of [`auroc`](crate::auroc) (lengths, NaN/±∞, one class);
/// [`Error::InvalidOption`] from [`HistogramOptions::validate`];
/// [`Error::UnsupportedImageFormat`]; [`Error::Plot`].
pub fn plot_score_histogram(
    path: impl AsRef<Path>,
    scores: &[f64],
    labels: &[bool],
    opts: &HistogramOptions,
) -> Result<()> {
    opts.validate()?;
    let h = ClassHistograms::new(scores, labels, opts.bins)?;
    render_to_file(
        path.as_ref(),
        (opts.plot.width, opts.plot.height),
        |root| draw_histogram(root, &h, &opts.plot),
        |root| draw_histogram(root, &h, &opts.plot),
    )
}

/// The histogram figure of [`plot_score_histogram`] as an SVG document.
///
/// # Errors
/// As [`plot_score_histogram`], except the file-related ones.
pub fn score_histogram_svg(
    scores: &[f64],
    labels: &[bool],
    opts: &HistogramOptions,
) -> Result<String> {
    opts.validate()?;
    let h = ClassHistograms::new(scores, labels, opts.bins)?;
    render_to_svg_string((opts.plot.width, opts.plot.height), |root| {
        draw_histogram(root, &h, &opts.plot)
    })
}

fn draw_histogram<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    h: &ClassHistograms,
    opts: &PlotOptions,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let bins = h.normal.len();
    let hi = h.lo + h.width * bins as f64;
    let top = h
        .normal
        .iter()
        .chain(&h.anomaly)
        .fold(0.0f64, |a, &b| a.max(b))
        * 1.08;
    let title = opts.title.as_deref().unwrap_or("Anomaly-score histogram");
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 22))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(h.lo..hi, 0.0..top)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("anomaly score (higher = more anomalous)")
        .y_desc("fraction of class per bin")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()
        .map_err(e)?;
    let classes = [
        (
            &h.normal,
            NORMAL_COLOUR,
            format!("normal (n = {})", h.n_normal),
        ),
        (
            &h.anomaly,
            ANOMALY_COLOUR,
            format!("anomaly (n = {})", h.n_anomaly),
        ),
    ];
    for (counts, colour, label) in classes {
        let fill = colour.mix(0.45).filled();
        let bars = counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0.0)
            .map(|(i, &c)| {
                let x0 = h.lo + h.width * i as f64;
                Rectangle::new([(x0, 0.0), (x0 + h.width, c)], fill)
            });
        chart
            .draw_series(bars)
            .map_err(e)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], fill));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()
        .map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roc::{DropIntermediate, roc_curve};

    /// Dark pixels (all channels < 100) in rows `y0..y1` of an RGB buffer of width `w`.
    fn dark_pixels(buf: &[u8], w: usize, y0: usize, y1: usize) -> usize {
        buf[3 * w * y0..3 * w * y1]
            .chunks_exact(3)
            .filter(|p| p.iter().all(|&c| c < 100))
            .count()
    }

    #[test]
    fn png_backend_draws_the_caption_with_the_embedded_font() {
        ensure_font().unwrap();
        let curve = roc_curve(
            &[0.9, 0.4, 0.4, 0.1],
            &[true, true, false, false],
            DropIntermediate::Keep,
        )
        .unwrap();
        let (w, h) = (400usize, 300usize);
        let mut buf = vec![0u8; 3 * w * h];
        {
            let root =
                BitMapBackend::with_buffer(&mut buf, (w as u32, h as u32)).into_drawing_area();
            draw_roc(
                &root,
                &[RocSeries {
                    label: "m",
                    curve: &curve,
                }],
                &PlotOptions::default(),
            )
            .unwrap();
            root.present().unwrap();
        }
        // The top band holds only the caption: black glyphs on white, drawn from DejaVu Sans.
        let caption = dark_pixels(&buf, w, 0, 40);
        assert!(caption > 200, "caption has {caption} dark pixels");
        // Without text the same band is blank: draw a caption-less chart for comparison.
        let mut blank = vec![0u8; 3 * w * h];
        {
            let root =
                BitMapBackend::with_buffer(&mut blank, (w as u32, h as u32)).into_drawing_area();
            root.fill(&WHITE).unwrap();
            root.present().unwrap();
        }
        assert_eq!(dark_pixels(&blank, w, 0, 40), 0);
    }

    #[test]
    fn histogram_bins_are_shared_and_normalised_per_class() {
        let s = [0.0, 1.0, 2.0, 3.0, 4.0, 4.0];
        let y = [false, false, false, true, true, true];
        let h = ClassHistograms::new(&s, &y, 4).unwrap();
        assert_eq!((h.lo, h.width), (0.0, 1.0));
        assert_eq!(h.normal, [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 0.0]);
        // 3.0 and both 4.0s (the maximum goes to the last bin).
        assert_eq!(h.anomaly, [0.0, 0.0, 0.0, 1.0]);
        let flat = ClassHistograms::new(&[2.0, 2.0], &[true, false], 3).unwrap();
        assert_eq!((flat.lo, flat.width), (1.5, 1.0 / 3.0));
        assert_eq!(flat.normal, [0.0, 1.0, 0.0]);
    }
}
