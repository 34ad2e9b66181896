//! Reproducible initialisation: same seed → bit-identical weights, other seed → other weights,
//! torchvision's per-layer conventions.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use conad_models::{MlpHead, MlpHeadConfig, ResNet, ResNetConfig, seeded_var_builder};
use conad_rng::SeedTree;

fn build(seed: u64, cfg: &ResNetConfig) -> VarMap {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(
        &varmap,
        SeedTree::new(seed).child("init"),
        DType::F32,
        &Device::Cpu,
    );
    ResNet::new(cfg, vb.pp("encoder")).unwrap();
    MlpHead::new(&MlpHeadConfig::simclr(cfg.feature_dim()), vb.pp("head")).unwrap();
    varmap
}

fn values(varmap: &VarMap, name: &str) -> Vec<f32> {
    varmap.data().lock().unwrap()[name]
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

fn small() -> ResNetConfig {
    ResNetConfig {
        width_multiplier: 0.25,
        ..Default::default()
    }
}

#[test]
fn same_seed_gives_bit_identical_weights() {
    let a = build(5, &small());
    let b = build(5, &small());
    let names: Vec<String> = a.data().lock().unwrap().keys().cloned().collect();
    assert!(names.len() > 100, "{} variables", names.len());
    for n in &names {
        let (x, y) = (values(&a, n), values(&b, n));
        assert!(
            x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()),
            "{n} differs"
        );
    }
}

#[test]
fn different_seed_gives_different_random_weights_but_same_constants() {
    let a = build(5, &small());
    let b = build(6, &small());
    for n in [
        "encoder.conv1.weight",
        "encoder.layer3.1.conv2.weight",
        "head.fc0.weight",
        "head.fc1.bias",
    ] {
        let (x, y) = (values(&a, n), values(&b, n));
        let same = x.iter().zip(&y).filter(|(p, q)| p == q).count();
        assert_eq!(same, 0, "{n}: {same} equal entries across seeds");
    }
    assert_eq!(
        values(&a, "encoder.bn1.weight"),
        values(&b, "encoder.bn1.weight")
    );
}

#[test]
fn initial_value_depends_on_name_not_construction_order() {
    // The encoder alone, and the encoder built after a head, give the same encoder weights.
    let cfg = small();
    let a = build(11, &cfg);
    let varmap = VarMap::new();
    let vb = seeded_var_builder(
        &varmap,
        SeedTree::new(11).child("init"),
        DType::F32,
        &Device::Cpu,
    );
    MlpHead::new(&MlpHeadConfig::simclr(cfg.feature_dim()), vb.pp("head")).unwrap();
    ResNet::new(&cfg, vb.pp("encoder")).unwrap();
    for n in ["encoder.layer2.0.conv1.weight", "head.fc0.weight"] {
        assert_eq!(values(&a, n), values(&varmap, n));
    }
}

#[test]
fn torchvision_init_conventions() {
    // Full width so the sample statistics are tight.
    let varmap = build(1, &ResNetConfig::default());
    let stats = |name: &str| {
        let v = values(&varmap, name);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        (v, mean, var.sqrt())
    };
    // conv: Kaiming normal, fan_out = out·k·k → std = √(2 / (256·9)) for layer3 3×3 convs.
    let (_, mean, std) = stats("encoder.layer3.1.conv2.weight");
    let want = (2.0f64 / (256.0 * 9.0)).sqrt();
    assert!(
        (std / want - 1.0).abs() < 0.01,
        "conv std {std}, want {want}"
    );
    assert!(mean.abs() < 0.01 * want, "conv mean {mean}");
    // 1×1 downsample conv: fan_out = 512.
    let (_, _, std) = stats("encoder.layer4.0.downsample.0.weight");
    let want = (2.0f64 / 512.0).sqrt();
    assert!(
        (std / want - 1.0).abs() < 0.02,
        "1x1 conv std {std}, want {want}"
    );
    // BN: weight 1, bias 0, running mean 0, running var 1.
    for (n, c) in [
        ("encoder.layer2.1.bn1.weight", 1.0),
        ("encoder.layer2.1.bn1.bias", 0.0),
        ("encoder.layer2.1.bn1.running_mean", 0.0),
        ("encoder.layer2.1.bn1.running_var", 1.0),
    ] {
        assert!(values(&varmap, n).iter().all(|&x| x == c), "{n}");
    }
    // Linear: U(−1/√in, 1/√in) for weight and bias; uniform std = bound/√3.
    let bound = 1.0 / 512f64.sqrt();
    let (v, _, std) = stats("head.fc0.weight");
    assert!(v.iter().all(|&x| (x as f64).abs() <= bound));
    assert!(
        (std / (bound / 3f64.sqrt()) - 1.0).abs() < 0.01,
        "linear std {std}"
    );
    let (b, _, _) = stats("head.fc0.bias");
    assert!(b.iter().all(|&x| (x as f64).abs() <= bound));
    assert!(b.iter().any(|&x| (x as f64).abs() > 0.5 * bound));
}

#[test]
fn seeded_model_forward_is_deterministic() {
    let cfg = ResNetConfig {
        width_multiplier: 0.125,
        ..Default::default()
    };
    let x = Tensor::arange(0f32, 2.0 * 3.0 * 8.0 * 8.0, &Device::Cpu)
        .unwrap()
        .reshape((2, 3, 8, 8))
        .unwrap()
        .affine(0.01, -1.0)
        .unwrap();
    let run = || {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, SeedTree::new(3), DType::F32, &Device::Cpu);
        let net = ResNet::new(&cfg, vb).unwrap();
        net.features(&x, true)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let (a, b) = (run(), run());
    assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
}
