//! What a run records: per-epoch statistics, the learning curve of online evaluations (with
//! AULC, docs/reference.md §4.7) and the final [`TrainReport`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::run_dir::RunRecord;

/// Statistics of one completed epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epochs completed after this one (1-based).
    pub epoch: u64,
    /// Mean training loss over the epoch's steps.
    pub loss: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Collapse monitor on the loss's normalised embeddings, averaged over steps
    /// (≈ 1/√d healthy, → 0 collapsed).
    pub embedding_std: Option<f64>,
    /// Images (views) the encoder processed in the epoch.
    pub images: u64,
    /// Encoder images (views) per second over the epoch's steps.
    pub images_per_second: f64,
    /// Wall-clock seconds of the epoch's steps.
    pub seconds: f64,
}

/// One online evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    /// Epochs completed when it was taken.
    pub epoch: u64,
    /// The score evaluated (`knn` unless `eval.score` names another).
    #[serde(default = "knn_name")]
    pub score: String,
    /// Test AUROC of the score (anomalies positive).
    pub auroc: f64,
    /// Collapse monitor on the training-set encoder embeddings.
    pub embedding_std: Option<f64>,
    /// Seconds spent embedding and scoring.
    pub seconds: f64,
}

fn knn_name() -> String {
    "knn".into()
}

/// Everything recorded so far; stored in every checkpoint so a resumed run continues it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One record per completed epoch.
    pub epochs: Vec<EpochRecord>,
    /// Online evaluations in order.
    pub evals: Vec<EvalPoint>,
}

/// `RUN_DIR/learning_curve.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearningCurve {
    /// Epoch of each point.
    pub epochs: Vec<u64>,
    /// Test AUROC of each point.
    pub auroc: Vec<f64>,
    /// Area under the curve (Simpson on `linspace(0, 1, n)`, FIRM's AULC), `None` without points.
    pub aulc: Option<f64>,
}

impl History {
    /// The learning curve and its AULC.
    pub fn learning_curve(&self) -> LearningCurve {
        let auroc: Vec<f64> = self.evals.iter().map(|e| e.auroc).collect();
        LearningCurve {
            epochs: self.evals.iter().map(|e| e.epoch).collect(),
            aulc: conad_eval::aulc(&auroc).ok(),
            auroc,
        }
    }
}

/// Summary of a [`crate::train`] call; also written to `RUN_DIR/report.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Method name.
    pub method: String,
    /// Epochs the config asks for.
    pub epochs_planned: u64,
    /// Epochs completed (over all sessions of the run).
    pub epochs_completed: u64,
    /// `true` when all epochs are done and `model.safetensors` was written.
    pub completed: bool,
    /// The epoch this session resumed from, if it resumed.
    pub resumed_from_epoch: Option<u64>,
    /// Mean loss of the last completed epoch.
    pub final_loss: Option<f64>,
    /// AUROC of the last online evaluation.
    pub final_auroc: Option<f64>,
    /// AULC of the learning curve.
    pub aulc: Option<f64>,
    /// Encoder images per second over this session's steps.
    pub images_per_second: Option<f64>,
    /// Wall-clock seconds of this session.
    pub wall_seconds: f64,
    /// Everything recorded (all sessions).
    pub history: History,
    /// The config and task the run was trained with (checked by [`crate::load_run`]).
    pub run: RunRecord,
}
