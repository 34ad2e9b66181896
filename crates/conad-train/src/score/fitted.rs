//! A fitted score: recipe + what it learnt from the normal training images.

use candle_core::{D, Device, Tensor};
use conad_augment::{ImageBatchU8, Shift};
use conad_models::ResNet;
use conad_scorers::{CsiScorer, CsiShiftFeatures, EmbeddingMatrix, FittedScorer, TtaEnsemble};
use serde::{Deserialize, Serialize};

use super::defs::{Output, ScoreDef, ScoreRecipe, ViewAugment, ViewSpec};
use super::extract::embed_view;
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::method::Method;

/// A frozen model as the scores see it.
#[derive(Clone, Copy, Debug)]
pub struct ScoringModel<'a> {
    /// The encoder; `None` for the raw-pixel method (features = the transformed pixels).
    pub encoder: Option<&'a ResNet>,
    /// The method with its heads.
    pub method: &'a dyn Method,
    /// The run's resolved config (seed, augmentation).
    pub config: &'a TrainConfig,
    /// Device of the model.
    pub device: &'a Device,
    /// Images per forward pass.
    pub batch_size: usize,
}

/// What a recipe learnt from the training images.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Fitted {
    /// One scorer per bank.
    Bank(TtaEnsemble<FittedScorer>),
    /// The CSI scorer.
    Csi(CsiScorer),
    /// Nothing to fit (shift likelihood).
    Nothing,
}

/// A score fitted on the normal training images of one run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FittedScore {
    /// Name of the score.
    pub score: String,
    /// Dimension of the embeddings the score works on (0 when it reads logits only).
    pub embedding_dim: usize,
    recipe: ScoreRecipe,
    fitted: Fitted,
}

/// Shift `k`'s logit column of a `rows × K` logit matrix.
fn column(m: &EmbeddingMatrix, k: usize, what: &str) -> Result<Vec<f32>> {
    if k >= m.cols() {
        return Err(Error::HeadWidth {
            head: what.to_string(),
            columns: m.cols(),
            needed: k,
        });
    }
    Ok((0..m.rows()).map(|i| m.row(i)[k]).collect())
}

/// Per shift: sample-major `(n·T) × d` projections and `n·T` logits of shift `k`'s class.
type CsiFeatures = Vec<(EmbeddingMatrix, Option<Vec<f32>>)>;

fn csi_features(
    model: &ScoringModel<'_>,
    images: &ImageBatchU8<'_>,
    projection: &str,
    shift_head: Option<&str>,
    shifts: &[Shift],
    ensemble: usize,
    crop_scale: f64,
) -> Result<CsiFeatures> {
    if ensemble == 0 || shifts.is_empty() {
        return Err(Error::invalid(
            "score.ensemble",
            format!("{} shifts, T = {ensemble}", shifts.len()),
            "the CSI score needs at least one shift and one view per image",
        ));
    }
    let proj = Output::Head(projection.to_string());
    let logit = shift_head.map(|h| Output::Head(h.to_string()));
    let mut out = Vec::with_capacity(shifts.len());
    for (k, &shift) in shifts.iter().enumerate() {
        let mut per_draw = Vec::with_capacity(ensemble);
        for t in 0..ensemble as u64 {
            let view = ViewSpec {
                shift,
                augment: ViewAugment::Train {
                    draw: t,
                    crop_scale: Some([crop_scale, crop_scale]),
                    per_image: true,
                },
            };
            let outputs: Vec<&Output> = std::iter::once(&proj).chain(logit.as_ref()).collect();
            per_draw.push(embed_view(model, images, &view, &outputs)?);
        }
        let n = images.len();
        let d = per_draw[0][0].cols();
        let mut rows = Vec::with_capacity(n * ensemble * d);
        for i in 0..n {
            for m in &per_draw {
                rows.extend_from_slice(m[0].row(i));
            }
        }
        // Sample-major like the projections: image i's T logits are contiguous.
        let logits = match shift_head {
            Some(h) => {
                let columns: Vec<Vec<f32>> = per_draw
                    .iter()
                    .map(|m| column(&m[1], k, h))
                    .collect::<Result<_>>()?;
                Some(
                    (0..n)
                        .flat_map(|i| columns.iter().map(move |c| c[i]))
                        .collect::<Vec<f32>>(),
                )
            }
            None => None,
        };
        out.push((EmbeddingMatrix::new(rows, n * ensemble, d)?, logits));
    }
    Ok(out)
}

/// Every image's `output` L2-normalised under each of `views` and averaged (`n × d`).
fn mean_features(
    model: &ScoringModel<'_>,
    images: &ImageBatchU8<'_>,
    views: &[ViewSpec],
    output: &Output,
) -> Result<EmbeddingMatrix> {
    let mut sum: Option<Vec<f32>> = None;
    let mut cols = 0;
    for view in views {
        let m = embed_view(model, images, view, &[output])?.remove(0);
        cols = m.cols();
        let acc = sum.get_or_insert_with(|| vec![0.0; m.rows() * cols]);
        for (i, dst) in acc.chunks_exact_mut(cols).enumerate() {
            let row = m.row(i);
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            for (d, v) in dst.iter_mut().zip(row) {
                *d += v / norm;
            }
        }
    }
    let data = sum.ok_or_else(|| {
        Error::invalid(
            "score.groups",
            "[]",
            "every feature-averaged group needs at least one view",
        )
    })?;
    let k = views.len() as f32;
    Ok(EmbeddingMatrix::new(
        data.into_iter().map(|v| v / k).collect(),
        images.len(),
        cols,
    )?)
}

/// Mean anomaly score over query views, each against its assigned bank.
fn score_bank(
    ensemble: &TtaEnsemble<FittedScorer>,
    views: &[(usize, conad_scorers::Embeddings<'_>)],
) -> Result<Vec<f64>> {
    Ok(ensemble
        .score_assigned(views)?
        .into_iter()
        .map(f64::from)
        .collect())
}

fn csi_views(features: &CsiFeatures) -> Vec<CsiShiftFeatures<'_>> {
    features
        .iter()
        .map(|(p, l)| CsiShiftFeatures {
            projections: p.view(),
            shift_logits: l.as_deref(),
        })
        .collect()
}

fn csi_params(ensemble: usize, logits: bool, balance: bool) -> conad_scorers::CsiParams {
    conad_scorers::CsiParams::default()
        .ensemble_size(ensemble)
        .use_shift_logits(logits)
        .balance(balance)
}

impl FittedScore {
    /// Fits `def` on the normal training images `train`.
    ///
    /// # Errors
    /// Embedding errors (a head the method lacks, a head asked of raw pixels), the scorers'
    /// fit errors (too few images, non-finite features).
    pub fn fit(model: &ScoringModel<'_>, def: &ScoreDef, train: &ImageBatchU8<'_>) -> Result<Self> {
        let mut embedding_dim = 0;
        let fitted = match &def.recipe {
            ScoreRecipe::Bank {
                output,
                banks,
                scorer,
                ..
            } => {
                let mut members = Vec::with_capacity(banks.len());
                for view in banks {
                    let bank = embed_view(model, train, view, &[output])?;
                    embedding_dim = bank[0].cols();
                    members.push(conad_scorers::Fit::fit(scorer, bank[0].view())?);
                }
                Fitted::Bank(TtaEnsemble::from_members(members)?)
            }
            ScoreRecipe::FeatureMean {
                output,
                groups,
                scorer,
            } => {
                let mut members = Vec::with_capacity(groups.len());
                for views in groups {
                    let bank = mean_features(model, train, views, output)?;
                    embedding_dim = bank.cols();
                    members.push(conad_scorers::Fit::fit(scorer, bank.view())?);
                }
                Fitted::Bank(TtaEnsemble::from_members(members)?)
            }
            ScoreRecipe::Csi {
                projection,
                shift_head,
                shifts,
                ensemble,
                crop_scale,
                balance,
            } => {
                let features = csi_features(
                    model,
                    train,
                    projection,
                    shift_head.as_deref(),
                    shifts,
                    *ensemble,
                    *crop_scale,
                )?;
                embedding_dim = features.first().map_or(0, |f| f.0.cols());
                Fitted::Csi(
                    csi_params(*ensemble, shift_head.is_some(), *balance)
                        .fit(&csi_views(&features))?,
                )
            }
            ScoreRecipe::ShiftLikelihood { .. } => Fitted::Nothing,
        };
        Ok(Self {
            score: def.name.to_string(),
            embedding_dim,
            recipe: def.recipe.clone(),
            fitted,
        })
    }

    /// True when the score is a scorer over the encoder features of the test view alone (kNN,
    /// Gaussian, KDE, … on `Output::Encoder`): then [`FittedScore::score_encoder_features`]
    /// scores features computed once for other uses too.
    pub fn reads_encoder_test_features(&self) -> bool {
        let test = ViewSpec::test(Shift::Identity);
        matches!(
            (&self.recipe, &self.fitted),
            (ScoreRecipe::Bank { output: Output::Encoder, banks, queries, .. }, Fitted::Bank(_))
                if banks.as_slice() == [test.clone()] && queries.as_slice() == [(test, 0)]
        )
    }

    /// Scores encoder features of the test view (see
    /// [`FittedScore::reads_encoder_test_features`]).
    ///
    /// # Errors
    /// [`Error::FittedScoreRecipeMismatch`] for another recipe; scorer errors.
    pub fn score_encoder_features(&self, features: &EmbeddingMatrix) -> Result<Vec<f64>> {
        match &self.fitted {
            Fitted::Bank(ensemble) if self.reads_encoder_test_features() => {
                score_bank(ensemble, &[(0, features.view())])
            }
            _ => Err(Error::FittedScoreRecipeMismatch {
                score: self.score.clone(),
            }),
        }
    }

    /// Anomaly scores (higher = more anomalous) of `images`, one per image.
    ///
    /// # Errors
    /// Embedding and scoring errors; [`Error::FittedScoreRecipeMismatch`] if the fitted state does not match
    /// the recipe (a corrupted detector).
    pub fn score(&self, model: &ScoringModel<'_>, images: &ImageBatchU8<'_>) -> Result<Vec<f64>> {
        match (&self.recipe, &self.fitted) {
            (
                ScoreRecipe::Bank {
                    output, queries, ..
                },
                Fitted::Bank(ensemble),
            ) => {
                let embedded: Vec<(usize, EmbeddingMatrix)> = queries
                    .iter()
                    .map(|(view, bank)| {
                        Ok((*bank, embed_view(model, images, view, &[output])?.remove(0)))
                    })
                    .collect::<Result<_>>()?;
                let views: Vec<_> = embedded.iter().map(|(b, m)| (*b, m.view())).collect();
                score_bank(ensemble, &views)
            }
            (ScoreRecipe::FeatureMean { output, groups, .. }, Fitted::Bank(ensemble)) => {
                let embedded: Vec<EmbeddingMatrix> = groups
                    .iter()
                    .map(|views| mean_features(model, images, views, output))
                    .collect::<Result<_>>()?;
                let views: Vec<_> = embedded
                    .iter()
                    .enumerate()
                    .map(|(g, m)| (g, m.view()))
                    .collect();
                score_bank(ensemble, &views)
            }
            (
                ScoreRecipe::Csi {
                    projection,
                    shift_head,
                    shifts,
                    ensemble,
                    crop_scale,
                    ..
                },
                Fitted::Csi(scorer),
            ) => {
                let features = csi_features(
                    model,
                    images,
                    projection,
                    shift_head.as_deref(),
                    shifts,
                    *ensemble,
                    *crop_scale,
                )?;
                Ok(scorer
                    .score_batch(&csi_views(&features))?
                    .into_iter()
                    .map(f64::from)
                    .collect())
            }
            (ScoreRecipe::ShiftLikelihood { head, shifts }, Fitted::Nothing) => {
                let out = Output::Head(head.clone());
                let mut total = vec![0f64; images.len()];
                for (k, &shift) in shifts.iter().enumerate() {
                    let logits = embed_view(model, images, &ViewSpec::test(shift), &[&out])?;
                    let m = &logits[0];
                    let t = Tensor::from_slice(m.as_slice(), (m.rows(), m.cols()), &Device::Cpu)?;
                    let log_p = candle_nn::ops::log_softmax(
                        &t.to_dtype(candle_core::DType::F64)?,
                        D::Minus1,
                    )?;
                    let col = log_p
                        .narrow(1, k, 1)
                        .map_err(|_| Error::HeadWidth {
                            head: format!("head `{head}`"),
                            columns: m.cols(),
                            needed: k,
                        })?
                        .flatten_all()?
                        .to_vec1::<f64>()?;
                    for (s, v) in total.iter_mut().zip(col) {
                        // Anomaly score: minus the summed log-likelihood of the true shifts.
                        *s -= v;
                    }
                }
                Ok(total)
            }
            _ => Err(Error::FittedScoreRecipeMismatch {
                score: self.score.clone(),
            }),
        }
    }
}
