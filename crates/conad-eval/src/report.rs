//! Writers for results: JSON (serde), CSV and Markdown tables, plus a CSV of ROC points.
//!
//! Numbers in JSON and CSV are fractions in `[0, 1]` at full precision (shortest representation
//! that round-trips); Markdown tables show **percent with one decimal** as the papers do
//! (docs/reference.md §4.6). Undefined stds (one value, see [`crate::aggregate`]) are JSON `null`, empty CSV
//! fields, and no "±" in Markdown.

use std::fmt::Write as _;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::aggregate::{ClassSummary, MeanStd, MethodSummary, Record, ResultsTable};
use crate::error::Result;
use crate::metrics::MetricKind;
use crate::roc::RocCurve;

/// Everything about a set of runs: the raw records and both levels of summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultsReport {
    /// One entry per run.
    pub records: Vec<Record>,
    /// Per (dataset, method, class): mean ± std over seeds.
    pub classes: Vec<ClassSummary>,
    /// Per (dataset, method): mean over classes and the stds of [`crate::aggregate`].
    pub methods: Vec<MethodSummary>,
}

impl ResultsReport {
    /// Summarises a table.
    pub fn new(table: &ResultsTable) -> Self {
        Self {
            records: table.records().to_vec(),
            classes: table.class_summaries(),
            methods: table.method_summaries(),
        }
    }

    /// Pretty-printed JSON.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) or [`Error::Json`](crate::Error::Json) from the writer.
    pub fn write_json<W: Write>(&self, mut w: W) -> Result<()> {
        serde_json::to_writer_pretty(&mut w, self)?;
        writeln!(w)?;
        Ok(())
    }

    /// Both Markdown tables (method summary, then per-class AUROC), with the legend.
    pub fn to_markdown(&self) -> String {
        let mut s = markdown_method_summaries(&self.methods);
        s.push('\n');
        s.push_str(&markdown_per_class(
            &self.classes,
            &self.methods,
            MetricKind::Auroc,
        ));
        s
    }
}

/// Quotes a CSV field when it contains a comma, quote or line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv_opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// CSV with header `dataset,method,class,seed,auroc,aupr,fpr_at_95_tpr`, one line per record.
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) from the writer.
pub fn write_records_csv<W: Write>(table: &ResultsTable, mut w: W) -> Result<()> {
    writeln!(w, "dataset,method,class,seed,auroc,aupr,fpr_at_95_tpr")?;
    for r in table.records() {
        writeln!(
            w,
            "{},{},{},{},{},{},{}",
            csv_field(&r.dataset),
            csv_field(&r.method),
            csv_field(&r.class),
            r.seed,
            r.metrics.auroc,
            r.metrics.aupr,
            r.metrics.fpr_at_95_tpr
        )?;
    }
    Ok(())
}

/// CSV of per-class summaries: `dataset,method,class,n_seeds`, then `<metric>_mean,<metric>_std`
/// for each metric (std empty when undefined).
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) from the writer.
pub fn write_class_summaries_csv<W: Write>(classes: &[ClassSummary], mut w: W) -> Result<()> {
    write!(w, "dataset,method,class,n_seeds")?;
    for k in MetricKind::ALL {
        write!(w, ",{0}_mean,{0}_std", k.key())?;
    }
    writeln!(w)?;
    for c in classes {
        write!(
            w,
            "{},{},{},{}",
            csv_field(&c.dataset),
            csv_field(&c.method),
            csv_field(&c.class),
            c.seeds.len()
        )?;
        for k in MetricKind::ALL {
            let s = c.get(k);
            write!(w, ",{},{}", s.mean, csv_opt(s.std))?;
        }
        writeln!(w)?;
    }
    Ok(())
}

/// CSV of per-method summaries: `dataset,method,n_classes,n_seeds,n_records`, then for each metric
/// `<metric>_mean,<metric>_std_over_seeds,<metric>_mean_class_std,<metric>_std_over_classes_and_seeds`.
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) from the writer.
pub fn write_method_summaries_csv<W: Write>(methods: &[MethodSummary], mut w: W) -> Result<()> {
    write!(w, "dataset,method,n_classes,n_seeds,n_records")?;
    for k in MetricKind::ALL {
        write!(
            w,
            ",{0}_mean,{0}_std_over_seeds,{0}_mean_class_std,{0}_std_over_classes_and_seeds",
            k.key()
        )?;
    }
    writeln!(w)?;
    for m in methods {
        write!(
            w,
            "{},{},{},{},{}",
            csv_field(&m.dataset),
            csv_field(&m.method),
            m.n_classes,
            m.n_seeds,
            m.n_records
        )?;
        for k in MetricKind::ALL {
            let s = m.get(k);
            write!(
                w,
                ",{},{},{},{}",
                s.mean,
                csv_opt(s.std_over_seeds),
                csv_opt(s.mean_class_std),
                csv_opt(s.std_over_classes_and_seeds)
            )?;
        }
        writeln!(w)?;
    }
    Ok(())
}

/// CSV of ROC points: header `fpr,tpr,threshold`; the first threshold is written `inf`.
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) from the writer.
pub fn write_roc_csv<W: Write>(curve: &RocCurve, mut w: W) -> Result<()> {
    writeln!(w, "fpr,tpr,threshold")?;
    for ((f, t), th) in curve.points().zip(&curve.thresholds) {
        writeln!(w, "{f},{t},{th}")?;
    }
    Ok(())
}

/// `12.3` (percent, one decimal).
fn pct(v: f64) -> String {
    format!("{:.1}", 100.0 * v)
}

/// `12.3 ± 0.4`, or `12.3` without a std.
fn pct_pm(mean: f64, std: Option<f64>) -> String {
    match std {
        Some(s) => format!("{} ± {}", pct(mean), pct(s)),
        None => pct(mean),
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Markdown table with one row per (dataset, method).
///
/// Columns: `classes`, `seeds`, AUROC as mean ± std over seeds, AUROC's std over classes and
/// seeds jointly, AUPR and FPR@95TPR as mean ± std over seeds; all in percent. A legend line
/// below the table says which std is which.
pub fn markdown_method_summaries(methods: &[MethodSummary]) -> String {
    let mut s = String::new();
    s.push_str(
        "| dataset | method | classes | seeds | AUROC % | AUROC σ classes×seeds | AUPR % | FPR@95TPR % |\n",
    );
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|\n");
    for m in methods {
        let joint = m
            .auroc
            .std_over_classes_and_seeds
            .map(pct)
            .unwrap_or_else(|| "—".into());
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            md_cell(&m.dataset),
            md_cell(&m.method),
            m.n_classes,
            m.n_seeds,
            pct_pm(m.auroc.mean, m.auroc.std_over_seeds),
            joint,
            pct_pm(m.aupr.mean, m.aupr.std_over_seeds),
            pct_pm(m.fpr_at_95_tpr.mean, m.fpr_at_95_tpr.std_over_seeds),
        );
    }
    s.push_str(
        "\nMeans are over classes of the per-class means over seeds. ± = sample std (ddof 1) over \
         seeds of the mean over classes; σ classes×seeds = sample std over all (class, seed) runs \
         jointly (CON2 Table 4); no ± / — = undefined (one value).\n",
    );
    s
}

/// Markdown tables of one metric per class: one table per dataset, one row per class (order of
/// first appearance), one column per method; cells are mean ± std over seeds in percent, and a
/// last row `mean` holds the method's mean over classes ± std over seeds of the class-mean.
pub fn markdown_per_class(
    classes: &[ClassSummary],
    methods: &[MethodSummary],
    kind: MetricKind,
) -> String {
    let mut datasets: Vec<&str> = Vec::new();
    for c in classes {
        if !datasets.contains(&c.dataset.as_str()) {
            datasets.push(&c.dataset);
        }
    }
    let mut s = String::new();
    for ds in datasets {
        let mut method_names: Vec<&str> = Vec::new();
        let mut class_names: Vec<&str> = Vec::new();
        for c in classes.iter().filter(|c| c.dataset == ds) {
            if !method_names.contains(&c.method.as_str()) {
                method_names.push(&c.method);
            }
            if !class_names.contains(&c.class.as_str()) {
                class_names.push(&c.class);
            }
        }
        let _ = writeln!(
            s,
            "**{}**, {} per class (mean ± std over seeds)\n",
            md_cell(ds),
            kind.heading()
        );
        s.push_str("| class |");
        for m in &method_names {
            let _ = write!(s, " {} |", md_cell(m));
        }
        s.push_str("\n|---|");
        s.push_str(&"---:|".repeat(method_names.len()));
        s.push('\n');
        for cl in &class_names {
            let _ = write!(s, "| {} |", md_cell(cl));
            for m in &method_names {
                let cell = classes
                    .iter()
                    .find(|c| c.dataset == ds && c.method == *m && c.class == *cl)
                    .map(|c| {
                        let MeanStd { mean, std, .. } = *c.get(kind);
                        pct_pm(mean, std)
                    })
                    .unwrap_or_default();
                let _ = write!(s, " {cell} |");
            }
            s.push('\n');
        }
        s.push_str("| **mean** |");
        for m in &method_names {
            let cell = methods
                .iter()
                .find(|x| x.dataset == ds && x.method == *m)
                .map(|x| {
                    let st = x.get(kind);
                    pct_pm(st.mean, st.std_over_seeds)
                })
                .unwrap_or_default();
            let _ = write!(s, " {cell} |");
        }
        s.push_str("\n\n");
    }
    s
}
