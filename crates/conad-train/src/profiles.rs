//! Training presets, one folder per method under `profiles/` (`budget.toml`, `paper.toml`):
//!
//! - **paper**: the papers' epochs, batch sizes, optimisers, schedules and full-width encoder
//!   (docs/reference.md §1) — for GPU users;
//! - **budget**: one shared CPU recipe (width 1/4, AdamW 1e-3 cosine) with a fixed
//!   `view_budget` of encoder views, so every method gets the same training compute and budget
//!   comparisons are fair (a method with 8 views per image trains a quarter of the epochs of
//!   one with 2).
//!
//! `conad train --method M --profile budget|paper` starts from the preset; flags and `--config`
//! override it. The profile's name is recorded in the config (`profile`).

use crate::config::TrainConfig;
use crate::error::{Error, Result};

/// Names of the profiles every method ships.
pub const PROFILE_NAMES: &[&str] = &["budget", "paper"];

/// One preset.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Registry name of the method.
    pub method: &'static str,
    /// `budget` or `paper`.
    pub name: &'static str,
    /// The TOML text.
    pub text: &'static str,
}

/// Every preset — two lines per method.
#[rustfmt::skip]
pub static PROFILES: &[Profile] = &[
    Profile { method: "raw_pixels", name: "budget", text: include_str!("../profiles/raw_pixels/budget.toml") },
    Profile { method: "raw_pixels", name: "paper", text: include_str!("../profiles/raw_pixels/paper.toml") },
    Profile { method: "simclr", name: "budget", text: include_str!("../profiles/simclr/budget.toml") },
    Profile { method: "simclr", name: "paper", text: include_str!("../profiles/simclr/paper.toml") },
    Profile { method: "supcon", name: "budget", text: include_str!("../profiles/supcon/budget.toml") },
    Profile { method: "supcon", name: "paper", text: include_str!("../profiles/supcon/paper.toml") },
    Profile { method: "rotnet", name: "budget", text: include_str!("../profiles/rotnet/budget.toml") },
    Profile { method: "rotnet", name: "paper", text: include_str!("../profiles/rotnet/paper.toml") },
    Profile { method: "csi", name: "budget", text: include_str!("../profiles/csi/budget.toml") },
    Profile { method: "csi", name: "paper", text: include_str!("../profiles/csi/paper.toml") },
    Profile { method: "msc", name: "budget", text: include_str!("../profiles/msc/budget.toml") },
    Profile { method: "msc", name: "paper", text: include_str!("../profiles/msc/paper.toml") },
    Profile { method: "con2", name: "budget", text: include_str!("../profiles/con2/budget.toml") },
    Profile { method: "con2", name: "paper", text: include_str!("../profiles/con2/paper.toml") },
    Profile { method: "firm", name: "budget", text: include_str!("../profiles/firm/budget.toml") },
    Profile { method: "firm", name: "paper", text: include_str!("../profiles/firm/paper.toml") },
    Profile { method: "unicon_ha", name: "budget", text: include_str!("../profiles/unicon_ha/budget.toml") },
    Profile { method: "unicon_ha", name: "paper", text: include_str!("../profiles/unicon_ha/paper.toml") },
    Profile { method: "ke", name: "budget", text: include_str!("../profiles/ke/budget.toml") },
    Profile { method: "ke", name: "paper", text: include_str!("../profiles/ke/paper.toml") },
    Profile { method: "mil_conv", name: "budget", text: include_str!("../profiles/mil_conv/budget.toml") },
    Profile { method: "mil_conv", name: "paper", text: include_str!("../profiles/mil_conv/paper.toml") },
];

/// The preset `profile` of `method` (registry name or alias), with `profile` recorded.
///
/// # Errors
/// [`Error::UnknownMethod`]; [`Error::InvalidConfig`] for an unknown profile name; parse errors
/// of the preset (ruled out by the tests).
pub fn profile(method: &str, profile: &str) -> Result<TrainConfig> {
    let name = crate::MethodConfig::info_of(method)?.name;
    let preset = PROFILES
        .iter()
        .find(|p| p.method == name && p.name == profile)
        .ok_or_else(|| {
            Error::invalid(
                "profile",
                profile,
                format!(
                    "is not a profile of {name}; profiles: {}",
                    PROFILE_NAMES.join(", ")
                ),
            )
        })?;
    let mut config =
        TrainConfig::from_toml_str(preset.text, &format!("profiles/{name}/{profile}.toml"))?;
    config.profile = Some(profile.to_string());
    Ok(config)
}
