//! Seeded parameter initialisation.
//!
//! candle's CPU RNG cannot be seeded (`Device::Cpu.set_seed` fails), so its `Init::Randn` /
//! `Init::Kaiming` hints are not reproducible. [`SeededInit`] is a candle-nn `SimpleBackend` for
//! [`VarBuilder`]: it keeps candle's init *hints* (which every layer constructor already states) but
//! draws the values from conad's seed tree. Each parameter gets its own stream
//! `seed.child(<full parameter name>)`, so a parameter's initial value depends only on the seed and
//! its name — not on construction order, thread count or which other modules exist.
//!
//! Conventions used by the layer constructors of this crate (torchvision ResNet, PyTorch defaults):
//! convolutions: Kaiming normal, fan-out, ReLU gain (std = √(2/fan_out)); batch norm: weight 1,
//! bias 0, running mean 0, running var 1; linear: PyTorch's default `kaiming_uniform(a=√5)`, i.e.
//! U(−1/√fan_in, 1/√fan_in), and the same bound for the bias.
//!
//! ```
//! use candle_core::{DType, Device};
//! use candle_nn::VarMap;
//! use conad_models::{ResNet, ResNetConfig, seeded_var_builder};
//! use conad_rng::SeedTree;
//! let varmap = VarMap::new();
//! let cfg = ResNetConfig { width_multiplier: 0.125, ..Default::default() };
//! let vb = seeded_var_builder(&varmap, SeedTree::new(0).child("init"), DType::F32, &Device::Cpu);
//! let model = ResNet::new(&cfg, vb)?;
//! assert_eq!(model.feature_dim(), 64);
//! # Ok::<(), conad_models::Error>(())
//! ```

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use conad_rng::SeedTree;
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};

/// A [`VarMap`]-backed variable store that creates missing variables from seeded draws.
///
/// Existing variables (e.g. after loading a checkpoint) are returned unchanged, exactly like
/// `VarMap`'s own backend.
#[derive(Clone)]
pub struct SeededInit {
    varmap: VarMap,
    seed: SeedTree,
}

impl std::fmt::Debug for SeededInit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeededInit")
            .field("seed", &self.seed)
            .field("vars", &self.varmap.all_vars().len())
            .finish()
    }
}

impl SeededInit {
    /// A store that inserts new variables into `varmap`, drawn from `seed`.
    pub fn new(varmap: &VarMap, seed: SeedTree) -> Self {
        Self {
            varmap: varmap.clone(),
            seed,
        }
    }
}

/// A [`VarBuilder`] that creates every missing parameter in `varmap` from `seed` (see the module
/// docs for the per-layer conventions).
pub fn seeded_var_builder(
    varmap: &VarMap,
    seed: SeedTree,
    dtype: DType,
    device: &Device,
) -> VarBuilder<'static> {
    VarBuilder::from_backend(
        Box::new(SeededInit::new(varmap, seed)),
        dtype,
        device.clone(),
    )
}

/// Draws a tensor following a candle init hint from a seeded stream.
///
/// Values are drawn in f64 in row-major order and rounded to `dtype`, so the result is
/// bit-identical on every platform for a given `seed`.
///
/// # Errors
/// A candle error for an invalid hint (negative standard deviation, empty uniform range) or an
/// unsupported dtype.
pub fn sample_init(
    init: Init,
    shape: &Shape,
    seed: SeedTree,
    dtype: DType,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let n = shape.elem_count();
    let mut rng = seed.rng();
    let values: Vec<f64> = match init {
        Init::Const(c) => vec![c; n],
        Init::Uniform { lo, up } => draw_uniform(&mut rng, lo, up, n)?,
        Init::Randn { mean, stdev } => draw_normal(&mut rng, mean, stdev, n)?,
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let fan = fan.for_shape(shape).max(1);
            let std = non_linearity.gain() / (fan as f64).sqrt();
            match dist {
                candle_nn::init::NormalOrUniform::Normal => draw_normal(&mut rng, 0.0, std, n)?,
                candle_nn::init::NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    draw_uniform(&mut rng, -bound, bound, n)?
                }
            }
        }
    };
    Tensor::from_vec(values, shape.clone(), device)?.to_dtype(dtype)
}

fn draw_normal(rng: &mut impl Rng, mean: f64, std: f64, n: usize) -> candle_core::Result<Vec<f64>> {
    let d = Normal::new(mean, std).map_err(|e| {
        candle_core::Error::Msg(format!("normal init with mean {mean}, std {std}: {e}"))
    })?;
    Ok((0..n).map(|_| d.sample(rng)).collect())
}

fn draw_uniform(rng: &mut impl Rng, lo: f64, up: f64, n: usize) -> candle_core::Result<Vec<f64>> {
    if lo == up {
        return Ok(vec![lo; n]);
    }
    let d = Uniform::new(lo, up)
        .map_err(|e| candle_core::Error::Msg(format!("uniform init on [{lo}, {up}): {e}")))?;
    Ok((0..n).map(|_| d.sample(rng)).collect())
}

impl SimpleBackend for SeededInit {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut vars = self
            .varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("VarMap lock poisoned".into()))?;
        if let Some(var) = vars.get(name) {
            if var.shape() != &shape {
                candle_core::bail!(
                    "parameter `{name}` exists with shape {:?}, requested {:?}",
                    var.shape(),
                    shape
                );
            }
            return Ok(var.as_tensor().clone());
        }
        let value = sample_init(init, &shape, self.seed.child(name), dtype, device)?;
        let var = Var::from_tensor(&value)?;
        let tensor = var.as_tensor().clone();
        vars.insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _device: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("`get_unchecked({name})` needs a shape to initialise; use `get`")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .map(|v| v.contains_key(name))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::init::{FanInOut, NonLinearity, NormalOrUniform};

    #[test]
    fn kaiming_fan_out_std_matches_sqrt_two_over_fan_out() {
        // conv weight (out 64, in 32, 3×3): fan_out = 64·9 = 576, std = √(2/576) = 0.0589.
        let shape = Shape::from((64, 32, 3, 3));
        let t = sample_init(
            Init::Kaiming {
                dist: NormalOrUniform::Normal,
                fan: FanInOut::FanOut,
                non_linearity: NonLinearity::ReLU,
            },
            &shape,
            SeedTree::new(1),
            DType::F64,
            &Device::Cpu,
        )
        .unwrap();
        let v = t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        let want = (2.0f64 / 576.0).sqrt();
        // 18 432 draws: the sample std has relative s.e. ≈ 1/√(2n) = 0.5 %.
        assert!((std / want - 1.0).abs() < 0.03, "std {std} want {want}");
        assert!(mean.abs() < 4.0 * want / n.sqrt(), "mean {mean}");
    }

    #[test]
    fn uniform_respects_bounds_and_const_is_const() {
        let shape = Shape::from(1000);
        let t = sample_init(
            Init::Uniform { lo: -0.5, up: 0.25 },
            &shape,
            SeedTree::new(2),
            DType::F64,
            &Device::Cpu,
        )
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
        assert!(t.iter().all(|&x| (-0.5..0.25).contains(&x)));
        let min = t.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = t.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        assert!(min < -0.45 && max > 0.2, "range [{min}, {max}] not covered");
        let c = sample_init(
            Init::Const(1.0),
            &shape,
            SeedTree::new(2),
            DType::F32,
            &Device::Cpu,
        )
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
        assert!(c.iter().all(|&x| x == 1.0));
    }

    #[test]
    fn existing_variables_are_kept_and_shape_checked() {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, SeedTree::new(3), DType::F32, &Device::Cpu);
        let a = vb
            .get_with_hints(
                (4, 4),
                "w",
                Init::Randn {
                    mean: 0.,
                    stdev: 1.,
                },
            )
            .unwrap();
        let b = vb
            .get_with_hints(
                (4, 4),
                "w",
                Init::Randn {
                    mean: 5.,
                    stdev: 1.,
                },
            )
            .unwrap();
        let diff = (a - b).unwrap().abs().unwrap().sum_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        assert!(vb.get_with_hints((2, 8), "w", Init::Const(0.)).is_err());
    }
}
