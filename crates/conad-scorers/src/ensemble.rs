//! Test-time-augmentation ensembles: one scorer per augmentation group, each query group scored
//! against its *own* same-augmentation training bank, scores averaged (docs/reference.md §2.3, §2.6, §6.3,
//! §6.8).
//!
//! - Rotation ensemble S_rot: 4 groups (0°, 90°, 180°, 270°), bank g = training features under
//!   rotation g, queries g = test features under rotation g; mean of the 4 scores.
//! - Crop ensemble S_ens: 4 banks (one deterministic view per angle) and 40 query groups
//!   (10 crops × 4 angles), each naming its angle's bank: use
//!   [`TtaEnsemble::score_assigned`]; with the same number of crops per angle, "average over
//!   crops then over angles" equals the plain mean over all 40.
//! - CON2 eq. 16 (A = 40): banks `t_i(X_train)` for i ≤ 20 and `t_i(t_c(X_train))` for i > 20
//!   (§6.3: the context half is compared against the training set in the same context); query
//!   group i = `t_i(x)` or `t_i(t_c(x))`; mean of the 40 scores.
//!
//! Every member returns an anomaly score, so the ensemble's score is the mean anomaly score
//! (for S_NND: the mean of `1 − max cos`, i.e. 1 + CON2's `S_NND`).

use serde::{Deserialize, Serialize};

use crate::embeddings::Embeddings;
use crate::error::{Error, Result};
use crate::traits::{AnomalyScorer, Fit};

/// One fitted scorer per augmentation group; scores are averaged over groups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TtaEnsemble<S> {
    members: Vec<S>,
}

/// Alias: a scorer fitted per group.
pub type GroupedScorer<S> = TtaEnsemble<S>;

impl<S: AnomalyScorer> TtaEnsemble<S> {
    /// Fits `params` once per training bank (bank g = the training features under augmentation
    /// g).
    ///
    /// # Errors
    /// No banks, banks of different dimensions, or any member's fit error (checked per group,
    /// naming the group).
    pub fn fit<P: Fit<Fitted = S>>(params: &P, banks: &[Embeddings<'_>]) -> Result<Self> {
        let first = banks.first().ok_or_else(|| {
            Error::GroupMismatch("a TTA ensemble needs at least one training bank".into())
        })?;
        let mut members = Vec::with_capacity(banks.len());
        for (g, b) in banks.iter().enumerate() {
            let what = format!("group {g} training bank");
            b.check_dim(first.cols(), &what)?;
            b.check_min_rows(1, &what)?;
            b.check_finite(&what)?;
            members.push(params.fit(*b)?);
        }
        Ok(Self { members })
    }

    /// Wraps already fitted members.
    ///
    /// # Errors
    /// No members, or members of different dimensions.
    pub fn from_members(members: Vec<S>) -> Result<Self> {
        let d = members
            .first()
            .ok_or_else(|| Error::GroupMismatch("a TTA ensemble needs at least one member".into()))?
            .dim();
        for (g, m) in members.iter().enumerate() {
            if m.dim() != d {
                return Err(Error::DimensionMismatch {
                    what: format!("ensemble member {g}"),
                    expected: d,
                    got: m.dim(),
                });
            }
        }
        Ok(Self { members })
    }

    /// The fitted members, in group order.
    pub fn members(&self) -> &[S] {
        &self.members
    }

    /// Mean anomaly score over groups: `queries[g]` is scored by member `g`.
    ///
    /// # Shapes
    /// `queries.len() == members().len()`, every `queries[g]` is `m × d` (same m) → `m` scores.
    ///
    /// # Errors
    /// Wrong number of groups, different row counts, or a member's scoring error (naming the
    /// group).
    pub fn score_groups(&self, queries: &[Embeddings<'_>]) -> Result<Vec<f32>> {
        if queries.len() != self.members.len() {
            return Err(Error::GroupMismatch(format!(
                "{} query groups for an ensemble of {} members (one query group per training bank)",
                queries.len(),
                self.members.len()
            )));
        }
        let pairs: Vec<(usize, Embeddings<'_>)> = queries.iter().copied().enumerate().collect();
        self.score_assigned(&pairs)
    }

    /// Mean anomaly score over query groups, each naming the member (bank) it is scored against
    /// — e.g. 10 crops per angle all scored against that angle's bank.
    ///
    /// # Errors
    /// No groups, a member index out of range, different row counts, or a member's error.
    pub fn score_assigned(&self, queries: &[(usize, Embeddings<'_>)]) -> Result<Vec<f32>> {
        let m = queries
            .first()
            .ok_or_else(|| Error::GroupMismatch("no query groups to score".into()))?
            .1
            .rows();
        let mut sum = vec![0.0f64; m];
        for (g, &(member, q)) in queries.iter().enumerate() {
            let scorer = self.members.get(member).ok_or_else(|| {
                Error::GroupMismatch(format!(
                    "query group {g} names member {member} but the ensemble has {}",
                    self.members.len()
                ))
            })?;
            if q.rows() != m {
                return Err(Error::GroupMismatch(format!(
                    "query group {g} has {} rows but group 0 has {m}; every group must hold \
                     the same test images in the same order",
                    q.rows()
                )));
            }
            let what = format!("query group {g}");
            q.check_dim(scorer.dim(), &what)?;
            q.check_finite(&what)?;
            for (s, v) in sum.iter_mut().zip(scorer.score_batch(q)?) {
                *s += f64::from(v);
            }
        }
        let k = queries.len() as f64;
        Ok(sum.into_iter().map(|s| (s / k) as f32).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knn::{KnnParams, KnnScorer};

    #[test]
    fn each_group_uses_its_own_bank_and_scores_are_averaged() {
        // Group 0 bank: e1; group 1 bank: e2. Query (1, 0) in group 0 → anomaly 0; the same
        // query in group 1 → anomaly 1 (orthogonal). Mean 0.5. A wrong pairing would give 1 or 0.
        let b0 = [1.0f32, 0.0];
        let b1 = [0.0f32, 1.0];
        let banks = [
            Embeddings::new(&b0, 1, 2).unwrap(),
            Embeddings::new(&b1, 1, 2).unwrap(),
        ];
        let ens: TtaEnsemble<KnnScorer> = TtaEnsemble::fit(&KnnParams::default(), &banks).unwrap();
        let q = [1.0f32, 0.0, 0.0, 1.0];
        let qe = Embeddings::new(&q, 2, 2).unwrap();
        let s = ens.score_groups(&[qe, qe]).unwrap();
        assert!((s[0] - 0.5).abs() < 1e-6 && (s[1] - 0.5).abs() < 1e-6);
        // Assigned: 3 query groups, two against bank 0 and one against bank 1.
        let q0 = [1.0f32, 0.0];
        let qv = Embeddings::new(&q0, 1, 2).unwrap();
        let a = ens.score_assigned(&[(0, qv), (0, qv), (1, qv)]).unwrap();
        assert!((a[0] - 1.0 / 3.0).abs() < 1e-6);
        assert!(matches!(
            ens.score_groups(&[qe]),
            Err(Error::GroupMismatch(_))
        ));
        assert!(matches!(
            ens.score_assigned(&[(2, qv)]),
            Err(Error::GroupMismatch(_))
        ));
        let bad = [f32::NAN, 0.0];
        let be = Embeddings::new(&bad, 1, 2).unwrap();
        match ens.score_groups(&[qv, be]) {
            Err(Error::NonFinite { what, .. }) => assert_eq!(what, "query group 1"),
            other => panic!("{other:?}"),
        }
    }
}
