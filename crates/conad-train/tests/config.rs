//! The typed TOML config: defaults, round trip, unknown names and fields, validation, resolution.

use conad_train::{
    AugmentSpec, Error, LrSchedule, MethodConfig, OptimizerConfig, SimClrConfig, TrainConfig,
    method_names,
};

#[test]
fn default_is_valid_and_round_trips_through_toml() {
    let c = TrainConfig::default();
    c.validate().unwrap();
    let text = c.to_toml_string().unwrap();
    let back = TrainConfig::from_toml_str(&text, "roundtrip").unwrap();
    assert_eq!(back, c);
    assert!(c.differences(&back).is_empty());
}

#[test]
fn partial_toml_fills_defaults_and_parses_every_section() {
    let text = r#"
        epochs = 7
        batch_size = 16
        seed = 3
        [method]
        name = "simclr"
        temperature = 0.2
        [model]
        width_multiplier = 0.25
        stem = "cifar"
        [optimizer]
        kind = "lars"
        weight_decay = 1e-6
        [schedule]
        kind = "csi_warmup_cosine"
        lr = 0.1
        [augment.train]
        preset = "csi"
        [augment.test]
        preset = "identity"
    "#;
    let c = TrainConfig::from_toml_str(text, "inline").unwrap();
    assert_eq!((c.epochs, c.batch_size, c.seed), (7, 16, 3));
    let SimClrConfig { temperature, .. } = c.method.params::<SimClrConfig>().unwrap();
    assert_eq!(*temperature, 0.2);
    assert_eq!(c.model.width_multiplier, 0.25);
    let OptimizerConfig::Lars(l) = &c.optimizer else {
        panic!("{:?}", c.optimizer)
    };
    assert_eq!((l.trust_coefficient, l.eps, l.momentum), (0.001, 1e-8, 0.9));
    assert_eq!(
        c.schedule,
        LrSchedule::CsiWarmupCosine {
            lr: 0.1,
            multiplier: 10.0,
            warmup_epochs: 10.0
        }
    );
    assert_eq!(c.augment.train, AugmentSpec::Csi { size: None });
    // Every optimiser kind parses.
    for kind in ["sgd", "adam", "adam_w", "adamw", "lars"] {
        let t = format!("[optimizer]\nkind = \"{kind}\"\n");
        TrainConfig::from_toml_str(&t, "kind").unwrap();
    }
}

#[test]
fn unknown_method_lists_the_registry() {
    let err = TrainConfig::from_toml_str("[method]\nname = \"simclrr\"\n", "inline").unwrap_err();
    match &err {
        Error::UnknownMethod { name, valid } => {
            assert_eq!(name, "simclrr");
            assert_eq!(valid, &method_names());
            assert!(valid.contains(&"simclr") && valid.contains(&"raw_pixels"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("raw_pixels, simclr"), "{err}");
    assert!(matches!(
        MethodConfig::from_name("csi-typo"),
        Err(Error::UnknownMethod { .. })
    ));
    assert_eq!(
        MethodConfig::from_name("raw_pixels").unwrap().name(),
        "raw_pixels"
    );
    // The command-line alias resolves to the registry name.
    assert_eq!(MethodConfig::from_name("raw").unwrap().name(), "raw_pixels");
}

#[test]
fn unknown_fields_and_bad_values_are_named() {
    // A typo in a key is rejected with the key's name.
    let err = TrainConfig::from_toml_str("epochz = 3\n", "inline").unwrap_err();
    assert!(
        matches!(&err, Error::ConfigParse { message, .. } if message.contains("epochz")),
        "{err}"
    );
    let err =
        TrainConfig::from_toml_str("[method]\nname = \"simclr\"\ntau = 0.5\n", "x").unwrap_err();
    assert!(
        matches!(&err, Error::ConfigParse { message, .. } if message.contains("tau")),
        "{err}"
    );
    for (text, field) in [
        ("batch_size = 0\n", "batch_size"),
        ("epochs = 0\n", "epochs"),
        ("threads = 0\n", "threads"),
        ("[eval]\nk = 0\n", "eval.k"),
        (
            "[method]\nname = \"simclr\"\ntemperature = -1.0\n",
            "method.temperature",
        ),
        (
            "[optimizer]\nkind = \"sgd\"\nmomentum = 1.5\n",
            "optimizer.momentum",
        ),
        ("[schedule]\nkind = \"cosine\"\nlr = 0.0\n", "schedule.lr"),
    ] {
        match TrainConfig::from_toml_str(text, "inline") {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field, "{text}"),
            other => panic!("{text}: expected InvalidConfig({field}), got {other:?}"),
        }
    }
    assert!(matches!(
        TrainConfig::from_toml_str("[model]\nwidth_multiplier = 0.3\n", "inline"),
        Err(Error::Models(_))
    ));
}

#[test]
fn precision_parses_round_trips_and_is_checked_against_the_machine() {
    let c = TrainConfig::from_toml_str("precision = \"bf16\"\n", "inline").unwrap();
    assert_eq!(c.precision, conad_train::Precision::Bf16);
    let back = TrainConfig::from_toml_str(&c.to_toml_string().unwrap(), "again").unwrap();
    assert_eq!(back.precision, conad_train::Precision::Bf16);
    assert_eq!(
        TrainConfig::default().precision,
        conad_train::Precision::F32
    );
    // A config written before the field existed reads as f32.
    assert_eq!(
        TrainConfig::from_toml_str("epochs = 3\n", "old")
            .unwrap()
            .precision,
        conad_train::Precision::F32
    );
    match TrainConfig::from_toml_str("precision = \"fp8\"\n", "inline") {
        Err(Error::ConfigParse { message, .. }) => assert!(message.contains("fp8"), "{message}"),
        other => panic!("expected a parse error naming fp8, got {other:?}"),
    }
    // bf16 passes the machine check exactly where the CPU has AMX-BF16.
    match c.validate_for_this_machine() {
        Ok(()) => assert!(conad_train::Precision::Bf16.supported()),
        Err(Error::InvalidConfig { field, reason, .. }) => {
            assert_eq!(field, "precision");
            assert!(reason.contains("AMX-BF16"), "{reason}");
            assert!(!conad_train::Precision::Bf16.supported());
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[test]
fn resolve_fills_sizes_and_channels_from_the_data() {
    let c = TrainConfig::default();
    let r = c.resolve(28, 28, 1).unwrap();
    assert_eq!(r.model.in_channels, Some(1));
    assert_eq!(r.augment.train, AugmentSpec::SimclrCifar { size: Some(28) });
    // Resolving twice is stable, so a resumed run sees the same config.
    assert_eq!(r.resolve(28, 28, 1).unwrap(), r);
    let text = r.to_toml_string().unwrap();
    assert_eq!(TrainConfig::from_toml_str(&text, "resolved").unwrap(), r);
    // An explicit channel count that the views cannot give is a typed error.
    let mut bad = c.clone();
    bad.model.in_channels = Some(3);
    assert!(matches!(
        bad.resolve(28, 28, 1),
        Err(Error::ChannelMismatch {
            expected: 3,
            found: 1,
            ..
        })
    ));
    // A grey-to-RGB pipeline makes 3-channel views.
    let mut rgb = c;
    rgb.augment.train =
        AugmentSpec::Custom(conad_augment::presets::simclr_cifar(28).with_grey_to_rgb());
    rgb.augment.test = AugmentSpec::Custom(conad_augment::AugmentConfig::from_steps(vec![
        conad_augment::Step::ToRgb,
    ]));
    assert_eq!(rgb.resolve(28, 28, 1).unwrap().model.in_channels, Some(3));
}

#[test]
fn differences_name_the_changed_keys() {
    let a = TrainConfig::default();
    let b = TrainConfig {
        epochs: 5,
        seed: 9,
        ..TrainConfig::default()
    };
    let d = a.differences(&b);
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[0].starts_with("epochs: 100 vs 5"), "{d:?}");
    assert!(d[1].starts_with("seed: 0 vs 9"), "{d:?}");
}

/// The configs shipped with the repository (`xtask/configs/*.toml`, used by the README) parse and
/// validate, and the rotation-pool one really asks for rotations.
#[test]
fn shipped_configs_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../xtask/configs");
    let mut seen = 0;
    let mut rotations_checked = false;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = TrainConfig::from_toml_file(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            config.validate().unwrap();
            if path.ends_with("fmnist_simclr_rotations.toml") {
                assert_eq!(
                    config
                        .method
                        .params::<SimClrConfig>()
                        .unwrap()
                        .distribution_shift,
                    conad_train::DistributionShift::Rotations
                );
                rotations_checked = true;
            }
            seen += 1;
        }
    }
    assert!(
        seen >= 1 && rotations_checked,
        "expected fmnist_simclr_rotations.toml among the configs in {}",
        dir.display()
    );
}
