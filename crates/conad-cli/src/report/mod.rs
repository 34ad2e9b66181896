//! The HTML report of `conad score --report`: one self-contained file (inline SVG figures,
//! inline PNG thumbnails, inline CSS, no scripts) that opens offline: the detector and its
//! calibration, the score histogram with the threshold, the top anomalies beside their nearest
//! normal training images, and — when labels are known — ROC / PR curves and metrics.

mod svg;

use crate::png;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use conad_eval::{DropIntermediate, auroc, average_precision, fpr_at_95_tpr, pr_curve, roc_curve};
use conad_train::detector::{Detector, Verdict};

/// One scored image.
#[derive(Clone, Debug)]
pub struct ScoredImage {
    /// The file as given.
    pub path: String,
    /// The detector's verdict.
    pub verdict: Verdict,
    /// Known label (true = anomaly).
    pub label: Option<bool>,
}

/// What the report shows.
pub struct ReportInput<'a> {
    pub detector: &'a Detector,
    pub detector_path: &'a Path,
    pub images: &'a [ScoredImage],
    /// Files that could not be scored, with the reason.
    pub skipped: &'a [(String, String)],
    /// The top anomalies: index into `images` and the prepared pixels.
    pub top: &'a [(usize, Vec<u8>)],
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Metrics at the threshold and over all thresholds, on the labelled images.
struct Quality {
    auroc: f64,
    aupr: f64,
    fpr95: f64,
    tp: usize,
    fp: usize,
    tn: usize,
    fn_: usize,
    roc: Vec<(f64, f64)>,
    pr: Vec<(f64, f64)>,
}

fn quality(scores: &[f64], labels: &[bool], flagged: &[bool]) -> Result<Quality> {
    let roc = roc_curve(scores, labels, DropIntermediate::Sklearn)?;
    let mut tp = 0;
    let mut fp = 0;
    let mut tn = 0;
    let mut fn_ = 0;
    for (&l, &f) in labels.iter().zip(flagged) {
        match (l, f) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (false, false) => tn += 1,
            (true, false) => fn_ += 1,
        }
    }
    Ok(Quality {
        auroc: auroc(scores, labels)?,
        aupr: average_precision(scores, labels)?,
        fpr95: fpr_at_95_tpr(scores, labels)?,
        tp,
        fp,
        tn,
        fn_,
        roc: roc.points().collect(),
        pr: pr_curve(scores, labels)?,
    })
}

fn ratio(a: usize, b: usize) -> String {
    if b == 0 {
        "–".into()
    } else {
        format!("{:.4}", a as f64 / b as f64)
    }
}

/// Renders the report.
///
/// # Errors
/// Thumbnail encoding errors; metric errors cannot occur (labels are checked for both kinds).
pub fn render(input: &ReportInput<'_>) -> Result<String> {
    let d = input.detector;
    let rec = d.record();
    let rule = d.threshold();
    let n = input.images.len();
    let flagged = input.images.iter().filter(|i| i.verdict.is_anomaly).count();
    let mut h = String::new();
    h.push_str(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>conad anomaly \
         report</title><style>body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}\
         table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;\
         text-align:left;vertical-align:middle}th{background:#f2f2f2}img.t{width:96px;height:96px;\
         image-rendering:pixelated;object-fit:contain;background:#000}.a{color:#b3261e;\
         font-weight:bold}.figs svg{margin:4px 12px 4px 0;border:1px solid #eee}\
         code{background:#f4f4f4;padding:1px 4px}</style></head><body>",
    );
    let _ = write!(
        h,
        "<h1>conad anomaly report</h1><p>{n} images scored, <span class=\"a\">{flagged} flagged \
         anomalous</span> ({}), {} skipped.</p>",
        if n == 0 {
            "–".to_string()
        } else {
            format!("{:.1} %", 100.0 * flagged as f64 / n as f64)
        },
        input.skipped.len()
    );
    let p = rec.preprocessing;
    let _ = write!(
        h,
        "<h2 id=\"detector\">Detector</h2><table><tr><th>file</th><td><code>{}</code></td></tr>\
         <tr><th>method / score</th><td>{} / {}</td></tr><tr><th>trained</th><td>{} epochs, \
         seed {}, on {} normal images{}</td></tr><tr><th>input</th><td>{}×{}×{} ({:?} resize)</td>\
         </tr><tr><th>conad</th><td>{}</td></tr></table>",
        esc(&input.detector_path.display().to_string()),
        esc(&rec.method),
        esc(&rec.score),
        rec.epochs,
        rec.seed,
        d.training_images(),
        rec.task
            .as_ref()
            .map(|t| format!(" of <code>{}</code>", esc(&t.data)))
            .unwrap_or_default(),
        p.height,
        p.width,
        p.channels,
        p.resize,
        esc(&rec.versions.get("conad").cloned().unwrap_or_default()),
    );

    // Calibration.
    let labelled: Vec<(f64, bool, bool)> = input
        .images
        .iter()
        .filter_map(|i| i.label.map(|l| (i.verdict.score, l, i.verdict.is_anomaly)))
        .collect();
    let normals: Vec<&(f64, bool, bool)> = labelled.iter().filter(|x| !x.1).collect();
    let _ = write!(
        h,
        "<h2 id=\"calibration\">Calibration</h2><table><tr><th>rule</th><td>{} (anomaly ⇔ score \
         &gt; {:.6})</td></tr><tr><th>calibration images</th><td>{} held-out normal images \
         (scores {:.4} … {:.4})</td></tr><tr><th>guarantee</th><td>{}</td></tr>",
        rule.mode(),
        rule.threshold(),
        d.calibrator().len(),
        d.calibrator().scores().first().copied().unwrap_or(f64::NAN),
        d.calibrator().scores().last().copied().unwrap_or(f64::NAN),
        esc(&rule.guarantee()),
    );
    if !normals.is_empty() {
        let fp = normals.iter().filter(|x| x.2).count();
        let _ = write!(
            h,
            "<tr><th>measured false-positive rate</th><td>{fp} of {} labelled normal images \
             flagged = {}</td></tr>",
            normals.len(),
            ratio(fp, normals.len())
        );
    }
    h.push_str("</table>");

    // Figures.
    let scores: Vec<f64> = input.images.iter().map(|i| i.verdict.score).collect();
    let labels: Vec<Option<bool>> = input.images.iter().map(|i| i.label).collect();
    h.push_str("<h2 id=\"scores\">Score distribution</h2><div class=\"figs\">");
    h.push_str(&svg::histogram(&scores, &labels, rule.threshold(), 40));
    h.push_str("</div>");

    // Top anomalies.
    let _ = write!(
        h,
        "<h2 id=\"top\">Top {} anomalies</h2><table><tr><th>#</th><th>image</th><th>file</th>\
         <th>score</th><th>p-value</th><th>decision</th><th>nearest normal training image</th>\
         <th>similarity</th></tr>",
        input.top.len()
    );
    for (rank, (i, pixels)) in input.top.iter().enumerate() {
        let img = &input.images[*i];
        let v = &img.verdict;
        let uri = png::data_uri(pixels, p.height, p.width, p.channels)?;
        let (near_uri, near_name) = match d.training_thumbnail(v.nearest_normal) {
            Some((px, th, tw, tc)) => (
                png::data_uri(px, th, tw, tc)?,
                d.training_name(v.nearest_normal).unwrap_or("?").to_string(),
            ),
            None => (String::new(), "?".into()),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td><img class=\"t\" src=\"{uri}\" alt=\"scored image\"></td>\
             <td><code>{}</code>{}</td><td>{:.6}</td><td>{:.4}</td><td>{}</td><td><img class=\"t\" \
             src=\"{near_uri}\" alt=\"nearest normal image\"> <code>{}</code></td><td>{:.4}</td></tr>",
            rank + 1,
            esc(&img.path),
            match img.label {
                Some(true) => " (labelled anomalous)",
                Some(false) => " (labelled normal)",
                None => "",
            },
            v.score,
            v.p_value,
            if v.is_anomaly {
                "<span class=\"a\">anomaly</span>"
            } else {
                "normal"
            },
            esc(&near_name),
            v.similarity,
        );
    }
    h.push_str("</table>");

    // Quality on the labelled images.
    let l_scores: Vec<f64> = labelled.iter().map(|x| x.0).collect();
    let l_labels: Vec<bool> = labelled.iter().map(|x| x.1).collect();
    let l_flags: Vec<bool> = labelled.iter().map(|x| x.2).collect();
    if l_labels.iter().any(|&l| l) && l_labels.iter().any(|&l| !l) {
        let q = quality(&l_scores, &l_labels, &l_flags)?;
        let pos = q.tp + q.fn_;
        let neg = q.fp + q.tn;
        let precision = if q.tp + q.fp == 0 {
            "–".to_string()
        } else {
            ratio(q.tp, q.tp + q.fp)
        };
        let f1 = ratio(2 * q.tp, 2 * q.tp + q.fp + q.fn_);
        let _ = write!(
            h,
            "<h2 id=\"quality\">Detection quality ({pos} anomalous, {neg} normal labelled images)\
             </h2><table><tr><th>AUROC</th><td>{:.4}</td><th>AUPR</th><td>{:.4}</td><th>FPR at 95 % \
             TPR</th><td>{:.4}</td></tr><tr><th>at the threshold: TPR</th><td>{}</td><th>FPR</th>\
             <td>{}</td><th>precision / F1</th><td>{precision} / {f1}</td></tr><tr><th>confusion\
             </th><td colspan=\"5\">TP {} · FP {} · TN {} · FN {}</td></tr></table><div class=\"figs\">",
            q.auroc,
            q.aupr,
            q.fpr95,
            ratio(q.tp, pos),
            ratio(q.fp, neg),
            q.tp,
            q.fp,
            q.tn,
            q.fn_
        );
        let op_roc = (q.fp as f64 / neg as f64, q.tp as f64 / pos as f64);
        h.push_str(&svg::curve(
            &format!("ROC (AUROC {:.3})", q.auroc),
            "false-positive rate",
            "true-positive rate",
            &q.roc,
            Some(op_roc),
            true,
        ));
        let op_pr = (q.tp + q.fp > 0)
            .then(|| (q.tp as f64 / pos as f64, q.tp as f64 / (q.tp + q.fp) as f64));
        h.push_str(&svg::curve(
            &format!("Precision–recall (AUPR {:.3})", q.aupr),
            "recall",
            "precision",
            &q.pr,
            op_pr,
            false,
        ));
        h.push_str("</div>");
    }

    if !input.skipped.is_empty() {
        let _ = write!(
            h,
            "<h2 id=\"skipped\">Skipped files ({})</h2><table><tr><th>file</th><th>reason</th></tr>",
            input.skipped.len()
        );
        for (path, why) in input.skipped.iter().take(200) {
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                esc(path),
                esc(why)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>\n");
    Ok(h)
}
