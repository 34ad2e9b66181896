//! Reproducibility (docs/reference.md §7, COMMON "same seed → bit-identical whatever the thread count"):
//! the same key gives bit-identical views, and batches computed on a 1-thread and a 2-thread
//! rayon pool are identical.

use conad_augment::normalize::Normalize;
use conad_augment::{AugmentConfig, Augmenter, ImageBatchU8, Shift, ShiftedSample, presets};
use conad_rng::SeedTree;
use rand::Rng;

fn random_u8(n: usize, h: usize, w: usize, c: usize, seed: u64) -> Vec<u8> {
    let mut rng = SeedTree::new(seed).child("test-images").rng();
    (0..n * h * w * c).map(|_| rng.random::<u8>()).collect()
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool")
}

fn configs() -> Vec<(&'static str, AugmentConfig)> {
    vec![
        ("simclr_cifar", presets::simclr_cifar(32)),
        ("simclr_blur", presets::simclr(32, 1.0, true)),
        ("csi", presets::csi(32)),
        ("firm", presets::firm(32, Normalize::cifar10())),
    ]
}

#[test]
fn one_and_two_threads_give_identical_batches() {
    let (n, h, w) = (37, 32, 32);
    let data = random_u8(n, h, w, 3, 1);
    let batch = ImageBatchU8::new(&data, n, h, w, 3).unwrap();
    let indices: Vec<usize> = (0..n).rev().collect();
    for (name, cfg) in configs() {
        let aug = Augmenter::new(&cfg, SeedTree::new(2024)).unwrap();
        let one = pool(1).install(|| {
            aug.augment_batch_shifted(&batch, &indices, 3, 2, &Shift::ROTATIONS)
                .unwrap()
        });
        let two = pool(2).install(|| {
            aug.augment_batch_shifted(&batch, &indices, 3, 2, &Shift::ROTATIONS)
                .unwrap()
        });
        assert_eq!(one.len(), 2 * 4 * n * 3 * 32 * 32);
        // Bit-identical (compare the bit patterns, so NaN could not hide a difference).
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        assert!(
            bits(&one) == bits(&two),
            "{name}: thread count changed the batch"
        );
        // Mixed-shift items (FIRM's pre-expanded data) share the driver; check them too.
        let items: Vec<ShiftedSample> = (0..n)
            .map(|i| ShiftedSample {
                index: i,
                shift: Shift::ROTATIONS[i % 4],
            })
            .collect();
        let one = pool(1).install(|| aug.augment_items(&batch, &items, 1, 2).unwrap());
        let two = pool(2).install(|| aug.augment_items(&batch, &items, 1, 2).unwrap());
        assert!(
            bits(&one) == bits(&two),
            "{name}: thread count changed the items batch"
        );
    }
}

#[test]
fn same_key_same_view_other_key_other_view() {
    let data = random_u8(4, 32, 32, 3, 2);
    let batch = ImageBatchU8::new(&data, 4, 32, 32, 3).unwrap();
    let cfg = presets::simclr_cifar(32);
    let a = Augmenter::new(&cfg, SeedTree::new(7)).unwrap();
    let b = Augmenter::new(&cfg, SeedTree::new(7)).unwrap();
    let c = Augmenter::new(&cfg, SeedTree::new(8)).unwrap();
    let x = a.augment_batch(&batch, &[0, 1, 2, 3], 5, 2).unwrap();
    assert_eq!(x, b.augment_batch(&batch, &[0, 1, 2, 3], 5, 2).unwrap());
    assert_eq!(x, a.augment_batch(&batch, &[0, 1, 2, 3], 5, 2).unwrap());
    assert_ne!(x, c.augment_batch(&batch, &[0, 1, 2, 3], 5, 2).unwrap());
    // Every pixel of the views stays in [0, 1] (no normalisation in this preset).
    assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn grey_fashion_mnist_through_firm_is_reproducible() {
    // 28×28 grey images, replicated to RGB, through FIRM with rotations (docs/reference.md §3.4).
    let data = random_u8(6, 28, 28, 1, 3);
    let batch = ImageBatchU8::new(&data, 6, 28, 28, 1).unwrap();
    let cfg = presets::firm(32, Normalize::fashion_mnist()).with_grey_to_rgb();
    let aug = Augmenter::new(&cfg, SeedTree::new(1)).unwrap();
    let one = pool(1).install(|| {
        aug.augment_batch_shifted(&batch, &[0, 1, 2, 3, 4, 5], 0, 2, &Shift::ROTATIONS)
            .unwrap()
    });
    let two = pool(2).install(|| {
        aug.augment_batch_shifted(&batch, &[0, 1, 2, 3, 4, 5], 0, 2, &Shift::ROTATIONS)
            .unwrap()
    });
    assert_eq!(one, two);
    assert_eq!(one.len(), 2 * 4 * 6 * 3 * 32 * 32);
    assert!(one.iter().all(|v| v.is_finite()));
}
