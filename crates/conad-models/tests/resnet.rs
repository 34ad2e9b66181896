//! ResNet shapes, stems, train/eval behaviour and input validation.

use candle_core::{DType, Device, ModuleT, Tensor};
use candle_nn::VarMap;
use conad_models::{
    Error, ResNet, ResNetConfig, Stage, Stem, named_trainable_vars, seeded_var_builder,
};
use conad_rng::SeedTree;

fn model(cfg: &ResNetConfig) -> (ResNet, VarMap) {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, SeedTree::new(1), DType::F32, &Device::Cpu);
    (ResNet::new(cfg, vb).unwrap(), varmap)
}

fn input(shape: (usize, usize, usize, usize), seed: u64) -> Tensor {
    let n = shape.0 * shape.1 * shape.2 * shape.3;
    let v: Vec<f32> = (0..n)
        .map(|i| (((i as u64 + 1) * 2654435761 * (seed + 1)) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn tiny(stem: Stem, in_channels: usize) -> ResNetConfig {
    ResNetConfig {
        stem,
        in_channels,
        width_multiplier: 0.125,
        ..Default::default()
    }
}

#[test]
fn cifar_stem_shapes() {
    let (net, _) = model(&tiny(Stem::Cifar, 3));
    let s = net
        .forward_stages(&input((2, 3, 32, 32), 0), false)
        .unwrap();
    assert_eq!(s.res1.dims(), &[2, 8, 32, 32]);
    assert_eq!(s.res2.dims(), &[2, 16, 16, 16]);
    assert_eq!(s.res3.dims(), &[2, 32, 8, 8]);
    assert_eq!(s.res4.dims(), &[2, 64, 4, 4]);
    assert_eq!(s.pooled().unwrap().dims(), &[2, 64]);
}

#[test]
fn imagenet_stem_shapes_grayscale() {
    let (net, _) = model(&tiny(Stem::ImageNet, 1));
    let s = net
        .forward_stages(&input((2, 1, 64, 64), 0), false)
        .unwrap();
    // 64 → conv/2 → 32 → max-pool/2 → 16.
    assert_eq!(s.res1.dims(), &[2, 8, 16, 16]);
    assert_eq!(s.res4.dims(), &[2, 64, 2, 2]);
    // 224 px, the torchvision size, ends at 7×7.
    let s = net
        .forward_stages(&input((1, 1, 224, 224), 1), false)
        .unwrap();
    assert_eq!(s.res4.dims(), &[1, 64, 7, 7]);
}

#[test]
fn forward_to_matches_forward_stages_and_module_t_is_pooled() {
    let (net, _) = model(&tiny(Stem::Cifar, 3));
    let x = input((2, 3, 16, 16), 2);
    let all = net.forward_stages(&x, false).unwrap();
    for stage in Stage::ALL {
        let t = net.forward_to(&x, stage, false).unwrap();
        let d = (t - all.get(stage))
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0, "{stage:?}");
    }
    let f = net.forward_t(&x, false).unwrap();
    let p = all.pooled().unwrap();
    let d = (f - p).unwrap().abs().unwrap().max_all().unwrap();
    assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0);
}

#[test]
fn train_mode_updates_running_stats_eval_mode_does_not() {
    let (net, varmap) = model(&tiny(Stem::Cifar, 3));
    let get = |n: &str| {
        varmap.data().lock().unwrap()[n]
            .as_tensor()
            .to_vec1::<f32>()
            .unwrap()
    };
    let x = input((4, 3, 8, 8), 3);
    net.features(&x, false).unwrap();
    assert!(get("layer3.0.bn1.running_mean").iter().all(|&v| v == 0.0));
    net.features(&x, true).unwrap();
    let rm = get("layer3.0.bn1.running_mean");
    assert!(rm.iter().filter(|&&v| v != 0.0).count() > rm.len() / 2);
    // Train and eval outputs differ (batch vs running statistics).
    let a = net.features(&x, true).unwrap();
    let b = net.features(&x, false).unwrap();
    let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
    assert!(d.to_scalar::<f32>().unwrap() > 1e-3);
}

#[test]
fn training_mode_batch_statistics_make_samples_interact() {
    // In training mode a sample's feature depends on the other samples of the batch; in
    // evaluation mode it does not.
    let (net, _) = model(&tiny(Stem::Cifar, 3));
    let a = input((2, 3, 8, 8), 4);
    let b = Tensor::cat(&[&a.narrow(0, 0, 1).unwrap(), &input((1, 3, 8, 8), 5)], 0).unwrap();
    let first = |x: &Tensor, train| net.features(x, train).unwrap().narrow(0, 0, 1).unwrap();
    let d_eval = (first(&a, false) - first(&b, false))
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert_eq!(d_eval.to_scalar::<f32>().unwrap(), 0.0);
    let d_train = (first(&a, true) - first(&b, true))
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert!(d_train.to_scalar::<f32>().unwrap() > 1e-4);
}

#[test]
fn gradients_reach_every_trainable_parameter() {
    let cfg = ResNetConfig {
        num_classes: Some(4),
        ..tiny(Stem::Cifar, 3)
    };
    let (net, varmap) = model(&cfg);
    let x = input((2, 3, 8, 8), 6);
    let loss = net
        .logits(&x, true)
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let vars = varmap.data().lock().unwrap();
    let mut trainable = 0;
    for (name, var) in vars.iter() {
        let g = grads.get(var.as_tensor());
        if name.contains("running_") {
            assert!(g.is_none(), "{name} got a gradient");
        } else {
            trainable += 1;
            let g = g.unwrap_or_else(|| panic!("{name} has no gradient"));
            let n = g
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(n > 0.0 && n.is_finite(), "{name}: |grad| = {n}");
        }
    }
    // conv1 + bn1 (2) + 8 blocks × 6 + 3 downsamples × 3 + fc (2)
    assert_eq!(trainable, 1 + 2 + 8 * 6 + 3 * 3 + 2);
    // `named_trainable_vars` returns exactly these, sorted by name.
    drop(vars);
    let named = named_trainable_vars(&varmap);
    assert_eq!(named.len(), trainable);
    assert!(named.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(named.iter().all(|(n, _)| !n.contains("running_")));
}

/// Inside a `DirectGradients` scope (as the trainer runs) the ResNet's stages run as single ops
/// with parameter gradients handed over directly: two views through the same network give every
/// trainable parameter the same gradient, bit for bit, as the graph path without a scope.
#[test]
fn direct_gradients_equal_the_graph_path_bit_for_bit() {
    let cfg = ResNetConfig {
        width_multiplier: 0.25,
        ..tiny(Stem::Cifar, 3)
    };
    let run = |direct: bool| -> Vec<(String, Vec<u32>)> {
        let (net, varmap) = model(&cfg);
        let scope = direct.then(conad_engine::DirectGradients::scope);
        let a = net.features(&input((4, 3, 12, 12), 7), true).unwrap();
        let b = net.features(&input((4, 3, 12, 12), 8), true).unwrap();
        // A truncated pass too (UniCon-HA's stage heads): stem and two stages as one op.
        let c = net
            .forward_to(&input((4, 3, 12, 12), 9), Stage::Res2, true)
            .unwrap();
        let loss = ((a.sqr().unwrap().sum_all().unwrap() * 0.5).unwrap()
            + (&a * &b).unwrap().sum_all().unwrap()
            + (c.sum_all().unwrap() * 0.25).unwrap())
        .unwrap();
        let mut grads = loss.backward().unwrap();
        if let Some(scope) = scope {
            scope.merge_into(&mut grads).unwrap();
        }
        named_trainable_vars(&varmap)
            .into_iter()
            .map(|(name, var)| {
                let g = grads.get(var.as_tensor());
                let g = g.unwrap_or_else(|| panic!("{name} has no gradient"));
                let bits = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                (name, bits.iter().map(|v| v.to_bits()).collect())
            })
            .collect()
    };
    let (graph, direct) = (run(false), run(true));
    assert_eq!(graph.len(), direct.len());
    for ((name, g), (_, d)) in graph.iter().zip(&direct) {
        assert_eq!(g, d, "{name}");
    }
}

#[test]
fn bad_inputs_give_typed_errors() {
    let (net, _) = model(&tiny(Stem::Cifar, 3));
    match net.features(&input((2, 1, 8, 8), 0), false) {
        Err(Error::InputShape { got, .. }) => assert_eq!(got, vec![2, 1, 8, 8]),
        other => panic!("{other:?}"),
    }
    let flat = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        net.features(&flat, false),
        Err(Error::InputShape { .. })
    ));
    // Batch 1 with a 1×1 res4 map: BN in training mode has one value per channel.
    match net.features(&input((1, 3, 8, 8), 0), true) {
        Err(Error::BatchNormTooFewValues { layer, count, .. }) => {
            assert_eq!(count, 1);
            assert!(layer.starts_with("layer4"), "{layer}");
        }
        other => panic!("{other:?}"),
    }
    // The same inside a DirectGradients scope (as the trainer runs): the one-op trunk steps aside
    // and the layer reports its own error.
    {
        let _scope = conad_engine::DirectGradients::scope();
        match net.features(&input((1, 3, 8, 8), 0), true) {
            Err(Error::BatchNormTooFewValues { layer, count, .. }) => {
                assert_eq!(count, 1);
                assert!(layer.starts_with("layer4"), "{layer}");
            }
            other => panic!("{other:?}"),
        }
    }
    // The same input is fine in evaluation mode.
    assert!(net.features(&input((1, 3, 8, 8), 0), false).is_ok());
    assert!(matches!(
        net.logits(&input((2, 3, 8, 8), 0), false),
        Err(Error::NoClassifier)
    ));
    // Through ModuleT the typed error survives as a wrapped candle error.
    let e = net.forward_t(&input((2, 1, 8, 8), 0), false).unwrap_err();
    assert!(e.to_string().contains("input has shape"), "{e}");
}

#[test]
fn invalid_config_is_rejected_at_construction() {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, SeedTree::new(0), DType::F32, &Device::Cpu);
    let cfg = ResNetConfig {
        width_multiplier: 0.3,
        ..Default::default()
    };
    assert!(matches!(
        ResNet::new(&cfg, vb),
        Err(Error::InvalidConfig { field, .. }) if field == "width_multiplier"
    ));
    assert!(varmap.all_vars().is_empty());
}

#[test]
fn parameter_count_matches_torchvision_resnet18() {
    // torchvision resnet18 without fc: 11 176 512 trainable parameters; fc adds 513 000.
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, SeedTree::new(0), DType::F32, &Device::Cpu);
    ResNet::new(
        &ResNetConfig {
            num_classes: Some(1000),
            ..ResNetConfig::resnet18_imagenet()
        },
        vb,
    )
    .unwrap();
    let vars = varmap.data().lock().unwrap();
    let trainable: usize = vars
        .iter()
        .filter(|(n, _)| !n.contains("running_"))
        .map(|(_, v)| v.elem_count())
        .sum();
    assert_eq!(trainable, 11_689_512);
}
