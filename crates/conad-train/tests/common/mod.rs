//! Shared helpers of the training tests: a tiny synthetic one-class task, a tiny config, run
//! directories and weight comparison.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use conad_data::{Dataset, OneClassTask};
use conad_rng::SeedTree;
use conad_train::{
    EvalConfig, LrSchedule, MethodConfig, ModelConfig, OptimizerConfig, ProgressMode, SgdConfig,
    SimClrConfig, TrainConfig, TrainOptions,
};
use rand::Rng;

/// `n` grey `side × side` images: class 0 (normal) is a bright blob on a dark background at a
/// random place, class 1 (anomaly) uniform noise.
fn images(n: usize, side: usize, anomalous: &[bool], seed: u64) -> Dataset {
    let mut pixels = Vec::with_capacity(n * side * side);
    for (i, &bad) in anomalous.iter().enumerate().take(n) {
        let mut rng = SeedTree::new(seed).index(i as u64).rng();
        let (cy, cx) = (rng.random_range(0..side), rng.random_range(0..side));
        for y in 0..side {
            for x in 0..side {
                let v = if bad {
                    rng.random::<u8>()
                } else {
                    let d2 = (y as f64 - cy as f64).powi(2) + (x as f64 - cx as f64).powi(2);
                    (255.0 * (-d2 / 4.0).exp()) as u8
                };
                pixels.push(v);
            }
        }
    }
    let labels = anomalous.iter().map(|&b| u32::from(b)).collect();
    Dataset::new(
        pixels,
        n,
        (side, side, 1),
        labels,
        vec!["blob".into(), "noise".into()],
    )
    .unwrap()
}

/// 8 normal training images and 6 test images (3 normal, 3 anomalous), 8×8 grey.
pub fn tiny_task() -> OneClassTask {
    let side = 8;
    let train_flags = vec![false; 8];
    let test_flags = vec![false, true, false, true, true, false];
    OneClassTask {
        train: images(8, side, &train_flags, 1),
        train_is_contaminant: train_flags.clone(),
        train_source_indices: (0..8).collect(),
        test: images(6, side, &test_flags, 2),
        test_is_anomaly: test_flags,
        test_source_indices: (0..6).collect(),
        calibration: None,
        calibration_source_indices: Vec::new(),
        normal_classes: vec![0],
        description: "synthetic blobs vs noise".into(),
    }
}

/// SimCLR, ResNet-18 at width 1/16 (feature dim 32), 2 steps per epoch.
pub fn tiny_config(epochs: u64) -> TrainConfig {
    TrainConfig {
        method: MethodConfig::new(SimClrConfig {
            projection_dim: 16,
            ..Default::default()
        }),
        model: ModelConfig {
            width_multiplier: 1.0 / 16.0,
            ..Default::default()
        },
        epochs,
        batch_size: 4,
        drop_last: true,
        optimizer: OptimizerConfig::Sgd(SgdConfig {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-4,
        }),
        schedule: LrSchedule::WarmupCosine {
            lr: 0.05,
            warmup_epochs: 0.5,
            start_lr: 0.01,
            min_lr: 0.0,
        },
        seed: 7,
        checkpoint_every: 1,
        eval_every: 1,
        eval: EvalConfig {
            k: 1,
            batch_size: 5,
            ..Default::default()
        },
        ..Default::default()
    }
}

pub fn quiet() -> TrainOptions {
    TrainOptions {
        progress: ProgressMode::Hidden,
        ..Default::default()
    }
}

/// A fresh, empty directory under the test target's temporary folder.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("conad-train-{name}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every tensor of a safetensors file as raw f32 bits.
pub fn weight_bits(path: &Path) -> BTreeMap<String, Vec<u32>> {
    conad_models::read_safetensors(path, &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(k, t): (String, Tensor)| {
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            (k, v.iter().map(|x| x.to_bits()).collect())
        })
        .collect()
}

/// FNV-1a over names and bits: a short fingerprint of a weight map.
pub fn digest(w: &BTreeMap<String, Vec<u32>>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    for (k, v) in w {
        k.bytes().for_each(&mut eat);
        for x in v {
            x.to_le_bytes().into_iter().for_each(&mut eat);
        }
    }
    h
}
