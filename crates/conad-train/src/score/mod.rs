//! Test-time scores owned by the methods (docs/reference.md §2): a [`ScoreDef`] names a score and its
//! [`ScoreRecipe`] — which views of the images to embed, which output (encoder features or a
//! head), and how to turn them into one anomaly score per image. A [`FittedScore`] is a recipe fitted
//! on the normal training images with a frozen model; the trainer's online evaluation,
//! `conad eval` and `cargo xtask reproduce` all go through [`FittedScore::fit`] and [`FittedScore::score`].
//!
//! Every score returned is an **anomaly score** (higher = more anomalous), as in
//! `conad-scorers`.
//!
//! | recipe | what | docs/reference.md |
//! |---|---|---|
//! | [`ScoreRecipe::Bank`] | features of the training images under each bank view; each query view scored by a `conad-scorers` scorer against its bank; mean over query views | §2.2 kNN, §2.3 S_rot / S_ens / CON2 TTA, §2.6 S_NND / S_LH, §2.7–2.10 |
//! | [`ScoreRecipe::FeatureMean`] | features L2-normalised and averaged over each group's views (training and test images alike); each group scored against its own mean bank; mean over groups | §2.3 UniCon-HA TTA |
//! | [`ScoreRecipe::Csi`] | projection and shift logits of T random views × K shifts; CSI score with λ balancing | §2.4, §2.5 |
//! | [`ScoreRecipe::ShiftLikelihood`] | `−Σ_k log softmax(head(shift_k x))_k` | §1.9 |

mod defs;
mod extract;
mod fitted;

pub use defs::{Output, ScoreDef, ScoreRecipe, ViewAugment, ViewSpec, standard_scores};
pub(crate) use defs::{encoder_bank, with_standard};
pub(crate) use extract::embed_view;
pub use fitted::{FittedScore, ScoringModel};
