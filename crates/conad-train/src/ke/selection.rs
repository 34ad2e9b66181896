//! KE's per-class transform selection (§3 of the paper; docs/reference.md §1.7, §6.12): embed
//! the normal training images `A` and each transformed set `B_i = T_i(A)` (severity 1) with a
//! knowledge encoder, rank the bank by `W_i = W1(A, B_i)` (L2-normalised embeddings, Euclidean
//! ground cost; exact assignment up to 2000 images, Sinkhorn ε = 0.05 above), take the `K`
//! smallest as positives and the `K` largest as negatives (K = 2).

use conad_augment::{KE_BANK, KeTransform};
use conad_data::Dataset;
use conad_rng::SeedTree;
use conad_scorers::{WassersteinMethod, wasserstein1};
use serde::{Deserialize, Serialize};

use super::encoder::KnowledgeEncoder;
use super::transform_dataset;
use crate::error::{Error, Result};

/// One transform with its distance.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankedTransform {
    /// The transform.
    pub transform: KeTransform,
    /// `W_i`.
    pub distance: f64,
    /// Whether `W_i` was solved exactly (else Sinkhorn).
    pub exact: bool,
}

/// The ranking of the bank for one normal class and the chosen transforms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeSelection {
    /// The knowledge encoder.
    pub encoder: String,
    /// Images the distances were computed on.
    pub images: usize,
    /// Severity of the transformed sets.
    pub severity: u8,
    /// Root seed of the transformed sets.
    pub seed: u64,
    /// Every transform, nearest first.
    pub ranking: Vec<RankedTransform>,
    /// The `K` nearest: positives.
    pub positives: Vec<KeTransform>,
    /// The `K` farthest: negatives.
    pub negatives: Vec<KeTransform>,
}

/// Ranks the bank on `train` (the normal training images) with `encoder`.
///
/// # Errors
/// [`Error::InvalidConfig`] unless `1 ≤ K` and `2K ≤ 10`; transform, embedding and distance
/// errors.
pub fn select_transforms(
    encoder: &dyn KnowledgeEncoder,
    train: &Dataset,
    k: usize,
    severity: u8,
    seed: u64,
    method: WassersteinMethod,
) -> Result<KeSelection> {
    if k == 0 || 2 * k > KE_BANK.len() {
        return Err(Error::invalid(
            "ke.k",
            k,
            format!(
                "K positives and K negatives must come from the {} transforms (1 ≤ K ≤ 5; KE: 2)",
                KE_BANK.len()
            ),
        ));
    }
    let reference = encoder.embed(train)?;
    let root = SeedTree::new(seed).child("ke-select");
    let mut ranking = Vec::with_capacity(KE_BANK.len());
    for t in KE_BANK {
        let transformed = transform_dataset(train, t, severity, &root.child(t.name()))?;
        let b = encoder.embed(&transformed)?;
        let w = wasserstein1(reference.view(), b.view(), method)?;
        ranking.push(RankedTransform {
            transform: t,
            distance: w.distance,
            exact: w.exact,
        });
    }
    ranking.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    Ok(KeSelection {
        encoder: encoder.describe(),
        images: train.n,
        severity,
        seed,
        positives: ranking[..k].iter().map(|r| r.transform).collect(),
        negatives: ranking[ranking.len() - k..]
            .iter()
            .rev()
            .map(|r| r.transform)
            .collect(),
        ranking,
    })
}
