//! Pieces several methods share: the pool of shifted copies (FIRM's pre-expanded data set,
//! docs/reference.md §1.6: every normal image and its rotations as distinct items), its view-major
//! batches, and the two projection-head shapes.

use candle_core::Tensor;
use conad_augment::{Augmenter, Shift, ShiftedSample};
use conad_models::{LinearHead, LinearHeadConfig, MlpHead, MlpHeadConfig};
use serde::{Deserialize, Serialize};

use super::{BatchContext, BuildContext};
use crate::error::{Error, Result};

/// Shifted copies of the training images that enter the pool as distinct instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistributionShift {
    /// The pool is the training images.
    #[default]
    None,
    /// Every image plus its 90°, 180° and 270° rotations (FIRM's pooled data set, §1.6).
    Rotations,
}

impl DistributionShift {
    /// The shift of each copy, identity first.
    pub fn shifts(self) -> &'static [Shift] {
        match self {
            Self::None => &[Shift::Identity],
            Self::Rotations => &Shift::ROTATIONS,
        }
    }
}

/// Projection head shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectionKind {
    /// SimCLR/CSI/SupContrast: `Linear(d→d) → ReLU → Linear(d→128)` with biases.
    #[default]
    Simclr,
    /// FIRM's depth-8 head with batch norm, no biases (§1.6).
    Firm,
}

impl ProjectionKind {
    /// The head for an encoder with `feature_dim` outputs.
    pub fn head_config(self, feature_dim: usize) -> MlpHeadConfig {
        match self {
            Self::Simclr => MlpHeadConfig::simclr(feature_dim),
            Self::Firm => MlpHeadConfig::firm(feature_dim),
        }
    }
}

/// `views` views of the pool items `ctx.indices` under the run's augmenter, view-major
/// `(V·B, C, H, W)`; returns the tensor and each item's copy index (0 = the image itself,
/// `k` = the `k`-th shift of `shifts`).
///
/// # Errors
/// [`Error::PoolIndex`] for an item outside the pool; augmentation errors.
pub(crate) fn pool_views(
    ctx: &BatchContext<'_>,
    shifts: &[Shift],
    views: usize,
) -> Result<(Tensor, Vec<i64>)> {
    let n = ctx.indices.len();
    let images = ctx.images.len();
    let items: Vec<ShiftedSample> = ctx
        .indices
        .iter()
        .map(|&i| {
            shifts
                .get(i / images)
                .map(|&shift| ShiftedSample {
                    index: i % images,
                    shift,
                })
                .ok_or_else(|| Error::PoolIndex {
                    item: i,
                    pool: images * shifts.len(),
                })
        })
        .collect::<Result<_>>()?;
    let copies: Vec<i64> = ctx.indices.iter().map(|&i| (i / images) as i64).collect();
    let [c, h, w] = ctx.augmenter.view_shape(ctx.images, shifts)?;
    let mut buf = vec![0f32; views * n * c * h * w];
    if shifts.len() == 1 {
        ctx.augmenter.augment_batch_into(
            ctx.images,
            ctx.indices,
            ctx.step.epoch,
            views,
            &mut buf,
        )?;
    } else {
        ctx.augmenter
            .augment_items_into(ctx.images, &items, ctx.step.epoch, views, &mut buf)?;
    }
    let x = Tensor::from_vec(buf, (views * n, c, h, w), ctx.device)?;
    Ok((x, copies))
}

/// `V` views of every shift of every source image in `ctx.indices`, shift-expanded and
/// view-major: `(V·S·N, C, H, W)`, row `(v·S + s)·N + n` (CSI's and CON2's layout), under the
/// run's augmenter.
///
/// # Errors
/// Augmentation errors.
pub(crate) fn shifted_views(
    ctx: &BatchContext<'_>,
    shifts: &[Shift],
    views: usize,
) -> Result<Tensor> {
    shifted_views_with(ctx, ctx.augmenter, shifts, views)
}

/// As [`shifted_views`] under `augmenter` (a method's own pipeline, e.g. a UniCon-HA stage's).
///
/// # Errors
/// Augmentation errors.
pub(crate) fn shifted_views_with(
    ctx: &BatchContext<'_>,
    augmenter: &Augmenter,
    shifts: &[Shift],
    views: usize,
) -> Result<Tensor> {
    let n = ctx.indices.len();
    let [c, h, w] = augmenter.view_shape(ctx.images, shifts)?;
    let rows = views * shifts.len() * n;
    let mut buf = vec![0f32; rows * c * h * w];
    augmenter.augment_batch_shifted_into(
        ctx.images,
        ctx.indices,
        ctx.step.epoch,
        views,
        shifts,
        &mut buf,
    )?;
    Ok(Tensor::from_vec(buf, (rows, c, h, w), ctx.device)?)
}

/// Forward pass of a two-view pool batch: encoder (training mode) → `head` → L2 normalisation;
/// returns `(z, z¹, z²)` with `z` the `2B × d` view-major projections.
///
/// # Errors
/// Model errors.
pub(crate) fn project_two_views(
    encoder: &conad_models::ResNet,
    head: &conad_models::MlpHead,
    x: &Tensor,
    n: usize,
) -> Result<(Tensor, Tensor, Tensor)> {
    let features = encoder.features(x, true)?;
    let z = conad_losses::l2_normalize(&head.forward(&features, true)?, conad_losses::L2_EPS)?;
    let (z1, z2) = (z.narrow(0, 0, n)?, z.narrow(0, n, n)?);
    Ok((z, z1, z2))
}

/// CSI's two heads on the encoder (also MIL-Conv's): projection `Linear(d→d)–ReLU–Linear(d→out)`
/// under `heads.<projection>` and the rotation classifier `Linear(d→4)` under
/// `heads.<rotation>`.
pub(crate) fn projection_and_rotation_heads(
    ctx: &BuildContext<'_>,
    projection_dim: usize,
    projection: &str,
    rotation: &str,
) -> Result<(MlpHead, LinearHead)> {
    let d = ctx.encoder.feature_dim();
    let proj = MlpHead::new(
        &MlpHeadConfig {
            out_dim: projection_dim,
            ..MlpHeadConfig::simclr(d)
        },
        ctx.heads.pp(projection),
    )?;
    let rot = LinearHead::new(
        &LinearHeadConfig {
            in_dim: d,
            num_classes: Shift::ROTATIONS.len(),
            bias: true,
        },
        ctx.heads.pp(rotation),
    )?;
    Ok((proj, rot))
}

/// Checks the two sizes CSI-style methods share: the projection width and `T`, the random views
/// per image and rotation of the test-time ensemble (`what` names the method's convention).
pub(crate) fn validate_projection_and_ensemble(
    projection_dim: usize,
    score_ensemble: usize,
    what: &str,
) -> Result<()> {
    if projection_dim == 0 {
        return Err(Error::invalid("method.projection_dim", 0, "must be ≥ 1"));
    }
    if score_ensemble == 0 {
        return Err(Error::invalid(
            "method.score_ensemble",
            0,
            format!("must be ≥ 1 ({what})"),
        ));
    }
    Ok(())
}
