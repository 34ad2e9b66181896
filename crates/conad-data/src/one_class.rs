//! The one-class ("one-vs-rest") protocol, with optional contamination (docs/reference.md §4.1–§4.3,
//! §6.19) and stratified subsampling.
//!
//! - Train = the training-split images of the normal class(es) only (docs/reference.md §4.1).
//! - Test = the whole test split; `test_is_anomaly[i]` = the label is not a normal class.
//! - Contamination γ (MIL-Conv, docs/reference.md §4.3 / §6.19): anomalies make up γ of the *final*
//!   training set, `n_anom = round(γ · n_norm / (1 − γ))`, drawn uniformly without replacement
//!   from the other classes' training images. `train_is_contaminant` flags them (diagnostics
//!   only: training must not use it).
//! - Subsampling (optional): stratified per class, applied to the normal training images before
//!   contamination is counted, and to the test split.
//!
//! Seed-tree paths (root = `SeedTree::new(seed)`): contamination draws from
//! `root.child("contamination")`; subsampling of class `c` from
//! `root.child("subsample").child("train"|"test").index(c)`.
//!
//! The training set keeps the data set's order (normal images and contaminants interleaved as in
//! the original split); `train_source_indices` maps each training image back to the split.
//! MedMNIST validation splits are not used (docs/reference.md §4.2).

use crate::dataset::{Dataset, LoadedData};
use crate::error::{Error, Result};
use crate::subsample::{Subsample, sample_without_replacement, stratified_indices};
use conad_rng::SeedTree;
use serde::{Deserialize, Serialize};

/// Parameters of the one-class protocol.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OneClassProtocol {
    /// Normal class label(s). Empty = the data set's conventional normal class
    /// ([`LoadedData::default_normal_classes`]: MedMNIST by name, image folders `good`).
    pub normal_classes: Vec<u32>,
    /// Contamination ratio γ ∈ [0, 1) of the final training set; `None` = clean.
    pub contamination: Option<f64>,
    /// Root seed of the protocol's draws.
    pub seed: u64,
    /// Stratified subsample of the normal training images.
    pub train_subsample: Option<Subsample>,
    /// Stratified subsample of the test split.
    pub test_subsample: Option<Subsample>,
    /// Fraction of the normal training images held out for calibration (conformal
    /// thresholds): drawn without replacement from `root.child("calibration")` after
    /// subsampling and before contamination is counted; `None` = none held out (and not
    /// serialised, so records written before the field existed read the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration_fraction: Option<f64>,
}

/// A one-class task built from a data set.
///
/// # Shapes
/// `train_is_contaminant.len() == train_source_indices.len() == train.n`;
/// `test_is_anomaly.len() == test_source_indices.len() == test.n`.
#[derive(Clone, Debug)]
pub struct OneClassTask {
    /// Training images (normal, plus contaminants if γ > 0), original labels kept.
    pub train: Dataset,
    /// Which training images are contaminants (anomalies) — for diagnostics only.
    pub train_is_contaminant: Vec<bool>,
    /// Index of each training image in the original training split.
    pub train_source_indices: Vec<usize>,
    /// Test images, original labels kept.
    pub test: Dataset,
    /// Which test images are anomalies (label not a normal class).
    pub test_is_anomaly: Vec<bool>,
    /// Index of each test image in the original test split.
    pub test_source_indices: Vec<usize>,
    /// Normal training images held out for calibration (never in `train`), if the protocol
    /// asks for them.
    pub calibration: Option<Dataset>,
    /// Index of each calibration image in the original training split.
    pub calibration_source_indices: Vec<usize>,
    /// The normal classes used (sorted, deduplicated).
    pub normal_classes: Vec<u32>,
    /// A one-line human-readable description.
    pub description: String,
}

impl OneClassTask {
    /// Number of contaminants in the training set.
    pub fn num_contaminants(&self) -> usize {
        self.train_is_contaminant.iter().filter(|&&c| c).count()
    }

    /// Number of anomalous test images.
    pub fn num_test_anomalies(&self) -> usize {
        self.test_is_anomaly.iter().filter(|&&a| a).count()
    }
}

/// `round(γ · n_norm / (1 − γ))`: anomalies needed so that they form γ of the final training set
/// (docs/reference.md §6.19).
pub fn contamination_count(gamma: f64, n_norm: usize) -> usize {
    (gamma * n_norm as f64 / (1.0 - gamma)).round() as usize
}

impl OneClassProtocol {
    /// A clean protocol with the given normal classes and seed 0.
    pub fn new(normal_classes: Vec<u32>) -> Self {
        Self {
            normal_classes,
            ..Self::default()
        }
    }

    /// Checks the parameters that do not depend on the data.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for γ outside [0, 1) or NaN, or an invalid subsample.
    pub fn validate(&self) -> Result<()> {
        if let Some(g) = self.contamination
            && !(0.0..1.0).contains(&g)
        {
            return Err(Error::invalid(
                "contamination",
                g,
                "a ratio γ with 0 ≤ γ < 1 (e.g. 0.05 for 5%)",
            ));
        }
        if let Some(f) = self.calibration_fraction
            && !(f > 0.0 && f < 1.0)
        {
            return Err(Error::invalid(
                "calibration_fraction",
                f,
                "a fraction of the normal training images strictly between 0 and 1 (e.g. 0.2)",
            ));
        }
        for s in [&self.train_subsample, &self.test_subsample]
            .into_iter()
            .flatten()
        {
            s.validate()?;
        }
        Ok(())
    }

    fn resolve_normal_classes(&self, data: &LoadedData) -> Result<Vec<u32>> {
        let names = data.class_names();
        let mut normal = if self.normal_classes.is_empty() {
            data.default_normal_classes.clone().ok_or_else(|| {
                Error::invalid(
                    "normal_classes",
                    "none",
                    format!(
                        "at least one normal class: '{}' has no conventional normal class; \
                         choose from {}",
                        data.name,
                        class_list(names)
                    ),
                )
            })?
        } else {
            self.normal_classes.clone()
        };
        normal.sort_unstable();
        normal.dedup();
        if let Some(&c) = normal.iter().find(|&&c| c as usize >= names.len()) {
            return Err(Error::UnknownClass {
                class: c,
                num_classes: names.len(),
                names: class_list(names),
            });
        }
        Ok(normal)
    }

    /// Builds the task.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (see [`Self::validate`], or no normal class given for a data set
    /// without a conventional one), [`Error::UnknownClass`], [`Error::EmptyNormalClass`],
    /// [`Error::NotEnoughAnomalies`], [`Error::DegenerateTestSet`].
    pub fn build(&self, data: &LoadedData) -> Result<OneClassTask> {
        self.validate()?;
        let normal = self.resolve_normal_classes(data)?;
        let names = data.class_names();
        let is_normal = |l: u32| normal.binary_search(&l).is_ok();
        let root = SeedTree::new(self.seed);
        let train = &data.train;

        let counts = train.class_counts();
        for &c in &normal {
            if counts[c as usize] == 0 {
                return Err(Error::EmptyNormalClass {
                    class: c,
                    name: names[c as usize].clone(),
                    split: "train".into(),
                });
            }
        }
        let mut normal_idx = train.indices_where(is_normal);
        if let Some(sub) = self.train_subsample {
            normal_idx = stratified_indices(
                &train.labels,
                &normal_idx,
                sub,
                root.child("subsample").child("train"),
            );
            for &c in &normal {
                if !normal_idx.iter().any(|&i| train.labels[i] == c) {
                    return Err(Error::EmptyNormalClass {
                        class: c,
                        name: names[c as usize].clone(),
                        split: format!("train (after subsampling {sub:?})"),
                    });
                }
            }
        }
        let mut calibration_source_indices = Vec::new();
        if let Some(f) = self.calibration_fraction {
            let n_cal = (f * normal_idx.len() as f64).round() as usize;
            if n_cal == 0 || n_cal >= normal_idx.len() {
                return Err(Error::invalid(
                    "calibration_fraction",
                    f,
                    format!(
                        "a fraction that leaves at least one of the {} normal training images on \
                         each side (it gives {n_cal} for calibration)",
                        normal_idx.len()
                    ),
                ));
            }
            let mut held: Vec<usize> =
                sample_without_replacement(normal_idx.len(), n_cal, root.child("calibration"))
                    .into_iter()
                    .map(|j| normal_idx[j])
                    .collect();
            held.sort_unstable();
            normal_idx.retain(|i| held.binary_search(i).is_err());
            calibration_source_indices = held;
        }
        let n_norm = normal_idx.len();

        let gamma = self.contamination.unwrap_or(0.0);
        let mut contaminant_idx = Vec::new();
        if gamma > 0.0 {
            let pool = train.indices_where(|l| !is_normal(l));
            let n_anom = contamination_count(gamma, n_norm);
            if n_anom > pool.len() {
                return Err(Error::NotEnoughAnomalies {
                    gamma,
                    requested: n_anom,
                    available: pool.len(),
                });
            }
            contaminant_idx =
                sample_without_replacement(pool.len(), n_anom, root.child("contamination"))
                    .into_iter()
                    .map(|j| pool[j])
                    .collect();
        }
        let mut train_idx: Vec<(usize, bool)> = normal_idx
            .iter()
            .map(|&i| (i, false))
            .chain(contaminant_idx.iter().map(|&i| (i, true)))
            .collect();
        train_idx.sort_unstable();
        let train_source_indices: Vec<usize> = train_idx.iter().map(|&(i, _)| i).collect();
        let train_is_contaminant: Vec<bool> = train_idx.iter().map(|&(_, c)| c).collect();

        let test = &data.test;
        let all: Vec<usize> = (0..test.len()).collect();
        let test_source_indices = match self.test_subsample {
            Some(sub) => stratified_indices(
                &test.labels,
                &all,
                sub,
                root.child("subsample").child("test"),
            ),
            None => all,
        };
        let test_is_anomaly: Vec<bool> = test_source_indices
            .iter()
            .map(|&i| !is_normal(test.labels[i]))
            .collect();
        let anomalies = test_is_anomaly.iter().filter(|&&a| a).count();
        let normals = test_is_anomaly.len() - anomalies;
        // An empty test split (a data set of training images only) is a task without
        // evaluation images; a one-sided one cannot be evaluated and is an error.
        if !test_is_anomaly.is_empty() && (normals == 0 || anomalies == 0) {
            return Err(Error::DegenerateTestSet { normals, anomalies });
        }

        let normal_desc: Vec<String> = normal
            .iter()
            .map(|&c| format!("{c} '{}'", names[c as usize]))
            .collect();
        let contamination_desc = if contaminant_idx.is_empty() {
            String::new()
        } else {
            format!(
                " + {} contaminants (γ = {gamma}, {:.2}% of train)",
                contaminant_idx.len(),
                100.0 * contaminant_idx.len() as f64 / train_idx.len() as f64
            )
        };
        let description = format!(
            "{}: one-class, normal = {{{}}}; train = {n_norm} normal{contamination_desc}{}; test = {normals} normal / \
             {anomalies} anomalous{}",
            data.name,
            normal_desc.join(", "),
            if calibration_source_indices.is_empty() {
                String::new()
            } else {
                format!(
                    "; calibration = {} normal held out",
                    calibration_source_indices.len()
                )
            },
            if self.train_subsample.is_some() || self.test_subsample.is_some() {
                format!(
                    " (subsampled: train {:?}, test {:?}, seed {})",
                    self.train_subsample, self.test_subsample, self.seed
                )
            } else {
                String::new()
            }
        );
        Ok(OneClassTask {
            train: train.select(&train_source_indices),
            train_is_contaminant,
            train_source_indices,
            test: test.select(&test_source_indices),
            test_is_anomaly,
            test_source_indices,
            calibration: (!calibration_source_indices.is_empty())
                .then(|| train.select(&calibration_source_indices)),
            calibration_source_indices,
            normal_classes: normal,
            description,
        })
    }
}

fn class_list(names: &[String]) -> String {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{i} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contamination_counts_follow_6_19() {
        // γ of the final set: 5000 normals at 10% → 556 anomalies (556/5556 = 10.007%).
        assert_eq!(contamination_count(0.10, 5000), 556);
        assert_eq!(contamination_count(0.05, 5000), 263);
        assert_eq!(contamination_count(0.02, 6000), 122);
        assert_eq!(contamination_count(0.0, 6000), 0);
    }
}
