//! Registry conformance: every method of `METHODS` round-trips its name and its default TOML,
//! builds on a width-1/8 encoder, takes finite training steps on a fixture, reloads from its
//! run directory, and each of its scores returns one finite anomaly score per test image. The
//! loop runs over the registry itself, so a method added there is tested here or fails.

mod common;

use std::collections::BTreeSet;

use common::{fresh_dir, quiet, tiny_task, weight_bits};
use conad_train::run_dir::MODEL_FILE;
use conad_train::{
    METHODS, MethodConfig, MilConvParams, ModelConfig, MscParams, TrainConfig, TrainOptions,
    UniConHaParams, load_run, train_with_options,
};

/// The tiny config of the common helpers with `method`, ResNet-18 at width 1/8; a method whose
/// loss needs more images per step than the tiny batch takes all 8 training images at once.
fn config_for(method: MethodConfig, epochs: u64) -> TrainConfig {
    let tiny = common::tiny_config(epochs);
    let batch_size = if method.min_batch_size() > tiny.batch_size {
        tiny_task().train.len()
    } else {
        tiny.batch_size
    };
    TrainConfig {
        batch_size,
        method,
        model: ModelConfig {
            width_multiplier: 0.125,
            ..Default::default()
        },
        eval_every: 0,
        ..common::tiny_config(epochs)
    }
}

#[test]
fn every_registered_method_trains_reloads_and_scores() {
    let task = tiny_task();
    let mut tested = BTreeSet::new();
    for info in METHODS {
        let name = info.name;
        // Name and aliases resolve to the entry.
        let method = MethodConfig::from_name(name).unwrap();
        assert_eq!(method.name(), name);
        for alias in info.aliases {
            assert_eq!(MethodConfig::from_name(alias).unwrap().name(), name);
        }
        // The default config round-trips through TOML.
        let config = config_for(method.clone(), 1);
        let text = config.to_toml_string().unwrap();
        let back = TrainConfig::from_toml_str(&text, name).unwrap();
        assert_eq!(back, config, "{name}: TOML round trip\n{text}");
        assert_eq!(back.method.to_table().unwrap()["name"].as_str(), Some(name));

        // One epoch of finite steps (raw pixels: none), then reload and score.
        let dir = fresh_dir(&format!("registry-{name}"));
        let report = train_with_options(&config, &task, &dir, &quiet())
            .unwrap_or_else(|e| panic!("{name}: training failed: {e}"));
        if method.trains() {
            let loss = report.final_loss.unwrap();
            assert!(loss.is_finite(), "{name}: loss {loss}");
            assert!(dir.join(MODEL_FILE).is_file());
            // An epoch feeds the encoder `views_per_image` views of each of the 8 images.
            assert_eq!(
                report.history.epochs[0].images,
                (method.views_per_image() * task.train.len()) as u64,
                "{name}: views per image"
            );
        } else {
            assert_eq!(report.epochs_completed, 0);
        }
        let model = load_run(&dir).unwrap();
        let scores = method.scores();
        assert!(!scores.is_empty(), "{name} lists no score");
        let names: BTreeSet<_> = scores.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), scores.len(), "{name}: duplicate score names");
        assert_eq!(method.paper_score(), scores[0]);
        for score in &scores {
            let detector = model
                .fit_named_score(Some(score.name), &task.train, 5)
                .unwrap_or_else(|e| panic!("{name}/{}: fit failed: {e}", score.name));
            let s = model
                .score(&detector, &task.test, 5)
                .unwrap_or_else(|e| panic!("{name}/{}: scoring failed: {e}", score.name));
            assert_eq!(s.len(), task.test.len(), "{name}/{}", score.name);
            assert!(
                s.iter().all(|v| v.is_finite()),
                "{name}/{}: {s:?}",
                score.name
            );
        }
        // An unknown score is a typed error listing the method's scores.
        let err = model
            .fit_named_score(Some("no-such-score"), &task.train, 5)
            .unwrap_err();
        assert!(err.to_string().contains(scores[0].name), "{err}");
        tested.insert(name);
    }
    assert_eq!(tested.len(), METHODS.len());
}

/// MSC fixes its centre in a hook at the start of epoch `round(center_after · epochs)` = 2 and
/// keeps it in a non-trained variable: a run stopped after epoch 3 (centre fixed from the
/// epoch-2 weights) and resumed ends bit-identical to an uninterrupted one — a centre that were
/// not checkpointed would be recomputed from the epoch-3 weights — and the centre is a unit
/// vector.
#[test]
fn msc_centre_is_checkpointed_and_resume_is_bit_identical() {
    centre_is_checkpointed_and_resume_is_bit_identical(MethodConfig::new(MscParams {
        center_after: 0.5,
        ..Default::default()
    }));
}

/// MIL-Conv: the same centre hook (in projection space) plus per-step random draws (sampling,
/// Dirichlet weights) from the step's seed node — a resumed run is bit-identical too.
#[test]
fn mil_conv_centre_and_step_draws_resume_bit_identically() {
    centre_is_checkpointed_and_resume_is_bit_identical(MethodConfig::new(MilConvParams {
        center_after: 0.5,
        ..Default::default()
    }));
}

/// UniCon-HA: three stage passes per step, each with its own augmenter under its own seed node,
/// and three stage heads — a resumed run is bit-identical to an uninterrupted one, and two
/// stages' heads are really trained (their weights move).
#[test]
fn unicon_ha_stage_augmenters_and_heads_resume_bit_identically() {
    let config = config_for(MethodConfig::new(UniConHaParams::default()), 3);
    let a = resumed_equals_uninterrupted(&config, 2);
    for stage in ["stage2", "stage3", "stage4"] {
        assert!(
            a.keys().any(|k| k.starts_with(&format!("heads.{stage}."))),
            "no {stage} head in {:?}",
            a.keys().collect::<Vec<_>>()
        );
    }
    assert!(a.keys().any(|k| k.starts_with("heads.stage2.down.1.")));
}

/// Trains `config` straight through and, in a second directory, stopped after `stop_after`
/// epochs and resumed; asserts the final weights are bit-identical and returns them.
fn resumed_equals_uninterrupted(
    config: &TrainConfig,
    stop_after: u64,
) -> std::collections::BTreeMap<String, Vec<u32>> {
    let task = tiny_task();
    let name = config.method.name();
    let full = fresh_dir(&format!("{name}-full"));
    train_with_options(config, &task, &full, &quiet()).unwrap();
    let split = fresh_dir(&format!("{name}-split"));
    let first = TrainOptions {
        stop_after_epochs: Some(stop_after),
        ..quiet()
    };
    train_with_options(config, &task, &split, &first).unwrap();
    train_with_options(config, &task, &split, &quiet()).unwrap();
    let (a, b) = (
        weight_bits(&full.join(MODEL_FILE)),
        weight_bits(&split.join(MODEL_FILE)),
    );
    assert_eq!(a, b, "{name}: resumed run differs");
    a
}

fn centre_is_checkpointed_and_resume_is_bit_identical(method: MethodConfig) {
    let a = resumed_equals_uninterrupted(&config_for(method, 4), 3);
    let centre: Vec<f32> = a["heads.center"]
        .iter()
        .map(|&bits| f32::from_bits(bits))
        .collect();
    let norm = centre.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "centre norm {norm}");
}

/// Every method ships a `budget` and a `paper` profile that parse, name the method and
/// resolve; budget profiles share one view budget (equal compute), and each method's
/// `views_per_image` is what an epoch really feeds the encoder.
#[test]
fn every_method_has_valid_profiles_with_equal_budgets() {
    let task = tiny_task();
    let mut budgets = BTreeSet::new();
    for info in METHODS {
        for name in conad_train::PROFILE_NAMES {
            let config = conad_train::profile(info.name, name)
                .unwrap_or_else(|e| panic!("{}/{name}: {e}", info.name));
            assert_eq!(config.method.name(), info.name);
            assert_eq!(config.profile.as_deref(), Some(*name));
            config
                .with_budget_for(task.train.len())
                .resolve(8, 8, 1)
                .unwrap_or_else(|e| panic!("{}/{name}: {e}", info.name));
            if *name == "budget" && info.default_config().trains() {
                budgets.insert(config.view_budget);
                assert_eq!(config.model.width_multiplier, 0.25, "{}", info.name);
                // Equal cost per view: no budget profile uses FIRM's depth-8 head.
                let method = toml::Table::try_from(&config.method).unwrap();
                assert_ne!(
                    method.get("projection").and_then(|v| v.as_str()),
                    Some("firm"),
                    "{}",
                    info.name
                );
            }
        }
    }
    assert_eq!(budgets.len(), 1, "budget profiles differ: {budgets:?}");
    assert!(matches!(
        conad_train::profile("simclr", "fast"),
        Err(conad_train::Error::InvalidConfig { .. })
    ));
}
