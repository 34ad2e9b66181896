//! Aggregation of metrics over classes and seeds (docs/reference.md §4.1, §4.6, §6.23).
//!
//! A [`ResultsTable`] holds one [`Record`] per (dataset, method, normal class, seed) run. The
//! one-class protocol trains one model per normal class, so the headline number of a method is the
//! **mean over classes of the per-class AUROCs** (never an AUROC of scores pooled across classes).
//! Papers differ in the "± std" they print, so every one of them is available, named for what it
//! is:
//!
//! | field | definition | used by |
//! |---|---|---|
//! | [`ClassSummary`] `.auroc.std` | std over seeds of one class | UniCon-HA, CSI, FIRM per-class tables |
//! | [`MethodStats::mean`] | mean over classes of the per-class means over seeds | every paper's "mean" |
//! | [`MethodStats::std_over_seeds`] | std over seeds of the mean over classes | "mean ± std over runs" |
//! | [`MethodStats::mean_class_std`] | mean over classes of the per-class std over seeds | |
//! | [`MethodStats::std_over_classes_and_seeds`] | std of all (class, seed) values jointly | CON2 Table 4 |
//!
//! **Every std is the sample standard deviation (ddof = 1, divisor `n − 1`).** A std of a single
//! value is undefined and reported as `None` (JSON `null`, empty CSV field, no "±" in Markdown),
//! never as 0. [`MethodStats::std_over_seeds`] is also `None` unless every seed covers the same
//! classes (otherwise its class-means average different classes), and
//! [`MethodStats::mean_class_std`] unless every class has at least two seeds.
//!
//! Groups, classes and seeds are listed in order of first appearance in the table.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::metrics::{MetricKind, Metrics};

/// The metrics of one run: one method, trained on one normal class with one seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Dataset name (e.g. `cifar10`, `breastmnist`).
    pub dataset: String,
    /// Method name (e.g. `simclr`, `con2_invert`).
    pub method: String,
    /// The normal class of this one-class run (e.g. `airplane` or `0`).
    pub class: String,
    /// The run's root seed.
    pub seed: u64,
    /// The run's metrics (flattened: the JSON keys are `auroc`, `aupr`, `fpr_at_95_tpr`).
    #[serde(flatten)]
    pub metrics: Metrics,
}

impl Record {
    /// A record from its parts.
    pub fn new(
        dataset: impl Into<String>,
        method: impl Into<String>,
        class: impl Into<String>,
        seed: u64,
        metrics: Metrics,
    ) -> Self {
        Self {
            dataset: dataset.into(),
            method: method.into(),
            class: class.into(),
            seed,
            metrics,
        }
    }

    fn id(&self) -> String {
        format!(
            "{}/{}/{}/seed {}",
            self.dataset, self.method, self.class, self.seed
        )
    }

    fn key(&self) -> (String, String, String, u64) {
        (
            self.dataset.clone(),
            self.method.clone(),
            self.class.clone(),
            self.seed,
        )
    }
}

/// Validated records of many runs; serialises as a JSON array of [`Record`]s.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Record>", into = "Vec<Record>")]
pub struct ResultsTable {
    records: Vec<Record>,
    keys: HashSet<(String, String, String, u64)>,
}

impl TryFrom<Vec<Record>> for ResultsTable {
    type Error = Error;

    fn try_from(records: Vec<Record>) -> Result<Self> {
        let mut table = Self::new();
        for r in records {
            table.push(r)?;
        }
        Ok(table)
    }
}

impl From<ResultsTable> for Vec<Record> {
    fn from(table: ResultsTable) -> Self {
        table.records
    }
}

impl ResultsTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one run.
    ///
    /// # Errors
    /// [`Error::InvalidMetricValue`] if a metric is NaN or outside `[0, 1]`;
    /// [`Error::DuplicateRecord`] if the (dataset, method, class, seed) is already present.
    pub fn push(&mut self, record: Record) -> Result<()> {
        for kind in MetricKind::ALL {
            let value = record.metrics.get(kind);
            if !(0.0..=1.0).contains(&value) {
                return Err(Error::InvalidMetricValue {
                    metric: kind.key(),
                    value,
                    record: record.id(),
                });
            }
        }
        if !self.keys.insert(record.key()) {
            return Err(Error::DuplicateRecord {
                record: record.id(),
            });
        }
        self.records.push(record);
        Ok(())
    }

    /// The records in insertion order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// `true` if there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Per (dataset, method, class): mean ± std over seeds of each metric.
    pub fn class_summaries(&self) -> Vec<ClassSummary> {
        self.groups()
            .iter()
            .flat_map(|g| g.classes.iter().map(|c| c.summary(g)))
            .collect()
    }

    /// Per (dataset, method): mean over classes and the three kinds of std (module docs).
    pub fn method_summaries(&self) -> Vec<MethodSummary> {
        self.groups().iter().map(MethodGroup::summary).collect()
    }

    fn groups(&self) -> Vec<MethodGroup<'_>> {
        let mut groups: Vec<MethodGroup<'_>> = Vec::new();
        for r in &self.records {
            let gi = match groups
                .iter()
                .position(|g| g.dataset == r.dataset && g.method == r.method)
            {
                Some(i) => i,
                None => {
                    groups.push(MethodGroup {
                        dataset: &r.dataset,
                        method: &r.method,
                        classes: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            let g = &mut groups[gi];
            match g.classes.iter_mut().find(|c| c.class == r.class) {
                Some(c) => c.records.push(r),
                None => g.classes.push(ClassGroup {
                    class: &r.class,
                    records: vec![r],
                }),
            }
        }
        groups
    }
}

struct MethodGroup<'a> {
    dataset: &'a str,
    method: &'a str,
    classes: Vec<ClassGroup<'a>>,
}

struct ClassGroup<'a> {
    class: &'a str,
    records: Vec<&'a Record>,
}

impl ClassGroup<'_> {
    fn stats(&self, kind: MetricKind) -> MeanStd {
        let v: Vec<f64> = self.records.iter().map(|r| r.metrics.get(kind)).collect();
        MeanStd::of(&v)
    }

    fn summary(&self, g: &MethodGroup<'_>) -> ClassSummary {
        ClassSummary {
            dataset: g.dataset.to_owned(),
            method: g.method.to_owned(),
            class: self.class.to_owned(),
            seeds: self.records.iter().map(|r| r.seed).collect(),
            auroc: self.stats(MetricKind::Auroc),
            aupr: self.stats(MetricKind::Aupr),
            fpr_at_95_tpr: self.stats(MetricKind::FprAt95Tpr),
        }
    }
}

impl MethodGroup<'_> {
    fn seeds(&self) -> Vec<u64> {
        let mut seeds = Vec::new();
        for r in self.classes.iter().flat_map(|c| &c.records) {
            if !seeds.contains(&r.seed) {
                seeds.push(r.seed);
            }
        }
        seeds
    }

    fn stats(&self, kind: MetricKind, seeds: &[u64]) -> MethodStats {
        let per_class: Vec<MeanStd> = self.classes.iter().map(|c| c.stats(kind)).collect();
        let means: Vec<f64> = per_class.iter().map(|s| s.mean).collect();
        let class_stds: Option<Vec<f64>> = per_class.iter().map(|s| s.std).collect();
        let complete_grid = self.classes.iter().all(|c| c.records.len() == seeds.len());
        let std_over_seeds = if complete_grid {
            let seed_means: Vec<f64> = seeds
                .iter()
                .map(|&s| {
                    let v: Vec<f64> = self
                        .classes
                        .iter()
                        .flat_map(|c| c.records.iter().filter(|r| r.seed == s))
                        .map(|r| r.metrics.get(kind))
                        .collect();
                    mean(&v)
                })
                .collect();
            sample_std(&seed_means)
        } else {
            None
        };
        let all: Vec<f64> = self
            .classes
            .iter()
            .flat_map(|c| c.records.iter().map(|r| r.metrics.get(kind)))
            .collect();
        MethodStats {
            mean: mean(&means),
            std_over_seeds,
            mean_class_std: class_stds.map(|s| mean(&s)),
            std_over_classes_and_seeds: sample_std(&all),
        }
    }

    fn summary(&self) -> MethodSummary {
        let seeds = self.seeds();
        MethodSummary {
            dataset: self.dataset.to_owned(),
            method: self.method.to_owned(),
            n_classes: self.classes.len(),
            n_seeds: seeds.len(),
            n_records: self.classes.iter().map(|c| c.records.len()).sum(),
            auroc: self.stats(MetricKind::Auroc, &seeds),
            aupr: self.stats(MetricKind::Aupr, &seeds),
            fpr_at_95_tpr: self.stats(MetricKind::FprAt95Tpr, &seeds),
        }
    }
}

/// Mean and sample std (ddof = 1; `None` for a single value) of `n` values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (divisor `n − 1`); `None` when `n = 1`.
    pub std: Option<f64>,
    /// Number of values.
    pub n: usize,
}

impl MeanStd {
    /// Mean and sample std of `values` (two-pass, `f64`); `mean` is NaN for an empty slice.
    pub fn of(values: &[f64]) -> Self {
        Self {
            mean: mean(values),
            std: sample_std(values),
            n: values.len(),
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample standard deviation (ddof = 1), `None` for fewer than two values.
fn sample_std(v: &[f64]) -> Option<f64> {
    if v.len() < 2 {
        return None;
    }
    let m = mean(v);
    Some((v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt())
}

/// One (dataset, method, class): each metric's mean ± std over seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassSummary {
    /// Dataset name.
    pub dataset: String,
    /// Method name.
    pub method: String,
    /// Normal class.
    pub class: String,
    /// The seeds of this class's runs, in table order.
    pub seeds: Vec<u64>,
    /// AUROC over seeds.
    pub auroc: MeanStd,
    /// AUPR over seeds.
    pub aupr: MeanStd,
    /// FPR@95%TPR over seeds.
    pub fpr_at_95_tpr: MeanStd,
}

impl ClassSummary {
    /// The statistics of one metric.
    pub const fn get(&self, kind: MetricKind) -> &MeanStd {
        match kind {
            MetricKind::Auroc => &self.auroc,
            MetricKind::Aupr => &self.aupr,
            MetricKind::FprAt95Tpr => &self.fpr_at_95_tpr,
        }
    }
}

/// One metric of one (dataset, method) aggregated over classes and seeds (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodStats {
    /// Mean over classes of the per-class means over seeds (the headline number).
    pub mean: f64,
    /// Sample std over seeds of the per-seed mean over classes; `None` with one seed or when the
    /// seeds do not all cover every class.
    pub std_over_seeds: Option<f64>,
    /// Mean over classes of the per-class sample std over seeds; `None` if a class has one seed.
    pub mean_class_std: Option<f64>,
    /// Sample std of all (class, seed) values jointly (CON2 Table 4); `None` for one record.
    pub std_over_classes_and_seeds: Option<f64>,
}

/// One (dataset, method): every metric aggregated over classes and seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodSummary {
    /// Dataset name.
    pub dataset: String,
    /// Method name.
    pub method: String,
    /// Number of distinct classes.
    pub n_classes: usize,
    /// Number of distinct seeds.
    pub n_seeds: usize,
    /// Number of records (runs).
    pub n_records: usize,
    /// AUROC statistics.
    pub auroc: MethodStats,
    /// AUPR statistics.
    pub aupr: MethodStats,
    /// FPR@95%TPR statistics.
    pub fpr_at_95_tpr: MethodStats,
}

impl MethodSummary {
    /// The statistics of one metric.
    pub const fn get(&self, kind: MetricKind) -> &MethodStats {
        match kind {
            MetricKind::Auroc => &self.auroc,
            MetricKind::Aupr => &self.aupr,
            MetricKind::FprAt95Tpr => &self.fpr_at_95_tpr,
        }
    }
}
