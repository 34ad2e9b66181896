//! The method registry: one table ([`METHODS`]), one line per method, and the config type
//! ([`MethodConfig`]) that carries any registered method's typed parameters.
//!
//! TOML `[method]` is `name = "…"` plus the method's fields; the name selects the registry entry,
//! whose parser reads the remaining fields into the method's [`MethodParams`] type
//! (`deny_unknown_fields`, defaults for missing fields).

use std::any::Any;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{BuildContext, Method};
use crate::error::{Error, Result};
use crate::score::ScoreDef;

use super::con2::Con2Params;
use super::csi::CsiParams;
use super::firm::FirmParams;
use super::ke::KeParams;
use super::mil_conv::MilConvParams;
use super::msc::MscParams;
use super::raw_pixels::RawPixelsConfig;
use super::rotnet::RotNetParams;
use super::simclr::SimClrConfig;
use super::supcon::SupConParams;
use super::unicon_ha::UniConHaParams;

/// The typed parameters of one method (serde with defaults and `deny_unknown_fields`).
pub trait MethodParams:
    Clone + fmt::Debug + Default + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field as `method.<field>`.
    fn validate(&self) -> Result<()>;

    /// Builds the trainable method; its heads go through `ctx.heads`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] and model-construction errors.
    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn Method>>;

    /// The test-time scores the method offers, its paper's score first (the default of
    /// `conad eval`).
    fn scores(&self) -> Vec<ScoreDef>;

    /// Encoder views per training image and epoch (shifted copies × views per item): the unit
    /// of `view_budget`, which gives every method of a budget profile the same training compute.
    fn views_per_image(&self) -> usize;

    /// `false` for methods without trainable weights (raw pixels): the loop runs no epoch and
    /// scores with the raw pixels.
    fn trains(&self) -> bool {
        true
    }

    /// The smallest `batch_size` (source images per step) at which the loss is not degenerate.
    /// Default 2: a contrastive loss over the views of one image has no negative and is exactly
    /// 0. Methods whose loss needs no other image (rotation prediction) return 1.
    fn min_batch_size(&self) -> usize {
        2
    }
}

/// Object-safe view of a [`MethodParams`] value.
trait DynParams: fmt::Debug + Send + Sync {
    fn clone_box(&self) -> Box<dyn DynParams>;
    fn as_any(&self) -> &dyn Any;
    fn eq_dyn(&self, other: &dyn DynParams) -> bool;
    fn to_table(&self) -> std::result::Result<toml::Table, String>;
    fn validate(&self) -> Result<()>;
    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn Method>>;
    fn scores(&self) -> Vec<ScoreDef>;
    fn views_per_image(&self) -> usize;
    fn trains(&self) -> bool;
    fn min_batch_size(&self) -> usize;
}

impl<P: MethodParams> DynParams for P {
    fn clone_box(&self) -> Box<dyn DynParams> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn eq_dyn(&self, other: &dyn DynParams) -> bool {
        other.as_any().downcast_ref::<P>() == Some(self)
    }
    fn to_table(&self) -> std::result::Result<toml::Table, String> {
        toml::Table::try_from(self).map_err(|e| e.to_string())
    }
    fn validate(&self) -> Result<()> {
        MethodParams::validate(self)
    }
    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn Method>> {
        MethodParams::validate(self)?;
        MethodParams::build(self, ctx)
    }
    fn scores(&self) -> Vec<ScoreDef> {
        MethodParams::scores(self)
    }
    fn views_per_image(&self) -> usize {
        MethodParams::views_per_image(self)
    }
    fn trains(&self) -> bool {
        MethodParams::trains(self)
    }
    fn min_batch_size(&self) -> usize {
        MethodParams::min_batch_size(self)
    }
}

fn parse_params<P: MethodParams>(
    table: toml::Table,
) -> std::result::Result<Box<dyn DynParams>, String> {
    let p: P = table
        .try_into()
        .map_err(|e: toml::de::Error| e.to_string())?;
    Ok(Box::new(p))
}

fn default_params<P: MethodParams>() -> Box<dyn DynParams> {
    Box::new(P::default())
}

fn is_type<P: MethodParams>(v: &dyn Any) -> bool {
    v.is::<P>()
}

/// One registry entry.
#[derive(Clone, Copy)]
pub struct MethodInfo {
    /// Name used in configs and on the command line.
    pub name: &'static str,
    /// Other accepted spellings on the command line (e.g. `raw` for `raw_pixels`).
    pub aliases: &'static [&'static str],
    /// One-line description.
    pub summary: &'static str,
    parse: fn(toml::Table) -> std::result::Result<Box<dyn DynParams>, String>,
    default: fn() -> Box<dyn DynParams>,
    is_type: fn(&dyn Any) -> bool,
}

impl fmt::Debug for MethodInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MethodInfo")
            .field("name", &self.name)
            .field("aliases", &self.aliases)
            .finish_non_exhaustive()
    }
}

impl MethodInfo {
    /// The entry of method parameters `P`.
    pub const fn of<P: MethodParams>(
        name: &'static str,
        aliases: &'static [&'static str],
        summary: &'static str,
    ) -> Self {
        Self {
            name,
            aliases,
            summary,
            parse: parse_params::<P>,
            default: default_params::<P>,
            is_type: is_type::<P>,
        }
    }

    /// The method with default parameters.
    pub fn default_config(&'static self) -> MethodConfig {
        MethodConfig {
            info: self,
            params: (self.default)(),
        }
    }

    /// Whether `name` is this entry's name or one of its aliases.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }
}

/// Every method conad can train — one line per method.
#[rustfmt::skip]
pub static METHODS: &[MethodInfo] = &[
    MethodInfo::of::<RawPixelsConfig>("raw_pixels", &["raw"], "no training: the embedding is the flattened [0,1] pixels (the kNN floor)"),
    MethodInfo::of::<SimClrConfig>("simclr", &["nt_xent"], "SimCLR: NT-Xent over two augmented views, MLP projection head (docs/reference.md §1.1)"),
    MethodInfo::of::<SupConParams>("supcon", &["supcon_star"], "SupCon on the rotation pool with binary or rotation labels (FIRM's SupCon / SupCon*, docs/reference.md §1.2, §1.6)"),
    MethodInfo::of::<RotNetParams>("rotnet", &["rot_pred"], "rotation prediction: 4-way cross-entropy, score Σ_k log softmax(f(rot_k x))_k (docs/reference.md §1.9)"),
    MethodInfo::of::<CsiParams>("csi", &[], "CSI: con-SI over rotation shifts + shift classifier, CSI ensemble score (docs/reference.md §1.3, §2.4-2.5)"),
    MethodInfo::of::<MscParams>("msc", &["mean_shifted"], "mean-shifted contrastive loss around the training-set centre + angular term (docs/reference.md §1.8)"),
    MethodInfo::of::<Con2Params>("con2", &[], "CON2: context contrasting + content alignment, S_NND / S_LH with 40 TTA (docs/reference.md §1.4, §2.6)"),
    MethodInfo::of::<FirmParams>("firm", &[], "FIRM: rotation pool, pairwise/concat loss, 8-layer head, S_cos / S_rot / S_ens (docs/reference.md §1.6)"),
    MethodInfo::of::<UniConHaParams>("unicon_ha", &["uniconha"], "UniCon-HA: UniCLR on inliers + rotated virtual outliers at stages 2-3-4 with their own augmentations, soft aggregation at res4, feature-averaged 40-view TTA score (docs/reference.md §1.5, §2.3)"),
    MethodInfo::of::<KeParams>("ke", &["knowledge_exposure"], "Knowledge Exposure: InfoNCE of each image against its Wasserstein-selected positive and negative transforms, sigmoid OC-SVM score (docs/reference.md §1.7)"),
    MethodInfo::of::<MilConvParams>("mil_conv", &["milconv"], "MIL-Conv on contaminated data: L_Conv on convex combinations + re-centred CSI NT-Xent + rotation CE, kNN score (docs/reference.md §1.8, §4.3)"),
];

/// Names of every registered method.
pub fn method_names() -> Vec<&'static str> {
    METHODS.iter().map(|m| m.name).collect()
}

/// A registered method and its parameters; TOML `[method]` with `name = "…"` and the method's
/// fields.
pub struct MethodConfig {
    info: &'static MethodInfo,
    params: Box<dyn DynParams>,
}

impl fmt::Debug for MethodConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MethodConfig")
            .field("name", &self.info.name)
            .field("params", &self.params)
            .finish()
    }
}

impl Clone for MethodConfig {
    fn clone(&self) -> Self {
        Self {
            info: self.info,
            params: self.params.clone_box(),
        }
    }
}

impl PartialEq for MethodConfig {
    fn eq(&self, other: &Self) -> bool {
        self.info.name == other.info.name && self.params.eq_dyn(other.params.as_ref())
    }
}

impl Default for MethodConfig {
    /// SimCLR with default parameters.
    fn default() -> Self {
        Self::new(SimClrConfig::default())
    }
}

impl MethodConfig {
    /// A config from typed parameters (the registry entry is found by type).
    ///
    /// # Panics
    /// If `P` has no line in [`METHODS`] — a programming error the registry conformance test
    /// rules out for every method of this crate.
    pub fn new<P: MethodParams>(params: P) -> Self {
        let info = METHODS
            .iter()
            .find(|m| (m.is_type)(&params as &dyn Any))
            .unwrap_or_else(|| {
                panic!(
                    "{} has no line in conad_train::METHODS",
                    std::any::type_name::<P>()
                )
            });
        Self {
            info,
            params: Box::new(params),
        }
    }

    /// The method `name` (or one of its aliases) with default parameters.
    ///
    /// # Errors
    /// [`Error::UnknownMethod`] listing the valid names.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(Self::info_of(name)?.default_config())
    }

    /// The registry entry answering to `name`.
    ///
    /// # Errors
    /// [`Error::UnknownMethod`] listing the valid names.
    pub fn info_of(name: &str) -> Result<&'static MethodInfo> {
        METHODS
            .iter()
            .find(|m| m.answers_to(name))
            .ok_or_else(|| Error::UnknownMethod {
                name: name.to_string(),
                valid: method_names(),
            })
    }

    /// The registry entry.
    pub fn info(&self) -> &'static MethodInfo {
        self.info
    }

    /// Registry name.
    pub fn name(&self) -> &'static str {
        self.info.name
    }

    /// The typed parameters, if they are of type `P`.
    pub fn params<P: MethodParams>(&self) -> Option<&P> {
        self.params.as_any().downcast_ref::<P>()
    }

    /// `false` for methods without trainable weights (raw pixels).
    pub fn trains(&self) -> bool {
        self.params.trains()
    }

    /// The smallest non-degenerate batch size (see [`MethodParams::min_batch_size`]).
    pub fn min_batch_size(&self) -> usize {
        self.params.min_batch_size()
    }

    /// Encoder views per training image and epoch (see [`MethodParams::views_per_image`]).
    pub fn views_per_image(&self) -> usize {
        self.params.views_per_image()
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        self.params.validate()
    }

    /// Builds the method (heads under `ctx.heads`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] and model-construction errors.
    pub fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn Method>> {
        self.params.build(ctx)
    }

    /// The method's test-time scores, paper score first.
    pub fn scores(&self) -> Vec<ScoreDef> {
        self.params.scores()
    }

    /// The score `name`, or a typed error listing the method's scores.
    ///
    /// # Errors
    /// [`Error::UnknownScore`].
    pub fn score(&self, name: &str) -> Result<ScoreDef> {
        let scores = self.scores();
        let names: Vec<String> = scores.iter().map(|s| s.name.to_string()).collect();
        scores
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::UnknownScore {
                method: self.name().to_string(),
                name: name.to_string(),
                valid: names,
            })
    }

    /// The paper's score (the first one listed).
    pub fn paper_score(&self) -> ScoreDef {
        self.scores()
            .into_iter()
            .next()
            .unwrap_or_else(ScoreDef::knn1)
    }

    /// Parses a `[method]` table (with its `name`).
    ///
    /// # Errors
    /// [`Error::UnknownMethod`], or [`Error::ConfigParse`] naming the offending key.
    pub fn from_table(mut table: toml::Table, origin: &str) -> Result<Self> {
        let name = match table.remove("name") {
            Some(toml::Value::String(n)) => n,
            _ => {
                return Err(Error::ConfigParse {
                    origin: origin.to_string(),
                    message: format!(
                        "[method] needs a `name` string (one of {})",
                        method_names().join(", ")
                    ),
                });
            }
        };
        let info = Self::info_of(&name)?;
        let params = (info.parse)(table).map_err(|message| Error::ConfigParse {
            origin: origin.to_string(),
            message: format!("[method] {}: {message}", info.name),
        })?;
        Ok(Self { info, params })
    }

    /// The `[method]` table, `name` first.
    ///
    /// # Errors
    /// [`Error::ConfigParse`] if a value cannot be represented in TOML.
    pub fn to_table(&self) -> Result<toml::Table> {
        let fields = self
            .params
            .to_table()
            .map_err(|message| Error::ConfigParse {
                origin: "serialisation".into(),
                message,
            })?;
        let mut table = toml::Table::new();
        table.insert("name".into(), toml::Value::String(self.name().into()));
        table.extend(fields);
        Ok(table)
    }
}

impl Serialize for MethodConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_table()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for MethodConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let table = toml::Table::deserialize(deserializer)?;
        Self::from_table(table, "[method]").map_err(serde::de::Error::custom)
    }
}
