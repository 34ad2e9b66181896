//! Seeded k-means (k-means++ initialisation + Lloyd iterations) for the SSD Mahalanobis score
//! (docs/reference.md §2.10 step 3).
//!
//! SSD clusters with FAISS (random init on a permuted copy, 100 iterations); this crate uses
//! k-means++ seeding (Arthur & Vassilvitskii 2007) from the conad seed tree and Lloyd iterations
//! until the assignment stops changing or `max_iter` is reached. Everything is deterministic:
//! the draws come from `SeedTree::new(seed).child("kmeans++")`, distances use a fixed GEMM tiling,
//! ties go to the lowest cluster index, centroid sums are taken in row order, and an empty
//! cluster is re-seeded with the point farthest from its centroid (lowest index on ties).

use conad_rng::SeedTree;
use rand::Rng;

use crate::embeddings::{Embeddings, dot64};
use crate::similarity::{PreparedBlock, TilePlan, blocked_reduce};

/// Result of a k-means run.
#[derive(Clone, Debug)]
pub(crate) struct KMeans {
    /// `k × d` row-major centroids.
    #[cfg_attr(not(test), allow(dead_code))] // SSD recomputes cluster means in f64
    pub centroids: Vec<f32>,
    /// Cluster of every row.
    pub assignment: Vec<usize>,
}

/// Nearest centroid (and squared distance) of every row of `x`.
fn assign(x: Embeddings<'_>, centroids: &[f32], k: usize) -> Vec<(usize, f32)> {
    let d = x.cols();
    // argmin ‖x − c‖² = argmax (x·c − ½‖c‖²); ‖x‖² is added back for the distance.
    let half_norms: Vec<f32> = centroids
        .chunks_exact(d)
        .map(|c| (0.5 * dot64(c, c)) as f32)
        .collect();
    blocked_reduce(
        x,
        centroids,
        k,
        TilePlan::default(),
        |blk| PreparedBlock {
            operand: blk.as_slice().to_vec(),
            rows: blk.rows(),
            aux: blk
                .iter_rows()
                .map(|r| dot64(r, r) as f32)
                .collect::<Vec<f32>>(),
        },
        |p| vec![(usize::MAX, f32::NEG_INFINITY); p.rows],
        |st, p, tile, c0| {
            for (j, row) in tile.chunks_exact(p.rows).enumerate() {
                let h = half_norms[c0 + j];
                for (best, &t) in st.iter_mut().zip(row) {
                    let v = t - h;
                    if v > best.1 {
                        *best = (c0 + j, v);
                    }
                }
            }
        },
        |acc, later| {
            for (a, b) in acc.iter_mut().zip(later) {
                if b.1 > a.1 {
                    *a = b;
                }
            }
        },
        |st, p, out| {
            for (i, (c, v)) in st.into_iter().enumerate() {
                out.push((c, (p.aux[i] - 2.0 * v).max(0.0)));
            }
        },
    )
}

/// k-means++ seeding followed by Lloyd iterations. Requires `1 ≤ k ≤ x.rows()`.
pub(crate) fn kmeans(x: Embeddings<'_>, k: usize, max_iter: usize, seed: u64) -> KMeans {
    let (n, d) = (x.rows(), x.cols());
    assert!(k >= 1 && k <= n);
    let mut rng = SeedTree::new(seed).child("kmeans++").rng();

    // k-means++: first centre uniform, then D² sampling.
    let mut centroids = Vec::with_capacity(k * d);
    let first = rng.random_range(0..n);
    centroids.extend_from_slice(x.row(first));
    let mut d2: Vec<f64> = x.iter_rows().map(|r| sq_dist(r, &centroids[..d])).collect();
    for _ in 1..k {
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let u = rng.random::<f64>() * total;
            let mut acc = 0.0;
            let mut chosen = n - 1;
            for (i, &w) in d2.iter().enumerate() {
                acc += w;
                if acc > u && w > 0.0 {
                    chosen = i;
                    break;
                }
            }
            chosen
        } else {
            rng.random_range(0..n) // all points coincide with a centre
        };
        let c = x.row(pick).to_vec();
        for (i, r) in x.iter_rows().enumerate() {
            d2[i] = d2[i].min(sq_dist(r, &c));
        }
        centroids.extend_from_slice(&c);
    }

    // Lloyd iterations.
    let mut assignment = vec![usize::MAX; n];
    for _ in 0..max_iter {
        let nearest = assign(x, &centroids, k);
        let mut changed = false;
        for (a, &(c, _)) in assignment.iter_mut().zip(&nearest) {
            if *a != c {
                *a = c;
                changed = true;
            }
        }
        // New centroids (sums in row order, f64).
        let mut sums = vec![0.0f64; k * d];
        let mut counts = vec![0usize; k];
        for (i, r) in x.iter_rows().enumerate() {
            let c = assignment[i];
            counts[c] += 1;
            for (s, &v) in sums[c * d..(c + 1) * d].iter_mut().zip(r) {
                *s += f64::from(v);
            }
        }
        let mut taken = vec![false; n];
        for c in 0..k {
            if counts[c] > 0 {
                for (dst, s) in centroids[c * d..(c + 1) * d]
                    .iter_mut()
                    .zip(&sums[c * d..(c + 1) * d])
                {
                    *dst = (s / counts[c] as f64) as f32;
                }
            } else {
                // Empty cluster: re-seed with the farthest point not used yet.
                let far = (0..n)
                    .filter(|&i| !taken[i])
                    .fold((0usize, -1.0f32), |b, i| {
                        if nearest[i].1 > b.1 {
                            (i, nearest[i].1)
                        } else {
                            b
                        }
                    })
                    .0;
                taken[far] = true;
                centroids[c * d..(c + 1) * d].copy_from_slice(x.row(far));
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // Final assignment consistent with the final centroids.
    let nearest = assign(x, &centroids, k);
    for (a, (c, _)) in assignment.iter_mut().zip(nearest) {
        *a = c;
    }
    KMeans {
        centroids,
        assignment,
    }
}

fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let t = f64::from(x) - f64::from(y);
            t * t
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_well_separated_blobs_deterministically() {
        // Three tight blobs around (0,0), (10,0), (0,10).
        let centres = [(0.0f32, 0.0f32), (10.0, 0.0), (0.0, 10.0)];
        let mut data = Vec::new();
        for i in 0..30 {
            let (cx, cy) = centres[i % 3];
            let jitter = (i as f32 * 0.37).sin() * 0.3;
            data.extend_from_slice(&[cx + jitter, cy - jitter]);
        }
        let x = Embeddings::new(&data, 30, 2).unwrap();
        let a = kmeans(x, 3, 100, 7);
        for i in 0..30 {
            for j in 0..30 {
                assert_eq!(a.assignment[i] == a.assignment[j], i % 3 == j % 3);
            }
        }
        let b = kmeans(x, 3, 100, 7);
        assert_eq!(a.centroids, b.centroids);
        assert_eq!(a.assignment, b.assignment);
        // Each centroid is the mean of its blob.
        for c in 0..3 {
            let members: Vec<usize> = (0..30).filter(|&i| a.assignment[i] == c).collect();
            let mx: f32 = members.iter().map(|&i| data[2 * i]).sum::<f32>() / members.len() as f32;
            assert!((a.centroids[2 * c] - mx).abs() < 1e-5);
        }
    }

    #[test]
    fn k_equals_n_puts_every_point_in_its_own_cluster() {
        let data = [0.0f32, 1.0, 5.0, 9.0];
        let x = Embeddings::new(&data, 4, 1).unwrap();
        let r = kmeans(x, 4, 10, 0);
        let mut seen = r.assignment.clone();
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1, 2, 3]);
    }
}
