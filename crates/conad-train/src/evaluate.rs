//! Online evaluation (docs/reference.md §2.2, §4.1, §4.7): embed the normal training images and the test
//! split with the encoder in eval mode, score every test image by kNN cosine against the
//! training bank (k = 1: `1 − max cos`), and compute the test AUROC with anomalies positive.

use conad_scorers::{AnomalyScorer, EmbeddingMatrix, KnnParams};

use crate::error::{Error, Result};

/// Test AUROC of the kNN-cosine anomaly score.
///
/// # Shapes
/// `train`: `n × d`; `test`: `m × d`; `test_is_anomaly`: `m`.
///
/// # Errors
/// [`Error::CountMismatch`] if the label count differs from `m`; scorer errors (`k` larger than
/// the bank, non-finite embeddings); AUROC errors (a test split with one class only).
pub fn knn_auroc(
    train: &EmbeddingMatrix,
    test: &EmbeddingMatrix,
    test_is_anomaly: &[bool],
    k: usize,
) -> Result<f64> {
    if test.rows() != test_is_anomaly.len() {
        return Err(Error::CountMismatch {
            what: "anomaly labels of the test embeddings",
            expected: test.rows(),
            found: test_is_anomaly.len(),
        });
    }
    let scorer = KnnParams::default().k(k).fit_owned(train.clone())?;
    let scores: Vec<f64> = scorer
        .score_batch(test.view())?
        .into_iter()
        .map(f64::from)
        .collect();
    Ok(conad_eval::auroc(&scores, test_is_anomaly)?)
}

/// The collapse statistic ([`crate::std_of_l2_normalized`]) of an embedding matrix.
pub(crate) fn embedding_std(m: &EmbeddingMatrix) -> Option<f64> {
    crate::collapse::std_of_l2_normalized(m.as_slice(), m.rows(), m.cols())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfectly_separated_embeddings_give_auroc_one() {
        // Normal images point along e1, anomalies along e2.
        let train = EmbeddingMatrix::new(vec![1.0, 0.0, 0.9, 0.1], 2, 2).unwrap();
        let test = EmbeddingMatrix::new(vec![1.0, 0.05, 0.0, 1.0, 0.95, 0.0], 3, 2).unwrap();
        let labels = [false, true, false];
        assert_eq!(knn_auroc(&train, &test, &labels, 1).unwrap(), 1.0);
        // Swapping the labels reverses the ranking.
        let flipped = [true, false, true];
        assert_eq!(knn_auroc(&train, &test, &flipped, 1).unwrap(), 0.0);
        assert!(matches!(
            knn_auroc(&train, &test, &labels[..2], 1),
            Err(Error::CountMismatch { .. })
        ));
    }
}
