//! Inline SVG figures of the report: the score histogram with the threshold, ROC and PR curves.
//! Plain SVG written here (no fonts, no scripts), so the report opens offline in any browser.

use std::fmt::Write as _;

const W: f64 = 520.0;
const H: f64 = 300.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 44.0;
/// Colours: normal images, anomalies, unlabelled images, the threshold.
pub const NORMAL: &str = "#3b7dd8";
pub const ANOMALY: &str = "#d8543b";
pub const UNLABELLED: &str = "#8a8a8a";
pub const THRESHOLD: &str = "#111111";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn frame(out: &mut String, title: &str, x_label: &str, y_label: &str) {
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12"><rect width="{W}" height="{H}" fill="#fff"/><text x="{}" y="18" text-anchor="middle" font-size="14">{}</text><text x="{}" y="{}" text-anchor="middle">{}</text><text x="14" y="{}" text-anchor="middle" transform="rotate(-90 14 {})">{}</text><rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="#888"/>"##,
        W / 2.0,
        escape(title),
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 8.0,
        escape(x_label),
        TOP + (H - TOP - BOTTOM) / 2.0,
        TOP + (H - TOP - BOTTOM) / 2.0,
        escape(y_label),
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
}

fn px(x: f64, lo: f64, hi: f64) -> f64 {
    LEFT + (x - lo) / (hi - lo).max(f64::MIN_POSITIVE) * (W - LEFT - RIGHT)
}

fn py(y: f64, top: f64) -> f64 {
    H - BOTTOM - y / top.max(f64::MIN_POSITIVE) * (H - TOP - BOTTOM)
}

fn tick_labels(out: &mut String, lo: f64, hi: f64, y_top: f64, y_fmt: impl Fn(f64) -> String) {
    for k in 0..=4 {
        let x = lo + (hi - lo) * f64::from(k) / 4.0;
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            px(x, lo, hi),
            H - BOTTOM + 16.0,
            format_tick(x)
        );
        let y = y_top * f64::from(k) / 4.0;
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            py(y, y_top) + 4.0,
            y_fmt(y)
        );
    }
}

fn format_tick(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-2 || x.abs() >= 1e4) {
        format!("{x:.2e}")
    } else {
        format!("{x:.3}")
    }
}

/// Stacked histogram of `scores` by label (`None` = unlabelled) with a vertical line at
/// `threshold`.
pub fn histogram(scores: &[f64], labels: &[Option<bool>], threshold: f64, bins: usize) -> String {
    let finite = || scores.iter().copied().filter(|s| s.is_finite());
    let mut lo = finite().fold(f64::INFINITY, f64::min);
    let mut hi = finite().fold(f64::NEG_INFINITY, f64::max);
    if threshold.is_finite() {
        lo = lo.min(threshold);
        hi = hi.max(threshold);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    let bins = bins.max(1);
    let width = (hi - lo) / bins as f64;
    // counts[bin][group], group 0 normal, 1 anomalous, 2 unlabelled.
    let mut counts = vec![[0usize; 3]; bins];
    for (i, &s) in scores.iter().enumerate() {
        if !s.is_finite() {
            continue;
        }
        let b = (((s - lo) / width) as usize).min(bins - 1);
        let group = match labels.get(i).copied().flatten() {
            Some(false) => 0,
            Some(true) => 1,
            None => 2,
        };
        counts[b][group] += 1;
    }
    let top = counts
        .iter()
        .map(|c| c.iter().sum::<usize>())
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.08;
    let mut out = String::new();
    frame(&mut out, "Anomaly scores", "anomaly score", "images");
    tick_labels(&mut out, lo, hi, top, |y| format!("{y:.0}"));
    for (b, bin) in counts.iter().enumerate() {
        let x0 = px(lo + width * b as f64, lo, hi);
        let x1 = px(lo + width * (b + 1) as f64, lo, hi);
        // Stacked: normal at the bottom, then anomalies, then unlabelled images.
        let mut base = 0usize;
        for (group, colour) in [(0, NORMAL), (1, ANOMALY), (2, UNLABELLED)] {
            let c = bin[group];
            if c == 0 {
                continue;
            }
            let (y0, y1) = (py(base as f64, top), py((base + c) as f64, top));
            let _ = write!(
                out,
                r#"<rect x="{x0:.2}" y="{y1:.2}" width="{:.2}" height="{:.2}" fill="{colour}" fill-opacity="0.8"/>"#,
                (x1 - x0 - 0.5).max(0.5),
                y0 - y1
            );
            base += c;
        }
    }
    if threshold.is_finite() {
        let x = px(threshold, lo, hi);
        // The label sits right of the line, or left of it near the right edge.
        let (label_x, anchor) = if x > W - RIGHT - 70.0 {
            (x - 4.0, "end")
        } else {
            (x + 4.0, "start")
        };
        let _ = write!(
            out,
            r#"<line x1="{x:.2}" y1="{TOP}" x2="{x:.2}" y2="{}" stroke="{THRESHOLD}" stroke-width="2" stroke-dasharray="6 3"/><text x="{label_x:.2}" y="{}" font-size="11" text-anchor="{anchor}">threshold</text>"#,
            H - BOTTOM,
            H - BOTTOM - 6.0
        );
    }
    let legend: Vec<(&str, &str)> = [
        ("normal", NORMAL, 0),
        ("anomalous", ANOMALY, 1),
        ("unlabelled", UNLABELLED, 2),
    ]
    .into_iter()
    .filter(|(_, _, g)| counts.iter().any(|c| c[*g] > 0))
    .map(|(n, c, _)| (n, c))
    .collect();
    for (k, (name, colour)) in legend.iter().enumerate() {
        let y = TOP + 14.0 + 16.0 * k as f64;
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{colour}"/><text x="{}" y="{}">{name}</text>"#,
            W - RIGHT - 110.0,
            y - 9.0,
            W - RIGHT - 95.0,
            y
        );
    }
    out.push_str("</svg>");
    out
}

/// A curve through `points` in the unit square (ROC: FPR → TPR; PR: recall → precision), with
/// the operating point of the threshold marked.
pub fn curve(
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
    operating_point: Option<(f64, f64)>,
    diagonal: bool,
) -> String {
    let mut out = String::new();
    frame(&mut out, title, x_label, y_label);
    tick_labels(&mut out, 0.0, 1.0, 1.0, |y| format!("{y:.2}"));
    if diagonal {
        let _ = write!(
            out,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#bbb" stroke-dasharray="4 4"/>"##,
            px(0.0, 0.0, 1.0),
            py(0.0, 1.0),
            px(1.0, 0.0, 1.0),
            py(1.0, 1.0)
        );
    }
    let path: Vec<String> = points
        .iter()
        .map(|&(x, y)| format!("{:.2},{:.2}", px(x, 0.0, 1.0), py(y, 1.0)))
        .collect();
    let _ = write!(
        out,
        r#"<polyline points="{}" fill="none" stroke="{NORMAL}" stroke-width="2"/>"#,
        path.join(" ")
    );
    if let Some((x, y)) = operating_point {
        let _ = write!(
            out,
            r#"<circle cx="{:.2}" cy="{:.2}" r="5" fill="{THRESHOLD}"/><text x="{:.2}" y="{:.2}" font-size="11">threshold</text>"#,
            px(x, 0.0, 1.0),
            py(y, 1.0),
            px(x, 0.0, 1.0) + 7.0,
            py(y, 1.0) + 14.0
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_every_finite_score_once_and_draws_the_threshold() {
        let scores = [0.0, 0.1, 0.1, 0.9, 1.0, f64::NAN];
        let labels = [false, false, false, true, true, true];
        let labels: Vec<Option<bool>> = labels.iter().map(|&l| Some(l)).collect();
        let svg = histogram(&scores, &labels, 0.5, 2);
        // Two bins: [0, .5) holds 3 normal, [.5, 1] holds 2 anomalies; one bar each.
        assert_eq!(
            svg.matches(&format!(r#"fill="{NORMAL}" fill-opacity"#))
                .count(),
            1
        );
        assert_eq!(
            svg.matches(&format!(r#"fill="{ANOMALY}" fill-opacity"#))
                .count(),
            1
        );
        assert!(svg.contains("stroke-dasharray=\"6 3\""));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        let unlabelled = histogram(&scores, &[None; 6], f64::NEG_INFINITY, 2);
        assert!(!unlabelled.contains("threshold</text>"));
        assert_eq!(
            unlabelled
                .matches(&format!(r#"fill="{UNLABELLED}" fill-opacity"#))
                .count(),
            2
        );
        assert!(unlabelled.contains(">unlabelled<") && !unlabelled.contains(">normal<"));
    }
}
