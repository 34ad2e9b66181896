//! KE's test protocols (docs/reference.md §4.4), built deterministically from a seed:
//!
//! - **SAD**: the clean test split.
//! - **SPA**: every test image is replaced by `T(x)` with `T` drawn uniformly from the bank plus
//!   the identity (11 options, §4.4's recommendation) at severity 6, labels unchanged.
//! - **SSA**: the SPA images; a normal-class image whose drawn `T` is meaning-changing for the
//!   class (its semantic negatives) is labelled anomalous.
//!
//! Semantic negatives of a class (the reproducible version of KE's human-corrected lists,
//! §4.4): the `K` transforms of largest `W` in the class's selection, plus rot90 and rot270 for
//! vehicle classes ([`VEHICLE_CLASSES`]).

use conad_augment::{Image, KE_BANK, KeTransform};
use conad_data::{Dataset, OneClassTask};
use conad_rng::SeedTree;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::selection::KeSelection;
use crate::error::Result;

/// Class names treated as vehicles: CIFAR-10's airplane, automobile, ship and truck, and
/// CIFAR-100's superclasses vehicles 1 and 2.
pub const VEHICLE_CLASSES: &[&str] = &[
    "airplane",
    "automobile",
    "ship",
    "truck",
    "vehicles_1",
    "vehicles_2",
];

/// One of KE's protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeProtocol {
    /// Standard: clean test images.
    Sad,
    /// Semantic-preserving augmentation.
    Spa,
    /// Semantic-shift aware.
    Ssa,
}

impl KeProtocol {
    /// `sad`, `spa` or `ssa`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sad => "sad",
            Self::Spa => "spa",
            Self::Ssa => "ssa",
        }
    }
}

/// The semantic negatives of a class: the selection's negatives, plus rot90 and rot270 when
/// `class_name` is a vehicle.
pub fn semantic_negatives(selection: &KeSelection, class_name: &str) -> Vec<KeTransform> {
    let mut out = selection.negatives.clone();
    if VEHICLE_CLASSES.contains(&class_name) {
        for t in [KeTransform::Rot90, KeTransform::Rot270] {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// `task` with its test split under `protocol`: image `i`'s option (identity or one of the ten
/// transforms, uniform) and the transform's own draws come from `seed → "ke-protocol" → i`.
/// For SSA, `negatives` are the normal class's semantic negatives.
///
/// # Errors
/// Transform errors.
pub fn ke_test_task(
    task: &OneClassTask,
    protocol: KeProtocol,
    negatives: &[KeTransform],
    seed: u64,
) -> Result<OneClassTask> {
    if protocol == KeProtocol::Sad {
        return Ok(task.clone());
    }
    let test = &task.test;
    let (h, w, c) = (test.height, test.width, test.channels);
    let per = h * w * c;
    let root = SeedTree::new(seed).child("ke-protocol");
    let drawn: Vec<(Option<KeTransform>, Vec<u8>)> = (0..test.n)
        .into_par_iter()
        .map(|i| -> Result<(Option<KeTransform>, Vec<u8>)> {
            let node = root.index(i as u64);
            let option = node.child("option").rng().random_range(0..=KE_BANK.len());
            let pixels = &test.images[i * per..(i + 1) * per];
            if option == 0 {
                return Ok((None, pixels.to_vec()));
            }
            let t = KE_BANK[option - 1];
            let img = Image::from_u8_hwc(pixels, h, w, c)?;
            let out = t.apply(
                &img,
                conad_augment::ke_bank::TEST_SEVERITY,
                &mut node.child("transform").rng(),
            )?;
            Ok((Some(t), out.to_u8_hwc()))
        })
        .collect::<Result<_>>()?;
    let mut is_anomaly = task.test_is_anomaly.clone();
    if protocol == KeProtocol::Ssa {
        for (flag, (t, _)) in is_anomaly.iter_mut().zip(&drawn) {
            if t.is_some_and(|t| negatives.contains(&t)) {
                *flag = true;
            }
        }
    }
    let relabelled = is_anomaly
        .iter()
        .zip(&task.test_is_anomaly)
        .filter(|(a, b)| a != b)
        .count();
    let images: Vec<u8> = drawn.into_iter().flat_map(|(_, p)| p).collect();
    Ok(OneClassTask {
        test: Dataset::new(
            images,
            test.n,
            (h, w, c),
            test.labels.clone(),
            test.class_names.clone(),
        )?,
        test_is_anomaly: is_anomaly,
        description: format!(
            "{} — KE {} test set (severity 6, seed {seed}{})",
            task.description,
            protocol.name().to_uppercase(),
            if protocol == KeProtocol::Ssa {
                format!(
                    ", {relabelled} normal images relabelled anomalous by {}",
                    negatives
                        .iter()
                        .map(|t| t.name())
                        .collect::<Vec<_>>()
                        .join("/")
                )
            } else {
                String::new()
            }
        ),
        ..task.clone()
    })
}
