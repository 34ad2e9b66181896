//! Projection, classification and UniCon-HA stage heads.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use conad_models::{
    Error, FinalBatchNorm, LinearHead, LinearHeadConfig, MlpHead, MlpHeadConfig, ResNet,
    ResNetConfig, Stage, StageHead, StageHeadConfig, seeded_var_builder,
};
use conad_rng::SeedTree;

fn store() -> (VarMap, candle_nn::VarBuilder<'static>) {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, SeedTree::new(2), DType::F32, &Device::Cpu);
    (varmap, vb)
}

fn names(varmap: &VarMap) -> Vec<String> {
    let mut n: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    n.sort();
    n
}

fn rand_input(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| (((i as u64 + 3) * 2654435761 * (seed + 7)) % 997) as f32 / 498.5 - 1.0)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

#[test]
fn simclr_head_is_linear_relu_linear_with_biases() {
    let (varmap, vb) = store();
    let head = MlpHead::new(&MlpHeadConfig::simclr(64), vb).unwrap();
    assert_eq!(
        names(&varmap),
        ["fc0.bias", "fc0.weight", "fc1.bias", "fc1.weight"]
    );
    let x = rand_input(&[5, 64], 0);
    let h = head.forward(&x, true).unwrap();
    assert_eq!(h.dims(), &[5, 128]);
    // Same computation written out by hand.
    let get = |n: &str| varmap.data().lock().unwrap()[n].as_tensor().clone();
    let manual = x
        .matmul(&get("fc0.weight").t().unwrap())
        .unwrap()
        .broadcast_add(&get("fc0.bias"))
        .unwrap()
        .relu()
        .unwrap()
        .matmul(&get("fc1.weight").t().unwrap())
        .unwrap()
        .broadcast_add(&get("fc1.bias"))
        .unwrap();
    let d = (h - manual).unwrap().abs().unwrap().max_all().unwrap();
    assert!(d.to_scalar::<f32>().unwrap() < 1e-6);
}

#[test]
fn firm_head_has_eight_bias_free_layers_and_parameter_free_final_bn() {
    let (varmap, vb) = store();
    let cfg = MlpHeadConfig::firm(512);
    assert_eq!(cfg.depth(), 8);
    let head = MlpHead::new(&cfg, vb).unwrap();
    let n = names(&varmap);
    assert!(
        n.iter()
            .all(|s| !s.ends_with(".bias") || s.starts_with("bn"))
    );
    for i in 0..8 {
        assert!(n.contains(&format!("fc{i}.weight")));
        assert!(n.contains(&format!("bn{i}.running_mean")));
    }
    // Hidden BNs are affine, the final BN (bn7) has no weight/bias.
    assert!(n.contains(&"bn6.weight".to_string()));
    assert!(!n.contains(&"bn7.weight".to_string()));
    let shape = |s: &str| varmap.data().lock().unwrap()[s].dims().to_vec();
    assert_eq!(shape("fc0.weight"), [1024, 512]);
    assert_eq!(shape("fc3.weight"), [1024, 1024]);
    assert_eq!(shape("fc7.weight"), [128, 1024]);
    // Training-mode output of a parameter-free final BN has per-column mean 0 and
    // (biased) variance 1 − ε-correction.
    let h = head.forward(&rand_input(&[16, 512], 1), true).unwrap();
    assert_eq!(h.dims(), &[16, 128]);
    let mean = h.mean(0).unwrap().abs().unwrap().max_all().unwrap();
    assert!(mean.to_scalar::<f32>().unwrap() < 1e-4);
    let var = h.sqr().unwrap().mean(0).unwrap();
    let v = var.to_vec1::<f32>().unwrap();
    assert!(v.iter().all(|&x| (x - 1.0).abs() < 1e-2), "{v:?}");
}

#[test]
fn final_affine_bn_and_validation() {
    let (varmap, vb) = store();
    let cfg = MlpHeadConfig {
        in_dim: 8,
        hidden_dims: vec![],
        out_dim: 4,
        bias: false,
        final_batch_norm: FinalBatchNorm::Affine,
        ..MlpHeadConfig::default()
    };
    let head = MlpHead::new(&cfg, vb.clone()).unwrap();
    assert_eq!(
        names(&varmap),
        [
            "bn0.bias",
            "bn0.running_mean",
            "bn0.running_var",
            "bn0.weight",
            "fc0.weight"
        ]
    );
    match head.forward(&rand_input(&[1, 8], 0), true) {
        Err(Error::BatchNormTooFewValues {
            layer, count: 1, ..
        }) => assert_eq!(layer, "bn0"),
        other => panic!("{other:?}"),
    }
    assert!(head.forward(&rand_input(&[1, 8], 0), false).is_ok());
    assert!(matches!(
        head.forward(&rand_input(&[2, 9], 0), false),
        Err(Error::InputShape { .. })
    ));
    let bad = MlpHeadConfig {
        hidden_dims: vec![16, 0],
        ..MlpHeadConfig::simclr(8)
    };
    assert!(matches!(
        MlpHead::new(&bad, vb.pp("bad")),
        Err(Error::InvalidConfig { field, .. }) if field == "hidden_dims"
    ));
    let json = serde_json::to_string(&MlpHeadConfig::firm(512)).unwrap();
    assert_eq!(
        serde_json::from_str::<MlpHeadConfig>(&json).unwrap(),
        MlpHeadConfig::firm(512)
    );
}

#[test]
fn rotation_head_has_four_classes() {
    let (varmap, vb) = store();
    let head = LinearHead::new(
        &LinearHeadConfig {
            in_dim: 32,
            ..Default::default()
        },
        vb,
    )
    .unwrap();
    assert_eq!(names(&varmap), ["bias", "weight"]);
    assert_eq!(
        head.forward(&rand_input(&[3, 32], 2)).unwrap().dims(),
        &[3, 4]
    );
    assert!(matches!(
        head.forward(&rand_input(&[3, 31], 2)),
        Err(Error::InputShape { .. })
    ));
    let (_, vb) = store();
    assert!(matches!(
        LinearHead::new(
            &LinearHeadConfig {
                num_classes: 0,
                ..Default::default()
            },
            vb
        ),
        Err(Error::InvalidConfig { field, .. }) if field == "num_classes"
    ));
}

#[test]
fn unicon_stage_heads_downsample_to_the_last_stage() {
    let enc_cfg = ResNetConfig {
        width_multiplier: 0.125,
        ..Default::default()
    };
    let (varmap, vb) = store();
    let enc = ResNet::new(&enc_cfg, vb.pp("encoder")).unwrap();
    let x = rand_input(&[2, 3, 32, 32], 3);
    let stages = enc.forward_stages(&x, true).unwrap();
    for (stage, blocks) in [(Stage::Res2, 2), (Stage::Res3, 1), (Stage::Res4, 0)] {
        let cfg = StageHeadConfig::unicon_ha(&enc_cfg, stage);
        assert_eq!(cfg.num_down_blocks(), blocks);
        let prefix = format!("head_{stage:?}");
        let head = StageHead::new(&cfg, vb.pp(&prefix)).unwrap();
        let z = head.forward(stages.get(stage), true).unwrap();
        assert_eq!(z.dims(), &[2, 128]);
        let n = names(&varmap);
        let convs: Vec<_> = n
            .iter()
            .filter(|s| s.starts_with(&prefix) && s.ends_with("conv.weight"))
            .collect();
        assert_eq!(convs.len(), blocks, "{convs:?}");
    }
    // res2 head: 16 → 32 → 64 channels with 3×3 stride-2 kernels.
    let shape = |s: &str| varmap.data().lock().unwrap()[s].dims().to_vec();
    assert_eq!(shape("head_Res2.down.0.conv.weight"), [32, 16, 3, 3]);
    assert_eq!(shape("head_Res2.down.1.conv.weight"), [64, 32, 3, 3]);
    assert_eq!(shape("head_Res2.mlp.fc0.weight"), [64, 64]);
    assert_eq!(shape("head_Res2.mlp.fc1.weight"), [128, 64]);
    // A res3 map fed to the res2 head is rejected.
    let h2 = StageHead::new(
        &StageHeadConfig::unicon_ha(&enc_cfg, Stage::Res2),
        vb.pp("head_Res2"),
    )
    .unwrap();
    assert!(matches!(
        h2.forward(&stages.res3, true),
        Err(Error::InputShape { .. })
    ));
    // Projection width must match the last stage.
    let mut bad = StageHeadConfig::unicon_ha(&enc_cfg, Stage::Res3);
    bad.projection.in_dim = 32;
    assert!(matches!(
        bad.validate(),
        Err(Error::InvalidConfig { field, .. }) if field == "projection.in_dim"
    ));
}
