//! Knowledge Exposure's data side: transformed sets, the Wasserstein selection and the SAD /
//! SPA / SSA protocols (docs/reference.md §1.7, §4.4).

mod common;

use common::tiny_task;
use conad_augment::{KE_BANK, KeTransform};
use conad_data::Dataset;
use conad_rng::SeedTree;
use conad_scorers::{EmbeddingMatrix, WassersteinMethod};
use conad_train::ke::{
    KeProtocol, KeSelection, KnowledgeEncoder, ke_test_task, select_transforms, semantic_negatives,
    transform_dataset,
};

/// Raw pixels, L2-normalised: an encoder whose distances can be reasoned about.
#[derive(Debug)]
struct PixelEncoder;

impl KnowledgeEncoder for PixelEncoder {
    fn describe(&self) -> String {
        "pixels".into()
    }
    fn embed(&self, images: &Dataset) -> conad_train::Result<EmbeddingMatrix> {
        let d = images.height * images.width * images.channels;
        let mut data: Vec<f32> = images
            .images
            .iter()
            .map(|&v| f32::from(v) / 255.0)
            .collect();
        for row in data.chunks_exact_mut(d) {
            let n = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            row.iter_mut().for_each(|v| *v /= n);
        }
        Ok(EmbeddingMatrix::new(data, images.n, d)?)
    }
}

#[test]
fn transformed_sets_are_reproducible_per_seed() {
    let task = tiny_task();
    let seed = SeedTree::new(3);
    let a = transform_dataset(&task.train, KeTransform::GaussianNoise, 1, &seed).unwrap();
    let b = transform_dataset(&task.train, KeTransform::GaussianNoise, 1, &seed).unwrap();
    let c = transform_dataset(
        &task.train,
        KeTransform::GaussianNoise,
        1,
        &SeedTree::new(4),
    )
    .unwrap();
    assert_eq!(a.images, b.images);
    assert_ne!(a.images, c.images);
    assert_eq!(a.labels, task.train.labels);
    // A flip twice is the identity on the stored uint8 images.
    let f = transform_dataset(&task.train, KeTransform::HorizontalFlip, 1, &seed).unwrap();
    let ff = transform_dataset(&f, KeTransform::HorizontalFlip, 1, &seed).unwrap();
    assert_eq!(ff.images, task.train.images);
}

#[test]
fn selection_ranks_the_bank_and_takes_its_ends() {
    let task = tiny_task();
    let s = select_transforms(
        &PixelEncoder,
        &task.train,
        2,
        1,
        0,
        WassersteinMethod::Exact,
    )
    .unwrap();
    assert_eq!(s.ranking.len(), KE_BANK.len());
    assert!(s.ranking.windows(2).all(|w| w[0].distance <= w[1].distance));
    assert!(s.ranking.iter().all(|r| r.exact && r.distance >= 0.0));
    assert_eq!(
        s.positives,
        vec![s.ranking[0].transform, s.ranking[1].transform]
    );
    assert_eq!(
        s.negatives,
        vec![s.ranking[9].transform, s.ranking[8].transform]
    );
    // Exact W1 of a set with itself is 0, so the distances are W1 of real changes: all > 0.
    assert!(s.ranking[0].distance > 0.0);
    // The selection is a function of the seed.
    let again = select_transforms(
        &PixelEncoder,
        &task.train,
        2,
        1,
        0,
        WassersteinMethod::Exact,
    )
    .unwrap();
    assert_eq!(again, s);
    for k in [0, 6] {
        let e = select_transforms(
            &PixelEncoder,
            &task.train,
            k,
            1,
            0,
            WassersteinMethod::Exact,
        )
        .unwrap_err();
        assert!(e.to_string().contains("ke.k"), "{e}");
    }
}

fn selection(negatives: Vec<KeTransform>) -> KeSelection {
    KeSelection {
        encoder: "test".into(),
        images: 0,
        severity: 1,
        seed: 0,
        ranking: Vec::new(),
        positives: vec![KeTransform::HorizontalFlip],
        negatives,
    }
}

#[test]
fn vehicles_add_the_rotations_to_their_semantic_negatives() {
    let s = selection(vec![KeTransform::Snow, KeTransform::Rot90]);
    assert_eq!(
        semantic_negatives(&s, "cat"),
        vec![KeTransform::Snow, KeTransform::Rot90]
    );
    assert_eq!(
        semantic_negatives(&s, "truck"),
        vec![KeTransform::Snow, KeTransform::Rot90, KeTransform::Rot270]
    );
}

#[test]
fn spa_transforms_the_test_split_and_ssa_relabels_only_meaning_changed_normals() {
    let task = tiny_task();
    let sad = ke_test_task(&task, KeProtocol::Sad, &[], 7).unwrap();
    assert_eq!(sad.test.images, task.test.images);
    let spa = ke_test_task(&task, KeProtocol::Spa, &[], 7).unwrap();
    assert_eq!(spa.test_is_anomaly, task.test_is_anomaly);
    assert_ne!(spa.test.images, task.test.images);
    let again = ke_test_task(&task, KeProtocol::Spa, &[], 7).unwrap();
    assert_eq!(again.test.images, spa.test.images);
    let other = ke_test_task(&task, KeProtocol::Spa, &[], 8).unwrap();
    assert_ne!(other.test.images, spa.test.images);
    assert!(spa.description.contains("SPA"));
    // With every transform meaning-changing, SSA marks every transformed normal image and
    // keeps the untransformed (identity) ones normal; anomalies stay anomalies.
    let ssa = ke_test_task(&task, KeProtocol::Ssa, &KE_BANK, 7).unwrap();
    assert_eq!(ssa.test.images, spa.test.images);
    let per = task.test.height * task.test.width * task.test.channels;
    for i in 0..task.test.n {
        let changed =
            spa.test.images[i * per..(i + 1) * per] != task.test.images[i * per..(i + 1) * per];
        if task.test_is_anomaly[i] {
            assert!(ssa.test_is_anomaly[i]);
        } else if changed {
            assert!(ssa.test_is_anomaly[i], "image {i}");
        }
    }
    // With no semantic negatives SSA is SPA.
    let none = ke_test_task(&task, KeProtocol::Ssa, &[], 7).unwrap();
    assert_eq!(none.test_is_anomaly, task.test_is_anomaly);
}

#[test]
fn clip_knowledge_encoder_embeds_any_image_set_as_unit_rows() {
    // The tiny random CLIP tower of fixtures/models/clip-tiny (xtask/scripts/golden_clip.py):
    // grey 8×8 images are replicated to RGB, resized to the tower's 32 px and normalised.
    let weights = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/models/clip-tiny/model.safetensors");
    let spec = format!("clip:{}", weights.display());
    let encoder = conad_train::ke::load_knowledge_encoder(&spec).unwrap();
    assert!(
        encoder.describe().contains("CLIP"),
        "{}",
        encoder.describe()
    );
    let task = tiny_task();
    let a = encoder.embed(&task.train).unwrap();
    assert_eq!((a.rows(), a.cols()), (task.train.n, 16));
    for i in 0..a.rows() {
        let n: f32 = a.row(i).iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5, "row {i}: norm {n}");
    }
    assert_eq!(a, encoder.embed(&task.train).unwrap());
    // A selection runs on it like on any encoder.
    let s = select_transforms(
        encoder.as_ref(),
        &task.train,
        2,
        1,
        0,
        WassersteinMethod::Exact,
    )
    .unwrap();
    assert!(s.encoder.contains("CLIP"));
    // A missing file is an error naming it.
    let e = conad_train::ke::load_knowledge_encoder("clip:/no/such/model.safetensors")
        .unwrap_err()
        .to_string();
    assert!(e.contains("/no/such/model.safetensors"), "{e}");
}
