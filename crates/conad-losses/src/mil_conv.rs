//! MIL-Conv: multi-instance learning with convex representations on contaminated data ("Learn
//! Discrimination from Contaminated Data: Multi-Instance Learning with Convex Representation for
//! Unsupervised Anomaly Detection", eqs. 2 (scores), 4 (sampling), 5 (convex
//! representation), 6 (L_Conv) and 10 (total); docs/reference.md §1.8, §6.16–6.18).
//!
//! Per batch of `N` L2-normalised features `Z`:
//!
//! 1. **Pseudo-normality scores** ([`pseudo_normality_scores`]): `s_i = (1/K) Σ_{j∈N_K(i)} z_i·z_j`
//!    over the `K` most similar *other* rows (K = 5). No gradient.
//! 2. **Soft sampling** ([`soft_sampling`]): the `⌈0.1·N⌉` rows with the lowest `s` form the
//!    abnormal candidates `S_a`, the rest `S_n`. [`SamplingRule::Literal`] (eq. 4, the default):
//!    `p⁺ ∝ s` on `S_n`, `p⁻ ∝ s` on `S_a`; eq. 4 is undefined for `s ≤ 0` (a cosine can be
//!    negative), where conad gives the row probability 0 (uniform if no row of the set has
//!    `s > 0`). [`SamplingRule::Shifted`] (docs/reference.md §6.16's reading): `s' = (s + 1)/2`,
//!    `p⁺ ∝ s'` on `S_n`, `p⁻ ∝ 1 − s'` on `S_a` (favouring isolated rows).
//! 3. **Convex representations** ([`draw_combinations`]): `z = normalise(Σ_{k=1..C} w_k z_{x_k})`
//!    with `x_k` drawn with replacement from `p` and `w ~ Dirichlet(1,…,1)` (uniform on the
//!    simplex, [`dirichlet_uniform`]); C = 4. Every draw comes from the caller's RNG (a
//!    `conad_rng::SeedTree` stream), so a seed fixes the loss bit for bit.
//! 4. **L_Conv** (eq. 6, [`conv_loss`]) over `M` triplets (M = N) of independent combinations
//!    `z⁺_i, z⁺_j ~ p⁺`, `z⁻_k ~ p⁻`:
//!    `−log( e^{z⁺_i·z⁺_j/τ} / (e^{z⁺_i·z⁺_j/τ} + e^{z⁺_i·z⁻_k/τ}) )`, τ = 1 (eq. 6 has no
//!    temperature; τ = 0.5 is docs/reference.md §6.17's reading). Gradients flow through the sampled features; `s`, `p` and the
//!    sampling are constants.
//!
//! Total objective (eq. 10): `L = L_Conv + λ₁ L_Mean + λ₂ L_Rot` ([`MilConv::total`]) with
//! `L_Mean` = [`crate::Msc`] on CSI's 8N re-centred views and `L_Rot` = [`crate::RotationCe`];
//! λ₁ = λ₂ = 1.

use candle_core::{D, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::checks::{host_f64, matrix, upload, weight};
use crate::error::{Error, Result, check_temperature};
use crate::info_nce::ensure_finite;
use crate::normalize::{L2_EPS, l2_normalize};

/// How sampling probabilities follow from the scores (docs/reference.md §6.16).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingRule {
    /// `p⁺ ∝ s` on `S_n`, `p⁻ ∝ s` on `S_a` (eq. 4); rows with `s ≤ 0` get probability 0,
    /// a set without a positive score is sampled uniformly.
    #[default]
    Literal,
    /// `s' = (s+1)/2`; `p⁺ ∝ s'` on `S_n`, `p⁻ ∝ 1 − s'` on `S_a`; all-zero weights → uniform.
    Shifted,
}

/// Configuration of [`MilConv`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MilConvConfig {
    /// `K` neighbours of the pseudo-normality score (5).
    pub neighbours: usize,
    /// Fraction of the batch in `S_a` (0.1; `|S_a| = ⌈fraction·N⌉`, at least 1, at most N − 1).
    pub abnormal_fraction: f64,
    /// `C`, instances per convex combination (4).
    pub instances_per_combination: usize,
    /// `M`, triplets per batch (`None`: M = N).
    pub triplets: Option<usize>,
    /// τ of L_Conv (1 = eq. 6 literally; 0.5 = docs/reference.md §6.17).
    pub temperature: f64,
    /// Sampling probabilities.
    pub sampling: SamplingRule,
    /// λ₁, weight of L_Mean in [`MilConv::total`] (1).
    pub mean_weight: f64,
    /// λ₂, weight of L_Rot in [`MilConv::total`] (1).
    pub rot_weight: f64,
}

impl Default for MilConvConfig {
    fn default() -> Self {
        Self {
            neighbours: 5,
            abnormal_fraction: 0.1,
            instances_per_combination: 4,
            triplets: None,
            temperature: 1.0,
            sampling: SamplingRule::Literal,
            mean_weight: 1.0,
            rot_weight: 1.0,
        }
    }
}

impl MilConvConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`], [`Error::InvalidTemperature`].
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value: String, reason: &str| Err(Error::invalid(field, value, reason));
        if self.neighbours == 0 {
            return bad(
                "neighbours",
                "0".into(),
                "K ≥ 1 (docs/reference.md §6.16: 5)",
            );
        }
        if !(self.abnormal_fraction > 0.0 && self.abnormal_fraction < 1.0) {
            return bad(
                "abnormal_fraction",
                self.abnormal_fraction.to_string(),
                "must lie in (0, 1) (the paper: 0.1)",
            );
        }
        if self.instances_per_combination == 0 {
            return bad("instances_per_combination", "0".into(), "C ≥ 1 (4)");
        }
        if self.triplets == Some(0) {
            return bad("triplets", "0".into(), "M ≥ 1, or None for M = N");
        }
        check_temperature("temperature", self.temperature)?;
        weight("mean_weight", self.mean_weight)?;
        weight("rot_weight", self.rot_weight)
    }
}

/// `s_i`: mean cosine similarity to the `k` most similar other rows (host values, no gradient).
///
/// # Shapes
/// `z`: `N × D` L2-normalised → `N` scores.
///
/// # Errors
/// [`Error::Shape`]; [`Error::BatchTooSmall`] if `N < k + 1`; [`Error::NonFiniteInput`].
pub fn pseudo_normality_scores(z: &Tensor, k: usize) -> Result<Vec<f64>> {
    let (n, _) = matrix(z, "features")?;
    if k == 0 || n < k + 1 {
        return Err(Error::BatchTooSmall {
            rows: n,
            reason: format!("K = {k} neighbours need K ≥ 1 and at least K + 1 rows"),
        });
    }
    host_f64(z, "features")?;
    let gram = host_f64(
        &z.detach().matmul(&z.detach().t()?)?,
        "feature similarities",
    )?;
    Ok((0..n)
        .map(|i| {
            let mut sims: Vec<f64> = (0..n)
                .filter(|&j| j != i)
                .map(|j| gram[i * n + j])
                .collect();
            sims.sort_by(|a, b| b.total_cmp(a));
            sims[..k].iter().sum::<f64>() / k as f64
        })
        .collect())
}

/// The split into normal/abnormal candidates and the sampling probabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftSampling {
    /// Rows of `S_n` (ascending score order).
    pub normal: Vec<usize>,
    /// Rows of `S_a` (the lowest scores, ascending).
    pub abnormal: Vec<usize>,
    /// `p⁺` over `normal` (sums to 1).
    pub p_positive: Vec<f64>,
    /// `p⁻` over `abnormal` (sums to 1).
    pub p_negative: Vec<f64>,
}

/// Splits the batch by score and computes `p⁺`, `p⁻` (see the module docs). Ties are broken by
/// row index.
///
/// # Errors
/// [`Error::BatchTooSmall`] for fewer than 2 rows; [`Error::NonFiniteInput`] for a NaN score;
/// [`Error::InvalidConfig`] for a fraction outside (0, 1).
pub fn soft_sampling(
    scores: &[f64],
    abnormal_fraction: f64,
    rule: SamplingRule,
) -> Result<SoftSampling> {
    let n = scores.len();
    if n < 2 {
        return Err(Error::BatchTooSmall {
            rows: n,
            reason: "soft sampling needs ≥ 1 normal and ≥ 1 abnormal candidate".into(),
        });
    }
    if !(abnormal_fraction > 0.0 && abnormal_fraction < 1.0) {
        return Err(Error::invalid(
            "abnormal_fraction",
            abnormal_fraction,
            "must lie in (0, 1)",
        ));
    }
    if let Some((index, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(Error::NonFiniteInput {
            what: "pseudo-normality scores",
            index,
            value,
        });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    let n_a = ((abnormal_fraction * n as f64).ceil() as usize).clamp(1, n - 1);
    let abnormal = order[..n_a].to_vec();
    let normal = order[n_a..].to_vec();
    let probs = |set: &[usize], f: &dyn Fn(f64) -> f64| -> Vec<f64> {
        let w: Vec<f64> = set.iter().map(|&r| f(scores[r]).max(0.0)).collect();
        let total: f64 = w.iter().sum();
        if total > 0.0 {
            w.iter().map(|x| x / total).collect()
        } else {
            vec![1.0 / set.len() as f64; set.len()]
        }
    };
    let (p_positive, p_negative) = match rule {
        SamplingRule::Literal => (probs(&normal, &|s| s), probs(&abnormal, &|s| s)),
        SamplingRule::Shifted => {
            let shifted = |s: f64| ((s + 1.0) / 2.0).clamp(0.0, 1.0);
            (
                probs(&normal, &shifted),
                probs(&abnormal, &|s| 1.0 - shifted(s)),
            )
        }
    };
    Ok(SoftSampling {
        normal,
        abnormal,
        p_positive,
        p_negative,
    })
}

/// `c` weights uniform on the probability simplex (Dirichlet(1,…,1)): `c` standard
/// exponentials `−ln(1 − u)` normalised by their sum.
pub fn dirichlet_uniform<R: Rng + ?Sized>(rng: &mut R, c: usize) -> Vec<f64> {
    let e: Vec<f64> = (0..c).map(|_| -(1.0 - rng.random::<f64>()).ln()).collect();
    let total: f64 = e.iter().sum();
    if total > 0.0 {
        e.iter().map(|x| x / total).collect()
    } else {
        vec![1.0 / c as f64; c]
    }
}

/// Categorical draw over `rows` with probabilities `p` (sum 1).
fn draw<R: Rng + ?Sized>(rng: &mut R, rows: &[usize], p: &[f64]) -> usize {
    let u = rng.random::<f64>();
    let mut acc = 0.0;
    for (&r, &pi) in rows.iter().zip(p) {
        acc += pi;
        if u < acc {
            return r;
        }
    }
    rows[rows.len() - 1]
}

/// Convex-combination weights of `M` triplets over the `N` batch rows (row-major `M × N`).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvexCombinations {
    /// Triplets `M`.
    pub triplets: usize,
    /// Batch rows `N`.
    pub rows: usize,
    /// Weights of `z⁺_i` (each row sums to 1, support in `S_n`).
    pub positive_a: Vec<f64>,
    /// Weights of `z⁺_j` (independent of `positive_a`).
    pub positive_b: Vec<f64>,
    /// Weights of `z⁻_k` (support in `S_a`).
    pub negative: Vec<f64>,
}

/// Draws `m` triplets of convex combinations of `c` instances each. Draw order per triplet:
/// `z⁺_i` (c rows, then c Dirichlet weights), `z⁺_j`, `z⁻_k`.
pub fn draw_combinations<R: Rng + ?Sized>(
    sampling: &SoftSampling,
    rows: usize,
    m: usize,
    c: usize,
    rng: &mut R,
) -> ConvexCombinations {
    let mut out = ConvexCombinations {
        triplets: m,
        rows,
        positive_a: vec![0.0; m * rows],
        positive_b: vec![0.0; m * rows],
        negative: vec![0.0; m * rows],
    };
    for t in 0..m {
        for (target, set, p) in [
            (&mut out.positive_a, &sampling.normal, &sampling.p_positive),
            (&mut out.positive_b, &sampling.normal, &sampling.p_positive),
            (&mut out.negative, &sampling.abnormal, &sampling.p_negative),
        ] {
            let picks: Vec<usize> = (0..c).map(|_| draw(rng, set, p)).collect();
            let w = dirichlet_uniform(rng, c);
            for (r, wk) in picks.into_iter().zip(w) {
                target[t * rows + r] += wk;
            }
        }
    }
    out
}

/// L_Conv (eq. 6) of given convex combinations of the rows of `z`, mean over triplets.
///
/// # Shapes
/// `z`: `N × D` L2-normalised; combinations `M × N` → scalar.
///
/// # Errors
/// [`Error::Shape`] if the combinations do not match `N`; [`Error::InvalidTemperature`];
/// [`Error::NonFiniteLoss`].
pub fn conv_loss(z: &Tensor, comb: &ConvexCombinations, temperature: f64) -> Result<Tensor> {
    check_temperature("temperature", temperature)?;
    let (n, _) = matrix(z, "features")?;
    let m = comb.triplets;
    if comb.rows != n
        || m == 0
        || [&comb.positive_a, &comb.positive_b, &comb.negative]
            .iter()
            .any(|w| w.len() != m * n)
    {
        return Err(Error::Shape {
            what: "convex combinations",
            got: vec![comb.triplets, comb.rows],
            expected: format!("M × {n} weights (M ≥ 1) for {n} feature rows"),
        });
    }
    let combine = |w: &Vec<f64>| -> Result<Tensor> {
        l2_normalize(&upload(w.clone(), (m, n), z)?.matmul(z)?, L2_EPS)
    };
    let (za, zb, zk) = (
        combine(&comb.positive_a)?,
        combine(&comb.positive_b)?,
        combine(&comb.negative)?,
    );
    let pos = ((&za * &zb)?.sum(D::Minus1)? / temperature)?;
    let neg = ((&za * &zk)?.sum(D::Minus1)? / temperature)?;
    // −log(e^x / (e^x + e^y)) = lse(x, y) − x, stabilised by the detached max.
    let mx = pos.detach().maximum(&neg.detach())?;
    let lse = ((pos.broadcast_sub(&mx)?.exp()? + neg.broadcast_sub(&mx)?.exp()?)?.log()? + &mx)?;
    ensure_finite("L_Conv", (lse - pos)?.mean_all()?)
}

/// The parts of an L_Conv evaluation.
#[derive(Clone, Debug)]
pub struct MilConvParts {
    /// L_Conv.
    pub loss: Tensor,
    /// Pseudo-normality scores `s`.
    pub scores: Vec<f64>,
    /// Split and probabilities.
    pub sampling: SoftSampling,
    /// The drawn combinations.
    pub combinations: ConvexCombinations,
}

/// MIL-Conv's L_Conv with its sampling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MilConv {
    config: MilConvConfig,
}

impl MilConv {
    /// A validated objective.
    ///
    /// # Errors
    /// As [`MilConvConfig::validate`].
    pub fn new(config: MilConvConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The config.
    pub fn config(&self) -> &MilConvConfig {
        &self.config
    }

    /// L_Conv (see [`MilConv::forward_parts`]).
    ///
    /// # Errors
    /// As [`MilConv::forward_parts`].
    pub fn forward<R: Rng + ?Sized>(&self, z: &Tensor, rng: &mut R) -> Result<Tensor> {
        Ok(self.forward_parts(z, rng)?.loss)
    }

    /// Scores, sampling, combinations and L_Conv of one batch; every draw from `rng`
    /// (e.g. `SeedTree::new(seed).child("mil_conv").index(step).rng()`).
    ///
    /// # Shapes
    /// `z`: `N × D` L2-normalised features → scalar.
    ///
    /// # Errors
    /// [`Error::BatchTooSmall`] if `N < K + 1`; [`Error::NonFiniteInput`];
    /// [`Error::InvalidSamplingWeight`] (literal rule); [`Error::NonFiniteLoss`].
    pub fn forward_parts<R: Rng + ?Sized>(&self, z: &Tensor, rng: &mut R) -> Result<MilConvParts> {
        let c = &self.config;
        let scores = pseudo_normality_scores(z, c.neighbours)?;
        let sampling = soft_sampling(&scores, c.abnormal_fraction, c.sampling)?;
        let n = scores.len();
        let combinations = draw_combinations(
            &sampling,
            n,
            c.triplets.unwrap_or(n),
            c.instances_per_combination,
            rng,
        );
        let loss = conv_loss(z, &combinations, c.temperature)?;
        Ok(MilConvParts {
            loss,
            scores,
            sampling,
            combinations,
        })
    }

    /// Eq. 10: `L_Conv + λ₁ L_Mean + λ₂ L_Rot`.
    ///
    /// # Errors
    /// [`Error::NonFiniteLoss`]; [`Error::Candle`] for non-scalar or mismatched tensors.
    pub fn total(&self, conv: &Tensor, mean: &Tensor, rot: &Tensor) -> Result<Tensor> {
        let t = ((conv + (mean * self.config.mean_weight)?)? + (rot * self.config.rot_weight)?)?;
        ensure_finite("MIL-Conv", t)
    }
}
