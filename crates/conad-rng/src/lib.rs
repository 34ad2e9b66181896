//! One seeded RNG tree for every random draw in conad.
//!
//! Reproducibility by construction: a run has one root seed; every consumer derives its own
//! node by *name* and *index* (`root.child("augment").index(epoch).index(sample).index(view)`),
//! and draws from that node's own ChaCha8 stream. A node's stream depends only on the path from
//! the root, never on how many draws other consumers made or on the thread that asks for it, so
//! parallel code (rayon) stays bit-identical whatever the thread count.
//!
//! candle's CPU RNG cannot be seeded; conad never uses it. Weight initialisation, augmentation,
//! shuffling, splits, contamination and k-means all go through [`SeedTree`].
//!
//! ```
//! use conad_rng::SeedTree;
//! use rand::Rng;
//! let root = SeedTree::new(42);
//! let a: u32 = root.child("augment").index(3).rng().random();
//! let b: u32 = SeedTree::new(42).child("augment").index(3).rng().random();
//! assert_eq!(a, b);
//! ```

use rand::SeedableRng;
pub use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A node of the seed tree: a 64-bit key derived from the root seed and the path to the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SeedTree {
    key: u64,
}

/// SplitMix64 finaliser: a bijective avalanche mix of 64 bits.
const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 64-bit FNV-1a of `bytes`: stable across platforms and Rust versions (labels of the seed tree,
/// fingerprints of training data).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// FNV-1a over the label bytes, then mixed.
fn hash_label(label: &str) -> u64 {
    mix64(fnv1a64(label.as_bytes()))
}

impl SeedTree {
    /// The root of a run's tree.
    pub const fn new(seed: u64) -> Self {
        Self {
            key: mix64(seed ^ 0x636f_6e61_645f_726e), // "conad_rn"
        }
    }

    /// A named child (e.g. `"init"`, `"augment"`, `"contamination"`).
    pub fn child(&self, label: &str) -> Self {
        self.derive(hash_label(label), 0x9e37_79b9_7f4a_7c15)
    }

    /// An indexed child (epoch, sample index, view, ensemble member, …).
    pub fn index(&self, i: u64) -> Self {
        self.derive(i, 0xd1b5_4a32_d192_ed03)
    }

    fn derive(&self, v: u64, salt: u64) -> Self {
        Self {
            key: mix64(self.key.rotate_left(17) ^ mix64(v.wrapping_add(salt))),
        }
    }

    /// The node's 64-bit key (stable; usable as a seed for third-party code).
    pub const fn key(&self) -> u64 {
        self.key
    }

    /// A fresh ChaCha8 stream owned by this node. Calling it twice gives the same stream.
    pub fn rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::Rng;

    #[test]
    fn same_path_same_stream() {
        let mut r1 = SeedTree::new(7).child("x").index(2).rng();
        let mut r2 = SeedTree::new(7).child("x").index(2).rng();
        let a: Vec<u64> = (0..8).map(|_| r1.random()).collect();
        let b: Vec<u64> = (0..8).map(|_| r2.random()).collect();
        assert_eq!(a, b);
        let mut r3 = SeedTree::new(7).child("x").index(3).rng();
        let c: Vec<u64> = (0..8).map(|_| r3.random()).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn label_and_index_children_differ() {
        let root = SeedTree::new(0);
        assert_ne!(root.child("a"), root.child("b"));
        assert_ne!(root.index(0), root.index(1));
        assert_ne!(root.child("a").index(1), root.index(1).child("a"));
        assert_ne!(SeedTree::new(0), SeedTree::new(1));
    }

    proptest! {
        #[test]
        fn distinct_indices_give_distinct_keys(seed: u64, i in 0u64..1_000_000, j in 0u64..1_000_000) {
            prop_assume!(i != j);
            let t = SeedTree::new(seed).child("augment");
            prop_assert_ne!(t.index(i).key(), t.index(j).key());
        }
    }

    #[test]
    fn streams_are_roughly_uniform() {
        // 10 000 draws in [0,1): the mean of a uniform is 0.5 with std 0.0029; a broken mixer
        // (e.g. constant keys) would fail this by far.
        let t = SeedTree::new(123);
        let mean: f64 = (0..10_000u64)
            .map(|i| t.index(i).rng().random::<f64>())
            .sum::<f64>()
            / 10_000.0;
        assert!((mean - 0.5).abs() < 0.015, "mean {mean}");
    }
}
