//! The CLIP image tower against a reference written from transformers' modeling_clip.py
//! (`xtask/scripts/golden_clip.py`: a tiny randomly initialised tower under Hugging Face's
//! parameter names, float64 reference), its determinism and its typed errors.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use conad_models::{ClipImageEncoder, ClipVisionSpec, Error};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models/clip-tiny")
}

fn golden() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("golden.json")).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn load() -> ClipImageEncoder {
    let spec = ClipVisionSpec::from_hf_config(&dir().join("config.json")).unwrap();
    ClipImageEncoder::load(&dir().join("model.safetensors"), &spec, &Device::Cpu).unwrap()
}

#[test]
fn tiny_tower_matches_the_reference_and_is_deterministic() {
    let g = golden();
    let x = Tensor::from_vec(floats(&g["input"]), (3, 3, 32, 32), &Device::Cpu).unwrap();
    let got: Vec<f32> = load()
        .embed(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let want = floats(&g["output"]);
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = got
        .iter()
        .zip(&want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        err < 1e-4 * scale.max(1.0),
        "max error {err} (scale {scale})"
    );
    let again: Vec<f32> = load()
        .embed(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(
        got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        again.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn config_and_weights_are_checked_before_the_model_is_built() {
    let spec = ClipVisionSpec::from_hf_config(&dir().join("config.json")).unwrap();
    assert_eq!(spec.hidden_size, 32);
    assert_eq!(spec.projection_dim, 16);
    // A missing class embedding is an error naming it (candle-transformers would draw one).
    match ClipImageEncoder::load(&dir().join("missing.safetensors"), &spec, &Device::Cpu) {
        Err(Error::MissingTensors { names, .. }) => {
            assert_eq!(
                names,
                vec!["vision_model.embeddings.class_embedding".to_string()]
            );
        }
        other => panic!("{other:?}"),
    }
    // Weights of another architecture: the first mis-shaped tensor is named.
    let wrong = ClipVisionSpec {
        patch_size: 16,
        ..spec.clone()
    };
    match ClipImageEncoder::load(&dir().join("model.safetensors"), &wrong, &Device::Cpu) {
        Err(Error::TensorShape { name, .. }) => assert!(name.contains("embeddings"), "{name}"),
        other => panic!("{other:?}"),
    }
    let bad_heads = ClipVisionSpec {
        num_attention_heads: 5,
        ..spec.clone()
    };
    assert!(matches!(
        bad_heads.validate(),
        Err(Error::InvalidConfig { .. })
    ));
    // The input must be N × 3 × S × S.
    let x = Tensor::zeros((1, 3, 16, 16), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(load().embed(&x), Err(Error::InputShape { .. })));
    // ViT-B/32's spec lists 8 + 16 per layer tensors.
    assert_eq!(ClipVisionSpec::vit_b32().tensors().len(), 8 + 16 * 12);
}
