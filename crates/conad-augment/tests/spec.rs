//! The preset table: every preset can be named in TOML, builds a valid pipeline with the
//! documented output size, and serialises back under its own name.
use conad_augment::{AugmentSpec, PRESET_NAMES, Pipeline, Shift};

/// The TOML of preset `name` with the fields it requires.
fn toml_of(name: &str) -> String {
    let normalize = "normalize = { mean = [0.5, 0.5, 0.5], std = [0.5, 0.5, 0.5] }";
    match name {
        "supcon" | "firm" | "firm_test" | "firm_crop_ensemble" | "normalize" => {
            format!("preset = \"{name}\"\n{normalize}\n")
        }
        "resize_center_crop" => {
            format!("preset = \"{name}\"\nresize = 36\ncrop = 32\n{normalize}\n")
        }
        "unicon_ha_stage" => format!("preset = \"{name}\"\nstage = 3\n"),
        "custom" => {
            format!("preset = \"{name}\"\nsteps = [{{ op = \"horizontal_flip\", p = 0.5 }}]\n")
        }
        _ => format!("preset = \"{name}\"\n"),
    }
}

/// The name of every variant; exhaustive, so a new preset must be added here and to the table.
fn name_of(spec: &AugmentSpec) -> &'static str {
    match spec {
        AugmentSpec::Identity => "identity",
        AugmentSpec::SimclrCifar { .. } => "simclr_cifar",
        AugmentSpec::Simclr { .. } => "simclr",
        AugmentSpec::Supcon { .. } => "supcon",
        AugmentSpec::Csi { .. } => "csi",
        AugmentSpec::CsiEval { .. } => "csi_eval",
        AugmentSpec::UniconHaStage { .. } => "unicon_ha_stage",
        AugmentSpec::Firm { .. } => "firm",
        AugmentSpec::FirmTest { .. } => "firm_test",
        AugmentSpec::FirmCropEnsemble { .. } => "firm_crop_ensemble",
        AugmentSpec::Normalize { .. } => "normalize",
        AugmentSpec::ResizeCenterCrop { .. } => "resize_center_crop",
        AugmentSpec::DrocPad => "droc_pad",
        AugmentSpec::Custom(_) => "custom",
        _ => "unlisted",
    }
}

#[test]
fn every_preset_is_nameable_valid_and_round_trips() {
    for &name in PRESET_NAMES {
        let text = toml_of(name);
        let spec: AugmentSpec =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        assert_eq!(name_of(&spec), name);
        let back = toml::to_string(&spec).unwrap();
        assert!(back.contains(&format!("preset = \"{name}\"")), "{back}");
        assert_eq!(toml::from_str::<AugmentSpec>(&back).unwrap(), spec);
        // Builds a valid pipeline at the image side 32 with the documented output size.
        let config = spec.to_augment_config(32).unwrap();
        let pipeline = Pipeline::new(&config).unwrap();
        let out = pipeline
            .output_shape([3, 32, 32], Shift::Identity)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let side = if name == "droc_pad" { 36 } else { 32 };
        assert_eq!(out, [3, side, side], "{name}");
    }
    let mut sorted = PRESET_NAMES.to_vec();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), PRESET_NAMES.len(), "duplicate preset names");
}

#[test]
fn sizes_default_to_the_image_side_and_zero_is_rejected() {
    let spec: AugmentSpec = toml::from_str("preset = \"csi_eval\"\n").unwrap();
    assert_eq!(spec.resolved(28), AugmentSpec::CsiEval { size: Some(28) });
    let zero: AugmentSpec = toml::from_str("preset = \"simclr\"\nsize = 0\n").unwrap();
    assert!(zero.to_augment_config(32).is_err());
    let unknown = toml::from_str::<AugmentSpec>("preset = \"simclr_imagenet\"\n").unwrap_err();
    assert!(unknown.to_string().contains("simclr_imagenet"), "{unknown}");
}

#[test]
fn unicon_ha_stages_grow_in_strength_and_stage_4_is_csi() {
    let stage = |k: usize| {
        toml::from_str::<AugmentSpec>(&format!("preset = \"unicon_ha_stage\"\nstage = {k}\n"))
            .unwrap()
            .to_augment_config(32)
    };
    let csi = toml::from_str::<AugmentSpec>("preset = \"csi\"\n").unwrap();
    assert_eq!(stage(4).unwrap(), csi.to_augment_config(32).unwrap());
    assert_ne!(stage(3).unwrap(), stage(4).unwrap());
    for bad in [0, 5] {
        let e = stage(bad).unwrap_err().to_string();
        assert!(e.contains("augment.stage") && e.contains("1 to 4"), "{e}");
    }
}
