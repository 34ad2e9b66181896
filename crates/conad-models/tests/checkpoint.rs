//! Checkpoint save/load round trip, metadata, optimizer state and compatibility errors.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use conad_models::{
    CONAD_VERSION, Checkpoint, CheckpointMeta, Error, MlpHead, MlpHeadConfig, ResNet, ResNetConfig,
    seeded_var_builder,
};
use conad_rng::SeedTree;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("conad-models-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn cfg() -> ResNetConfig {
    ResNetConfig {
        width_multiplier: 0.125,
        ..Default::default()
    }
}

fn trained_model(seed: u64) -> (ResNet, MlpHead, VarMap) {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, SeedTree::new(seed), DType::F32, &Device::Cpu);
    let enc = ResNet::new(&cfg(), vb.pp("encoder")).unwrap();
    let head = MlpHead::new(&MlpHeadConfig::simclr(64), vb.pp("head")).unwrap();
    // One training-mode pass so running statistics are non-trivial.
    let x = Tensor::arange(0f32, 2.0 * 3.0 * 8.0 * 8.0, &Device::Cpu)
        .unwrap()
        .reshape((2, 3, 8, 8))
        .unwrap()
        .affine(0.003, -0.5)
        .unwrap();
    enc.features(&x, true).unwrap();
    (enc, head, varmap)
}

fn meta() -> CheckpointMeta {
    let mut m = CheckpointMeta::new(cfg(), 42, 17);
    m.heads = serde_json::json!({ "projection": MlpHeadConfig::simclr(64) });
    m.preprocessing =
        serde_json::json!({ "size": 32, "mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26] });
    m.training = serde_json::json!({ "method": "simclr", "temperature": 0.5 });
    m
}

#[test]
fn round_trip_preserves_tensors_metadata_and_optimizer_state() {
    let (enc, _, varmap) = trained_model(1);
    let mut ckpt = Checkpoint::from_varmap(&varmap, meta()).unwrap();
    let momentum = Tensor::new(&[1.5f32, -2.0, 3.25], &Device::Cpu).unwrap();
    ckpt.insert_optimizer_state("encoder.conv1.weight.momentum", momentum.clone());
    ckpt.insert_optimizer_state("step", Tensor::new(&[123i64], &Device::Cpu).unwrap());
    let path = tmp("roundtrip.safetensors");
    ckpt.save(&path).unwrap();

    let back = Checkpoint::load(&path, &Device::Cpu).unwrap();
    assert_eq!(back.meta, meta());
    assert_eq!(back.meta.conad_version, CONAD_VERSION);
    back.check_compatible(&cfg()).unwrap();
    Checkpoint::load_checked(&path, &cfg(), &Device::Cpu).unwrap();
    let wider = ResNetConfig {
        width_multiplier: 0.25,
        ..cfg()
    };
    match Checkpoint::load_checked(&path, &wider, &Device::Cpu) {
        Err(e @ Error::ArchitectureMismatch { .. }) => assert_eq!(
            e.to_string(),
            "checkpoint architecture differs from the config: checkpoint has width_multiplier \
             0.125, config asks 0.25"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(back.tensors.len(), ckpt.tensors.len());
    let opt = back.optimizer_state();
    assert_eq!(
        opt["encoder.conv1.weight.momentum"]
            .to_vec1::<f32>()
            .unwrap(),
        [1.5, -2.0, 3.25]
    );
    assert_eq!(opt["step"].to_vec1::<i64>().unwrap(), [123]);
    assert_eq!(back.model_tensors().len(), varmap.all_vars().len());

    // Restoring into a differently seeded model makes it compute the same features.
    let (enc2, _, varmap2) = trained_model(2);
    let x = Tensor::ones((2, 3, 8, 8), DType::F32, &Device::Cpu).unwrap();
    let f1 = enc.features(&x, false).unwrap();
    let before = (enc2.features(&x, false).unwrap() - &f1)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert!(before.to_scalar::<f32>().unwrap() > 1e-3);
    let report = back.restore_varmap(&varmap2).unwrap();
    assert_eq!(report.loaded, varmap2.all_vars().len());
    assert_eq!(
        report.unused,
        ["optimizer.encoder.conv1.weight.momentum", "optimizer.step"]
    );
    let after = (enc2.features(&x, false).unwrap() - &f1)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert_eq!(after.to_scalar::<f32>().unwrap(), 0.0);

    // Inference straight from the checkpoint.
    let enc3 = ResNet::new(
        &back.meta.encoder,
        back.var_builder(DType::F32, &Device::Cpu).pp("encoder"),
    )
    .unwrap();
    let d = (enc3.features(&x, false).unwrap() - &f1)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn snapshot_is_not_affected_by_later_training() {
    let (enc, _, varmap) = trained_model(3);
    let ckpt = Checkpoint::from_varmap(&varmap, meta()).unwrap();
    let before = ckpt.tensors["encoder.bn1.running_mean"]
        .to_vec1::<f32>()
        .unwrap();
    let x = Tensor::ones((2, 3, 8, 8), DType::F32, &Device::Cpu).unwrap();
    enc.features(&x, true).unwrap();
    assert_eq!(
        ckpt.tensors["encoder.bn1.running_mean"]
            .to_vec1::<f32>()
            .unwrap(),
        before
    );
}

#[test]
fn architecture_mismatch_says_what_differs() {
    let ckpt = Checkpoint::new(CheckpointMeta::new(
        ResNetConfig {
            width_multiplier: 0.25,
            in_channels: 1,
            ..Default::default()
        },
        0,
        0,
    ));
    let err = ckpt.check_compatible(&ResNetConfig::default()).unwrap_err();
    match &err {
        Error::ArchitectureMismatch { differences } => assert_eq!(differences.len(), 2),
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("checkpoint has width_multiplier 0.25, config asks 1"),
        "{msg}"
    );
    assert!(
        msg.contains("checkpoint has in_channels 1, config asks 3"),
        "{msg}"
    );
}

#[test]
fn other_version_is_a_typed_error() {
    let (_, _, varmap) = trained_model(4);
    let mut m = meta();
    m.conad_version = "0.0.1-other".into();
    let path = tmp("other_version.safetensors");
    Checkpoint::from_varmap(&varmap, m)
        .unwrap()
        .save(&path)
        .unwrap();
    let ckpt = Checkpoint::load(&path, &Device::Cpu).unwrap();
    match ckpt.check_compatible(&cfg()) {
        Err(Error::VersionMismatch {
            checkpoint,
            current,
        }) => {
            assert_eq!(checkpoint, "0.0.1-other");
            assert_eq!(current, CONAD_VERSION);
        }
        other => panic!("{other:?}"),
    }
    // The architecture check alone passes.
    ckpt.check_architecture(&cfg()).unwrap();
    assert!(matches!(
        Checkpoint::load_checked(&path, &cfg(), &Device::Cpu),
        Err(Error::VersionMismatch { .. })
    ));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn unreadable_files_give_typed_errors() {
    // Missing file.
    assert!(matches!(
        Checkpoint::load(tmp("does_not_exist.safetensors"), &Device::Cpu),
        Err(Error::Io { .. })
    ));
    // Plain weight file (no conad metadata).
    let plain = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/models/resnet18_cifar_w0125.safetensors");
    match Checkpoint::load(&plain, &Device::Cpu) {
        Err(Error::NotACheckpoint { reason, .. }) => assert!(reason.contains("format"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // Truncated checkpoint.
    let (_, _, varmap) = trained_model(5);
    let path = tmp("truncated.safetensors");
    Checkpoint::from_varmap(&varmap, meta())
        .unwrap()
        .save(&path)
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        Checkpoint::load(&path, &Device::Cpu),
        Err(Error::Safetensors { .. })
    ));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn restoring_into_a_bigger_model_reports_missing_tensors() {
    let (_, _, varmap) = trained_model(6);
    let ckpt = Checkpoint::from_varmap(&varmap, meta()).unwrap();
    let other = VarMap::new();
    let vb = seeded_var_builder(&other, SeedTree::new(0), DType::F32, &Device::Cpu);
    ResNet::new(&cfg(), vb.pp("encoder")).unwrap();
    MlpHead::new(&MlpHeadConfig::simclr(64), vb.pp("head")).unwrap();
    MlpHead::new(&MlpHeadConfig::simclr(64), vb.pp("extra")).unwrap();
    match ckpt.restore_varmap(&other) {
        Err(Error::MissingTensors { names, .. }) => {
            assert_eq!(
                names,
                [
                    "extra.fc0.bias",
                    "extra.fc0.weight",
                    "extra.fc1.bias",
                    "extra.fc1.weight"
                ]
            );
        }
        other => panic!("{other:?}"),
    }
}

/// The data section of a safetensors file starts after the 8-byte length and the JSON header.
fn data_start(bytes: &[u8]) -> usize {
    8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

#[test]
fn a_flipped_data_byte_is_detected_anywhere_in_the_tensors() {
    let (_, _, varmap) = trained_model(7);
    let path = tmp("flipped.safetensors");
    Checkpoint::from_varmap(&varmap, meta())
        .unwrap()
        .save(&path)
        .unwrap();
    let good = std::fs::read(&path).unwrap();
    let start = data_start(&good);
    // First, middle and last byte of the tensor data, one bit each (a flip in a float's low
    // mantissa bit still loads as a finite, plausible weight without the hash).
    for at in [start, (start + good.len()) / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        match Checkpoint::load(&path, &Device::Cpu) {
            Err(Error::CorruptCheckpoint { reason, .. }) => {
                assert!(reason.contains("hash"), "{reason}")
            }
            other => panic!("byte {at}: {other:?}"),
        }
    }
    std::fs::write(&path, &good).unwrap();
    Checkpoint::load(&path, &Device::Cpu).unwrap();
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn non_finite_weights_are_refused_with_the_tensor_named() {
    let (_, _, varmap) = trained_model(8);
    let good = Checkpoint::from_varmap(&varmap, meta()).unwrap();
    let path = tmp("nan.safetensors");
    good.save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let name = "head.fc0.bias";
    let shape = good.tensors[name].dims().to_vec();
    let mut values = vec![0.5f32; shape.iter().product()];
    values[3] = f32::NAN;
    values[5] = f32::INFINITY;
    let mut bad = good.clone();
    bad.tensors.insert(
        name.to_string(),
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap(),
    );
    // Saving refuses and keeps the previous checkpoint byte for byte.
    match bad.save(&path) {
        Err(Error::NonFiniteWeights { tensor, count, .. }) => {
            assert_eq!((tensor.as_str(), count), (name, 2))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_file_without_a_content_hash_is_not_a_checkpoint_of_this_format() {
    // Written as conad-checkpoint-v1 did: metadata and format, no hash.
    let t = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
    let meta_json = serde_json::to_string(&meta()).unwrap();
    let md = std::collections::HashMap::from([
        ("conad".to_string(), meta_json),
        ("format".to_string(), "conad-checkpoint-v1".to_string()),
    ]);
    let bytes = safetensors::serialize([("w", &t)], Some(md)).unwrap();
    let path = tmp("v1.safetensors");
    std::fs::write(&path, bytes).unwrap();
    match Checkpoint::load(&path, &Device::Cpu) {
        Err(Error::NotACheckpoint { reason, .. }) => {
            assert!(reason.contains("conad-checkpoint-v1"), "{reason}");
            assert!(
                reason.contains("conad train --overwrite"),
                "the fix: {reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(&path).unwrap();
}
