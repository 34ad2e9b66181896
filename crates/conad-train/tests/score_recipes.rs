//! Score recipes against hand computations on raw pixels (the encoder is the identity, so every
//! embedding can be written down from the images).

mod common;

use common::{fresh_dir, quiet, tiny_task};
use conad_augment::Shift;
use conad_data::Dataset;
use conad_scorers::{KnnParams, ScorerConfig};
use conad_train::{
    MethodConfig, Output, RawPixelsConfig, ScoreDef, ScoreRecipe, TrainConfig, ViewSpec, load_run,
    train_with_options,
};

fn unit(v: &[f64]) -> Vec<f64> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// Image `i` in [0, 1] and its 180° rotation (direction-free: the reversed pixel order of a
/// one-channel image), normalised and averaged.
fn mean_feature(d: &Dataset, i: usize) -> Vec<f64> {
    let px: Vec<f64> = d.image(i).iter().map(|&v| f64::from(v) / 255.0).collect();
    let rot: Vec<f64> = px.iter().rev().copied().collect();
    unit(&px)
        .iter()
        .zip(unit(&rot))
        .map(|(a, b)| (a + b) / 2.0)
        .collect()
}

fn cos(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (a.iter().map(|x| x * x).sum::<f64>() * b.iter().map(|x| x * x).sum::<f64>()).sqrt()
}

#[test]
fn feature_mean_averages_normalised_views_before_the_nearest_neighbour() {
    let task = tiny_task();
    let config = TrainConfig {
        method: MethodConfig::new(RawPixelsConfig::default()),
        ..common::tiny_config(1)
    };
    let dir = fresh_dir("score-recipes-raw");
    train_with_options(&config, &task, &dir, &quiet()).unwrap();
    let model = load_run(&dir).unwrap();
    let views = vec![
        ViewSpec::test(Shift::Identity),
        ViewSpec::test(Shift::Rotate { quarter_turns: 2 }),
    ];
    let knn1 = ScorerConfig::Knn(KnnParams::default().k(1));
    let def = |recipe| ScoreDef {
        name: "probe",
        summary: "test",
        recipe,
    };
    let feature_mean = def(ScoreRecipe::FeatureMean {
        output: Output::Encoder,
        groups: vec![views.clone()],
        scorer: knn1.clone(),
    });
    let fit_score = |def: &ScoreDef| {
        let detector = model.fit_score(def, &task.train, 3).unwrap();
        model.score(&detector, &task.test, 3).unwrap()
    };
    let got = fit_score(&feature_mean);
    let bank: Vec<Vec<f64>> = (0..task.train.len())
        .map(|i| mean_feature(&task.train, i))
        .collect();
    for (i, g) in got.iter().enumerate() {
        let q = mean_feature(&task.test, i);
        let best = bank
            .iter()
            .map(|b| cos(&q, b))
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(
            (g - (1.0 - best)).abs() < 1e-5,
            "image {i}: {g} vs {}",
            1.0 - best
        );
    }
    // Averaging the per-view scores instead (one bank per view) is a different score.
    let score_mean = def(ScoreRecipe::Bank {
        output: Output::Encoder,
        banks: views.clone(),
        queries: views.into_iter().zip(0..).collect(),
        scorer: knn1,
    });
    let other = fit_score(&score_mean);
    assert!(got.iter().zip(&other).any(|(a, b)| (a - b).abs() > 1e-4));
}

#[test]
fn an_empty_feature_mean_group_is_a_typed_error() {
    let task = tiny_task();
    let config = TrainConfig {
        method: MethodConfig::new(RawPixelsConfig::default()),
        ..common::tiny_config(1)
    };
    let dir = fresh_dir("score-recipes-empty");
    train_with_options(&config, &task, &dir, &quiet()).unwrap();
    let model = load_run(&dir).unwrap();
    let def = ScoreDef {
        name: "probe",
        summary: "test",
        recipe: ScoreRecipe::FeatureMean {
            output: Output::Encoder,
            groups: vec![vec![]],
            scorer: ScorerConfig::default(),
        },
    };
    let err = model.fit_score(&def, &task.train, 3).unwrap_err();
    assert!(err.to_string().contains("score.groups"), "{err}");
}
