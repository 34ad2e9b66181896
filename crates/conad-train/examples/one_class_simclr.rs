//! End-to-end one-class run: the raw-pixel kNN floor, then SimCLR on the normal class, with the
//! online learning curve.
//!
//! ```text
//! cargo run --release -p conad-train --example one_class_simclr -- \
//!     [--data embedded:fashion-mnist] [--class 0] [--epochs 10] [--width 0.25] [--batch 32]
//!     [--eval-every 2] [--run-dir target/one-class-simclr] [--config run.toml]
//! ```
//! `--config` reads a full TOML [`TrainConfig`]; the other flags then override its fields.

use std::path::PathBuf;

use conad_data::{DataSpec, OneClassProtocol};
use conad_train::{
    MethodConfig, ProgressMode, RawPixelsConfig, ResumePolicy, TrainConfig, TrainOptions,
    train_with_options,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut spec = "embedded:fashion-mnist".to_string();
    let mut class = 0u32;
    let mut config = TrainConfig {
        epochs: 10,
        batch_size: 32,
        eval_every: 2,
        checkpoint_every: 5,
        ..Default::default()
    };
    config.model.width_multiplier = 0.25;
    let mut run_dir = PathBuf::from("target/one-class-simclr");
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--config" => {
                config = TrainConfig::from_toml_file(std::path::Path::new(value))?;
            }
            "--data" => spec = value.clone(),
            "--class" => class = value.parse()?,
            "--epochs" => config.epochs = value.parse()?,
            "--width" => config.model.width_multiplier = value.parse()?,
            "--batch" => config.batch_size = value.parse()?,
            "--eval-every" => config.eval_every = value.parse()?,
            "--run-dir" => run_dir = PathBuf::from(value),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let data = spec.parse::<DataSpec>()?.load()?;
    let task = OneClassProtocol::new(vec![class]).build(&data)?;
    eprintln!(
        "{}: {} training images, {} test images ({} anomalies)",
        task.description,
        task.train.len(),
        task.test.len(),
        task.num_test_anomalies()
    );
    let options = TrainOptions {
        resume: ResumePolicy::Overwrite,
        progress: ProgressMode::Auto,
        ..Default::default()
    };
    let raw = TrainConfig {
        method: MethodConfig::new(RawPixelsConfig::default()),
        ..config.clone()
    };
    let floor = train_with_options(&raw, &task, run_dir.join("raw_pixels"), &options)?;
    println!(
        "raw-pixel kNN AUROC: {:.4}",
        floor.final_auroc.unwrap_or(f64::NAN)
    );
    let report = train_with_options(&config, &task, run_dir.join("simclr"), &options)?;
    for e in &report.history.epochs {
        let auroc = report
            .history
            .evals
            .iter()
            .find(|p| p.epoch == e.epoch)
            .map_or(String::new(), |p| format!("  AUROC {:.4}", p.auroc));
        println!(
            "epoch {:>3}: loss {:.4}  lr {:.2e}  std {:.4}  {:.1} img/s{auroc}",
            e.epoch,
            e.loss,
            e.lr,
            e.embedding_std.unwrap_or(f64::NAN),
            e.images_per_second
        );
    }
    println!(
        "SimCLR final AUROC {:.4}, AULC {:.4}, {:.1} img/s, {:.0} s",
        report.final_auroc.unwrap_or(f64::NAN),
        report.aulc.unwrap_or(f64::NAN),
        report.images_per_second.unwrap_or(f64::NAN),
        report.wall_seconds
    );
    Ok(())
}
