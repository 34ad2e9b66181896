//! `conad metrics --scores FILE.csv [--json]`: AUROC, AUPR and FPR at 95 % TPR.
//!
//! The CSV has the header `score,label` (columns in either order, extra columns ignored, a UTF-8
//! byte-order mark accepted); label 1 = anomaly, 0 = normal; higher score = more anomalous —
//! the format of `conad eval`'s `scores.csv`. A malformed row stops with an error naming its
//! line number.
use crate::output::outln;
use anyhow::{Context, Result, bail};
use clap::Args;
use conad_eval::Metrics;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct MetricsArgs {
    /// CSV file with header `score,label` (label 1 = anomaly; higher score = more anomalous).
    #[arg(long)]
    pub scores: PathBuf,
    /// Print JSON (`auroc`, `aupr`, `fpr_at_95_tpr`) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &MetricsArgs) -> Result<()> {
    let (scores, labels) = read_scores_csv(&args.scores)?;
    let metrics = Metrics::compute(&scores, &labels)
        .with_context(|| format!("metrics of {}", args.scores.display()))?;
    print_metrics(&metrics, args.json)
}

/// Prints metrics as JSON or as aligned text.
pub fn print_metrics(metrics: &Metrics, json: bool) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string(metrics)?)?;
    } else {
        outln!("auroc          {:.6}", metrics.auroc)?;
        outln!("aupr           {:.6}", metrics.aupr)?;
        outln!("fpr_at_95_tpr  {:.6}", metrics.fpr_at_95_tpr)?;
    }
    Ok(())
}

/// Reads `score,label` rows; returns scores and `is_anomaly` flags.
pub fn read_scores_csv(path: &Path) -> Result<(Vec<f64>, Vec<bool>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read scores file {}", path.display()))?;
    parse_scores_csv(&text, &path.display().to_string())
}

fn parse_scores_csv(text: &str, origin: &str) -> Result<(Vec<f64>, Vec<bool>)> {
    // Spreadsheets write a byte-order mark before the header.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        bail!("{origin}: empty file; expected a header `score,label` and one row per sample");
    };
    let columns: Vec<&str> = header
        .split(',')
        .map(|c| c.trim().trim_matches('"'))
        .collect();
    let find = |name: &str| columns.iter().position(|c| c.eq_ignore_ascii_case(name));
    let (Some(score_col), Some(label_col)) = (find("score"), find("label")) else {
        bail!("{origin}: header is `{header}`; expected columns `score` and `label`");
    };
    let mut scores = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in lines {
        let lineno = i + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != columns.len() {
            bail!(
                "{origin}: line {lineno} has {} fields, the header has {}: `{line}`",
                fields.len(),
                columns.len()
            );
        }
        let score: f64 = fields[score_col].parse().map_err(|_| {
            anyhow::anyhow!(
                "{origin}: line {lineno}: score `{}` is not a number",
                fields[score_col]
            )
        })?;
        if !score.is_finite() {
            bail!("{origin}: line {lineno}: score is {score}; scores must be finite");
        }
        let label = match fields[label_col] {
            "0" | "0.0" => false,
            "1" | "1.0" => true,
            other => {
                bail!("{origin}: line {lineno}: label `{other}` must be 0 (normal) or 1 (anomaly)")
            }
        };
        scores.push(score);
        labels.push(label);
    }
    if scores.is_empty() {
        bail!("{origin}: no data rows after the header");
    }
    Ok((scores, labels))
}

#[cfg(test)]
mod tests {
    use super::parse_scores_csv;

    #[test]
    fn parses_rows_in_any_column_order() {
        let (s, l) = parse_scores_csv("label,score\n1,0.5\n0,-2\n\n1,3e-1\n", "t").unwrap();
        assert_eq!(s, vec![0.5, -2.0, 0.3]);
        assert_eq!(l, vec![true, false, true]);
    }

    #[test]
    fn malformed_rows_name_their_line() {
        let e = parse_scores_csv("score,label\n0.1,0\nabc,1\n", "f.csv").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = parse_scores_csv("score,label\n0.1,2\n", "f.csv").unwrap_err();
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("`2`"),
            "{e}"
        );
        let e = parse_scores_csv("score,label\n0.1\n", "f.csv").unwrap_err();
        assert!(e.to_string().contains("1 fields"), "{e}");
        let e = parse_scores_csv("score,label\nNaN,1\n", "f.csv").unwrap_err();
        assert!(e.to_string().contains("finite"), "{e}");
        assert!(parse_scores_csv("s,l\n1,1\n", "f.csv").is_err());
        assert!(parse_scores_csv("", "f.csv").is_err());
        assert!(parse_scores_csv("score,label\n", "f.csv").is_err());
    }
}
