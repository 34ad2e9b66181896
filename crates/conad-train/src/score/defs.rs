//! Score definitions: names, recipes and the standard encoder-feature scores every trained
//! method offers.

use conad_augment::Shift;
use conad_scorers::{
    CenterParams, GaussianParams, KdeParams, KnnParams, MahalanobisParams, OcSvmKernel,
    OcSvmParams, ScorerConfig,
};
use serde::{Deserialize, Serialize};

/// Which output of the frozen model a recipe embeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// The encoder's pooled features (raw pixels for the raw-pixel method).
    Encoder,
    /// A head of the method on the encoder features (eval mode), by name.
    Head(String),
}

/// How the images of one view are augmented before the model sees them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ViewAugment {
    /// The run's deterministic test transform.
    Test,
    /// The run's training pipeline, draw `draw`, reproducible on every call. With
    /// `per_image` the parameters are keyed `seed → "tta" → draw → 0 → image → 0`: a training
    /// and a test image with the same index share them, other images differ (CSI's sampling
    /// ensemble, which resets the seed before each pass, §2.4; docs/reference.md §2.3's reading of
    /// CON2). Without it, draw `draw` is **one** transformation — the same crop box, jitter
    /// factors and flips for every image (CON2 eq. 12: `t(x)` against `t(X_train)`, §6.3
    /// "sampled once per run"). With `crop_scale`, every `RandomResizedCrop` of the pipeline
    /// uses that area range (CSI's evaluation crops fix it to 0.54, §2.4).
    Train {
        /// Index of the draw.
        draw: u64,
        /// Area range replacing the pipeline's crop scale.
        #[serde(default)]
        crop_scale: Option<[f64; 2]>,
        /// Parameters per image index (`true`) or shared by all images (`false`).
        #[serde(default = "yes")]
        per_image: bool,
    },
    /// FIRM's crop ensemble (§2.3, §6.11): the test transform followed by
    /// `RandomResizedCrop(side, scale (0.55, 1), ratio 1:1)` (before the shift slot and the
    /// normalisation), draw `draw`.
    TestCrop {
        /// Index of the draw.
        draw: u64,
    },
}

fn yes() -> bool {
    true
}

/// One view: a shifting / context transform, then an augmentation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewSpec {
    /// Shift (rotation, context transform) applied where the pipeline's shift slot is (first
    /// without a slot).
    pub shift: Shift,
    /// The augmentation.
    pub augment: ViewAugment,
}

impl ViewSpec {
    /// The deterministic test view under `shift`.
    pub const fn test(shift: Shift) -> Self {
        Self {
            shift,
            augment: ViewAugment::Test,
        }
    }
}

/// How to turn a frozen model into one anomaly score per image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "recipe", rename_all = "snake_case")]
pub enum ScoreRecipe {
    /// Bank `b` = the training images under `banks[b]`; query `(view, b)` = the test images
    /// under `view`, scored by `scorer` fitted on bank `b`; the score is the mean over queries.
    Bank {
        /// What is embedded.
        output: Output,
        /// One view per training bank.
        banks: Vec<ViewSpec>,
        /// Query views with the bank each is scored against.
        queries: Vec<(ViewSpec, usize)>,
        /// The scorer fitted on each bank.
        scorer: ScorerConfig,
    },
    /// Feature-averaged test-time augmentation (CSI's "ensemble of representations", which
    /// UniCon-HA follows, §2.3): for group `g`, every image's `output` is L2-normalised under
    /// each view of `groups[g]` and averaged; `scorer` is fitted on the training images' mean
    /// features of group `g` and scores the test images' mean features of the same group; the
    /// score is the mean over groups.
    FeatureMean {
        /// What is embedded.
        output: Output,
        /// Views averaged per group (training and test images alike).
        groups: Vec<Vec<ViewSpec>>,
        /// The scorer fitted on each group's mean training features.
        scorer: ScorerConfig,
    },
    /// The CSI detection score (§2.4–2.5): for each shift k and draw t < `ensemble`, the
    /// projection head's output and the shift head's logit of class k on the training pipeline
    /// with crop area fixed to `crop_scale`.
    Csi {
        /// Head giving the (un-normalised) projections.
        projection: String,
        /// Head giving the shift logits (`None`: the "simclr" score without `s_cls`).
        shift_head: Option<String>,
        /// Shifts, in the shift head's class order.
        shifts: Vec<Shift>,
        /// T, random views per image and shift.
        ensemble: usize,
        /// The fixed crop area (CSI: 0.54).
        crop_scale: f64,
        /// λ balancing from the training set (off: all λ = 1).
        balance: bool,
    },
    /// `−Σ_k log softmax(head(shift_k(x)))_k` on the test transform (RotNet, §1.9).
    ShiftLikelihood {
        /// Head giving one logit per shift.
        head: String,
        /// Shifts, in the head's class order.
        shifts: Vec<Shift>,
    },
}

/// A named test-time score of a method.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreDef {
    /// Name used on the command line (`conad eval --score NAME`).
    pub name: &'static str,
    /// One line: what it is and where it comes from.
    pub summary: &'static str,
    /// How it is computed.
    pub recipe: ScoreRecipe,
}

/// The encoder features under the test transform, `scorer` fitted on the training images.
pub(crate) fn encoder_bank(scorer: ScorerConfig) -> ScoreRecipe {
    ScoreRecipe::Bank {
        output: Output::Encoder,
        banks: vec![ViewSpec::test(Shift::Identity)],
        queries: vec![(ViewSpec::test(Shift::Identity), 0)],
        scorer,
    }
}

fn knn(k: usize) -> ScorerConfig {
    ScorerConfig::Knn(KnnParams::default().k(k))
}

impl ScoreDef {
    /// `knn` with `k` neighbours (the online evaluation's default score; `k = 1` is
    /// [`ScoreDef::knn1`]).
    pub fn knn(k: usize) -> Self {
        Self {
            recipe: encoder_bank(knn(k)),
            ..Self::knn1()
        }
    }

    /// `knn`: max cosine to the normal training features (k = 1; S_cos with k = 1, CON2's
    /// "SimCLR (kNN)", docs/reference.md §2.2, §6.22).
    pub fn knn1() -> Self {
        Self {
            name: "knn",
            summary: "1 − max cosine of the encoder feature to the training features (S_cos, k = 1; §2.2)",
            recipe: encoder_bank(knn(1)),
        }
    }

    /// `knn5`: mean cosine to the 5 nearest training features (FIRM's primary S_cos, §6.9).
    pub fn knn5() -> Self {
        Self {
            name: "knn5",
            summary: "1 − mean cosine to the 5 nearest training features (FIRM's S_cos, k = 5; §2.2, §6.9)",
            recipe: encoder_bank(knn(5)),
        }
    }

    /// `knn2`: mean cosine to the 2 nearest training features (MSC's score: the sum of squared
    /// distances to the 2 nearest unit vectors ranks the same, §1.8, §2.2).
    pub fn knn2() -> Self {
        Self {
            name: "knn2",
            summary: "1 − mean cosine to the 2 nearest training features (MSC's kNN distance; §1.8, §2.2)",
            recipe: encoder_bank(knn(2)),
        }
    }

    /// `rot_knn`: FIRM's rotation ensemble S_rot with k = 1 (§2.3): each rotation of the test
    /// image against the same-rotation training bank, averaged over the four rotations.
    pub fn rotation_knn() -> Self {
        let views: Vec<ViewSpec> = Shift::ROTATIONS
            .iter()
            .map(|&s| ViewSpec::test(s))
            .collect();
        Self {
            name: "rot_knn",
            summary: "S_rot: kNN (k = 1) per rotation against the same-rotation bank, mean over 4 rotations (§2.3)",
            recipe: ScoreRecipe::Bank {
                output: Output::Encoder,
                queries: views.iter().cloned().zip(0..).collect(),
                banks: views,
                scorer: knn(1),
            },
        }
    }

    /// `ens`: FIRM's crop ensemble S_ens (§2.3): 10 random crops × 4 rotations of each test
    /// image, each against the same-rotation bank of deterministic training views.
    pub fn crop_ensemble() -> Self {
        let banks: Vec<ViewSpec> = Shift::ROTATIONS
            .iter()
            .map(|&s| ViewSpec::test(s))
            .collect();
        let queries = (0..4usize)
            .flat_map(|r| {
                (0..10u64).map(move |t| {
                    (
                        ViewSpec {
                            shift: Shift::ROTATIONS[r],
                            augment: ViewAugment::TestCrop { draw: t },
                        },
                        r,
                    )
                })
            })
            .collect();
        Self {
            name: "ens",
            summary: "S_ens: kNN (k = 1) of 10 crops × 4 rotations against the same-rotation bank (§2.3)",
            recipe: ScoreRecipe::Bank {
                output: Output::Encoder,
                banks,
                queries,
                scorer: knn(1),
            },
        }
    }

    /// UniCon-HA's test-time ensemble (§2.3, §6.8): `draws` random views of the training
    /// pipeline per rotation, crop area `crop_scale` (CSI's 0.54), per-image parameters;
    /// `features = true` averages the normalised encoder features over a rotation's views and
    /// takes the max cosine to the same-rotation mean training features (the paper: "an
    /// ensemble of representations" following CSI); `false` averages the per-view max-cosine
    /// scores against the same-rotation bank of deterministic training views instead
    /// (docs/reference.md §6.8's reading). The mean over the four rotations either way.
    pub fn rotation_tta(
        name: &'static str,
        summary: &'static str,
        draws: u64,
        crop_scale: f64,
        features: bool,
    ) -> Self {
        let view = |shift: Shift, draw: u64| ViewSpec {
            shift,
            augment: ViewAugment::Train {
                draw,
                crop_scale: Some([crop_scale, crop_scale]),
                per_image: true,
            },
        };
        let recipe = if features {
            ScoreRecipe::FeatureMean {
                output: Output::Encoder,
                groups: Shift::ROTATIONS
                    .iter()
                    .map(|&s| (0..draws).map(|t| view(s, t)).collect())
                    .collect(),
                scorer: knn(1),
            }
        } else {
            ScoreRecipe::Bank {
                output: Output::Encoder,
                banks: Shift::ROTATIONS
                    .iter()
                    .map(|&s| ViewSpec::test(s))
                    .collect(),
                queries: Shift::ROTATIONS
                    .iter()
                    .enumerate()
                    .flat_map(|(r, &s)| (0..draws).map(move |t| (view(s, t), r)))
                    .collect(),
                scorer: knn(1),
            }
        };
        Self {
            name,
            summary,
            recipe,
        }
    }

    /// CON2's test-time-augmentation ensemble (eq. 16, §2.3, §6.3): `draws` content
    /// augmentations of the training pipeline, the first half on `x`, the second half on
    /// `context(x)`; each scored against the training set under the same augmentation (and the
    /// same context). `per_image`: see [`ViewAugment::Train`].
    pub fn tta(
        name: &'static str,
        summary: &'static str,
        context: Shift,
        draws: u64,
        per_image: bool,
        scorer: ScorerConfig,
    ) -> Self {
        let views: Vec<ViewSpec> = (0..draws)
            .map(|i| ViewSpec {
                shift: if i < draws / 2 {
                    Shift::Identity
                } else {
                    context
                },
                augment: ViewAugment::Train {
                    draw: i,
                    crop_scale: None,
                    per_image,
                },
            })
            .collect();
        Self {
            name,
            summary,
            recipe: ScoreRecipe::Bank {
                output: Output::Encoder,
                queries: views.iter().cloned().zip(0..).collect(),
                banks: views,
                scorer,
            },
        }
    }
}

/// The encoder-feature scores every trained method offers besides its own (docs/reference.md §2):
/// `knn`, `knn5`, `rot_knn`, `ens`, `kde`, `center`, `gaussian`, `mahalanobis`, `ocsvm_linear`.
pub fn standard_scores() -> Vec<ScoreDef> {
    vec![
        ScoreDef::knn1(),
        ScoreDef::knn5(),
        ScoreDef::rotation_knn(),
        ScoreDef::crop_ensemble(),
        ScoreDef {
            name: "kde",
            summary: "RBF KDE on normalised features, γ = 10/(Var·d) (DROC/FIRM; §2.7)",
            recipe: encoder_bank(ScorerConfig::Kde(KdeParams::default())),
        },
        ScoreDef {
            name: "center",
            summary: "1 − cosine to the normalised mean training feature (FIRM; §2.9)",
            recipe: encoder_bank(ScorerConfig::Center(CenterParams::default())),
        },
        ScoreDef {
            name: "gaussian",
            summary: "−log N with Ledoit–Wolf covariance on normalised features (S_LH without TTA; §2.6)",
            recipe: encoder_bank(ScorerConfig::Gaussian(GaussianParams::default())),
        },
        ScoreDef {
            name: "mahalanobis",
            summary: "SSD: squared Mahalanobis distance on standardised normalised features (§2.10)",
            recipe: encoder_bank(ScorerConfig::Mahalanobis(MahalanobisParams::default())),
        },
        ScoreDef {
            name: "ocsvm_linear",
            summary: "linear one-class SVM on the raw encoder features, ν = 0.5 (DROC/FIRM LOC-SVM; §2.8)",
            recipe: encoder_bank(ScorerConfig::Ocsvm(
                OcSvmParams::default().kernel(OcSvmKernel::Linear),
            )),
        },
    ]
}

/// `first` followed by the standard scores that do not share a name with it.
pub(crate) fn with_standard(first: Vec<ScoreDef>) -> Vec<ScoreDef> {
    let mut out = first;
    for s in standard_scores() {
        if out.iter().all(|o| o.name != s.name) {
            out.push(s);
        }
    }
    out
}
