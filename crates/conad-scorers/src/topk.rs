//! Streaming top-k of similarity values per query row, fed tile by tile (docs/reference.md §2.2).
//!
//! Each query row keeps a small array of its k largest values, sorted in decreasing order
//! (insertion sort; k is small — 1 or 5 in the papers). A separate contiguous array of each row's
//! current k-th value lets a whole bank row of a tile be rejected with one vectorised comparison,
//! so after the first few tiles almost no insertion happens. Only values are kept: the multiset of
//! the k largest values is unique, so results do not depend on tile order or ties.

/// The k largest values of each of `rows` query rows.
#[derive(Clone, Debug)]
pub(crate) struct TopK {
    k: usize,
    rows: usize,
    /// `rows × k`, each row sorted decreasing; unfilled slots are −∞.
    vals: Vec<f32>,
    /// Current k-th (smallest kept) value per row.
    kth: Vec<f32>,
}

impl TopK {
    pub(crate) fn new(rows: usize, k: usize) -> Self {
        assert!(k >= 1);
        Self {
            k,
            rows,
            vals: vec![f32::NEG_INFINITY; rows * k],
            kth: vec![f32::NEG_INFINITY; rows],
        }
    }

    /// The sorted (decreasing) top-k values of row `i`.
    pub(crate) fn row(&self, i: usize) -> &[f32] {
        &self.vals[i * self.k..(i + 1) * self.k]
    }

    fn insert(&mut self, i: usize, v: f32) {
        let row = &mut self.vals[i * self.k..(i + 1) * self.k];
        // Position after all values ≥ v (stable for ties), then shift the tail down by one.
        let mut p = self.k - 1;
        while p > 0 && row[p - 1] < v {
            row[p] = row[p - 1];
            p -= 1;
        }
        row[p] = v;
        self.kth[i] = row[self.k - 1];
    }

    /// Folds a tile whose row `j` holds the similarities of one bank item to every query
    /// (`tile.len() == bank_rows × self.rows`).
    pub(crate) fn update_bank_major(&mut self, tile: &[f32]) {
        let m = self.rows;
        if m == 0 {
            return;
        }
        if self.k == 1 {
            for row in tile.chunks_exact(m) {
                for (best, &v) in self.vals.iter_mut().zip(row) {
                    *best = if v > *best { v } else { *best };
                }
            }
            self.kth.copy_from_slice(&self.vals);
            return;
        }
        for row in tile.chunks_exact(m) {
            // Vectorisable test: does any query accept this bank item?
            let hit = row
                .iter()
                .zip(&self.kth)
                .fold(false, |acc, (&v, &t)| acc | (v > t));
            if hit {
                for (i, &v) in row.iter().enumerate() {
                    if v > self.kth[i] {
                        self.insert(i, v);
                    }
                }
            }
        }
    }

    /// Merges another state over the same rows.
    pub(crate) fn merge(&mut self, other: &TopK) {
        debug_assert_eq!((self.k, self.rows), (other.k, other.rows));
        for i in 0..self.rows {
            for &v in other.row(i) {
                if v > self.kth[i] {
                    self.insert(i, v);
                } else {
                    break; // other's row is sorted: nothing further can enter
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn equals_sorting_whatever_the_tiling(
            vals in proptest::collection::vec(-100i32..100, 1..60),
            k in 1usize..6,
            split in 0usize..60,
        ) {
            // One query row; the bank is split into two tiles merged afterwards.
            let v: Vec<f32> = vals.iter().map(|&x| x as f32 / 7.0).collect();
            let split = split.min(v.len());
            let mut a = TopK::new(1, k);
            a.update_bank_major(&v[..split]);
            let mut b = TopK::new(1, k);
            b.update_bank_major(&v[split..]);
            a.merge(&b);
            let mut sorted = v.clone();
            sorted.sort_by(|x, y| y.partial_cmp(x).unwrap());
            for j in 0..k {
                let expect = sorted.get(j).copied().unwrap_or(f32::NEG_INFINITY);
                prop_assert_eq!(a.row(0)[j], expect);
            }
        }
    }

    #[test]
    fn bank_major_tiles_address_the_right_rows() {
        // Two queries, three bank items: tile[j*2 + i] = sim(bank j, query i).
        let tile = [0.1f32, 0.9, 0.5, 0.2, 0.3, 0.8];
        let mut t = TopK::new(2, 2);
        t.update_bank_major(&tile);
        assert_eq!(t.row(0), &[0.5, 0.3]);
        assert_eq!(t.row(1), &[0.9, 0.8]);
        let mut t1 = TopK::new(2, 1);
        t1.update_bank_major(&tile);
        assert_eq!((t1.row(0), t1.row(1)), (&[0.5f32][..], &[0.9f32][..]));
    }
}
