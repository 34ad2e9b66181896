//! The reproduction suites: data, normal classes, seeds, the methods compared (as labelled
//! entries: a registry method, optionally with parameter overrides on top of its profile) and
//! the scores computed for every run. One table.

use anyhow::{Context, Result, bail};
use conad_train::TrainConfig;
use conad_train::ke::KeProtocol;

/// A labelled method of a suite: `method`'s profile with `overrides` (TOML merged on top).
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Name in results and tables.
    pub label: &'static str,
    /// Registry name.
    pub method: &'static str,
    /// TOML merged over the profile (tables merge key by key).
    pub overrides: &'static str,
}

impl Entry {
    const fn plain(method: &'static str) -> Self {
        Self {
            label: method,
            method,
            overrides: "",
        }
    }

    /// The entry's config under `profile`.
    pub fn config(&self, profile: &str) -> Result<TrainConfig> {
        let preset = conad_train::profile(self.method, profile)?;
        if self.overrides.is_empty() {
            return Ok(preset);
        }
        let mut table: toml::Table = toml::from_str(&preset.to_toml_string()?)?;
        let extra: toml::Table = toml::from_str(self.overrides)
            .with_context(|| format!("overrides of suite entry {}", self.label))?;
        merge(&mut table, extra);
        let mut config = TrainConfig::from_toml_str(&table.to_string(), self.label)?;
        config.profile = Some(profile.to_string());
        Ok(config)
    }
}

/// Merges `extra` into `base`: tables key by key, other values replaced.
fn merge(base: &mut toml::Table, extra: toml::Table) {
    for (k, v) in extra {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(e)) => merge(b, e),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Which scores a suite computes for every run.
#[derive(Clone, Copy, Debug)]
pub enum ScoreSet {
    /// Every score the method lists.
    All,
    /// The method's paper score plus these (where the method lists them).
    PaperAnd(&'static [&'static str]),
}

/// One suite.
#[derive(Clone, Copy, Debug)]
pub struct Suite {
    /// `--suite` name; results live in `results/<name>/`.
    pub name: &'static str,
    /// What it reproduces.
    pub summary: &'static str,
    /// Data spec; `{shared}` is the shared data folder beside the repository.
    pub data: &'static str,
    /// Default normal classes.
    pub classes: &'static [u32],
    /// Default seeds.
    pub seeds: &'static [u64],
    /// Contamination ratios γ of the training sets (docs/reference.md §4.3), each a run of its
    /// own labelled `<entry>-g<percent>`; empty = clean.
    pub contaminations: &'static [f64],
    /// KE test protocols (docs/reference.md §4.4), each a run label of its own
    /// (`<entry>-<protocol>`, one training run shared by them); empty = the plain test split.
    /// A protocol suite needs a knowledge encoder (`--encoder`, or one trained self-supervised
    /// on every class of the suite's data under `target/reproduce/<suite>/encoder`).
    pub protocols: &'static [KeProtocol],
    /// The methods compared.
    pub entries: &'static [Entry],
    /// Scores computed per run.
    pub scores: ScoreSet,
}

/// FIRM's NT-Xent baseline (FIRM Table 5/15): pairwise NT-Xent on the rotation pool with FIRM's
/// pipeline and τ 0.2, on top of SimCLR's profile.
const NT_XENT_POOL: &str = r#"
[method]
distribution_shift = "rotations"
variant = "pairwise"
temperature = 0.2

[augment.train]
preset = "firm"
normalize = { mean = [0.5], std = [0.5] }

[augment.test]
preset = "firm_test"
normalize = { mean = [0.5], std = [0.5] }
"#;

/// Every suite.
pub static SUITES: &[Suite] = &[
    Suite {
        name: "breastmnist",
        summary: "BreastMNIST (normal = 1), CON2 Table 1: raw, SimCLR, SupCon*, RotNet, CSI, MSC, FIRM, CON2",
        data: "medmnist:{shared}/data/medmnist/breastmnist.npz",
        classes: &[1],
        seeds: &[0, 1, 2],
        contaminations: &[],
        protocols: &[],
        entries: &[
            Entry::plain("raw_pixels"),
            Entry::plain("simclr"),
            Entry::plain("supcon"),
            Entry::plain("rotnet"),
            Entry::plain("csi"),
            Entry::plain("msc"),
            Entry::plain("firm"),
            Entry::plain("con2"),
        ],
        scores: ScoreSet::All,
    },
    Suite {
        name: "fmnist",
        summary: "Fashion-MNIST classes 0, 2, 4, 6 (where raw pixels are weakest), FIRM Table 5/15: raw, NT-Xent, FIRM",
        data: "fashion-mnist:/usr/share/datasets/fashion-mnist",
        classes: &[0, 2, 4, 6],
        seeds: &[0],
        contaminations: &[],
        protocols: &[],
        entries: &[
            Entry::plain("raw_pixels"),
            Entry {
                label: "nt_xent",
                method: "simclr",
                overrides: NT_XENT_POOL,
            },
            Entry::plain("firm"),
        ],
        scores: ScoreSet::PaperAnd(&["knn", "knn5", "rot_knn"]),
    },
    Suite {
        name: "fmnist-embedded",
        summary: "the embedded Fashion-MNIST subset (300 normal training images per class, 1000 test images) behind `cargo xtask demo`: raw pixels and the best budget method on BreastMNIST (SupCon*), every class",
        data: "embedded:fashion-mnist",
        classes: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        seeds: &[0],
        contaminations: &[],
        protocols: &[],
        entries: &[Entry::plain("raw_pixels"), Entry::plain("supcon")],
        scores: ScoreSet::PaperAnd(&["knn", "rot_knn"]),
    },
    Suite {
        name: "contaminated",
        summary: "CIFAR-10 one-vs-rest with γ = 10 % of the training set drawn from the other classes (the shared 3000-image-per-class copy), MIL-Conv Table 1: MIL-Conv, CSI, raw",
        data: "cifar10:{shared}/data/cifar10",
        classes: &[0, 3, 6],
        seeds: &[0],
        contaminations: &[0.02, 0.05, 0.1],
        protocols: &[],
        entries: &[
            Entry::plain("raw_pixels"),
            Entry::plain("csi"),
            Entry::plain("msc"),
            Entry::plain("mil_conv"),
            Entry {
                label: "mil_conv_spec",
                method: "mil_conv",
                overrides: MIL_CONV_SPEC,
            },
        ],
        scores: ScoreSet::PaperAnd(&["knn"]),
    },
    Suite {
        name: "cifar10",
        summary: "one-class CIFAR-10 (the shared 3000-image-per-class copy), UniCon-HA Table 1a / FIRM Table 1a / CON2 Table 4: raw, SimCLR, CSI, UniCon-HA, FIRM, CON2",
        data: "cifar10:{shared}/data/cifar10",
        classes: &[0, 3],
        seeds: &[0],
        contaminations: &[],
        protocols: &[],
        entries: &[
            Entry::plain("raw_pixels"),
            Entry::plain("simclr"),
            Entry::plain("csi"),
            Entry::plain("unicon_ha"),
            Entry::plain("firm"),
            Entry::plain("con2"),
        ],
        scores: ScoreSet::PaperAnd(&["knn"]),
    },
    Suite {
        name: "ke",
        summary: "one-class CIFAR-10 (the shared 3000-image-per-class copy) under KE's SAD / SPA / SSA protocols, KE Table 1: KE (transforms selected with a conad SimCLR encoder trained on all CIFAR-10 training images), CSI",
        data: "cifar10:{shared}/data/cifar10",
        classes: &[0, 3],
        seeds: &[0],
        contaminations: &[],
        protocols: &[KeProtocol::Sad, KeProtocol::Spa, KeProtocol::Ssa],
        entries: &[Entry::plain("ke"), Entry::plain("csi")],
        scores: ScoreSet::PaperAnd(&["knn"]),
    },
];

/// MIL-Conv with docs/reference.md's readings where the paper is explicit (§6.16–§6.18: shifted
/// sampling, τ = 0.5, MSC's squared-distance centre term) — conad's defaults before the paper's
/// literal equations became the defaults.
const MIL_CONV_SPEC: &str = r#"
[method]
sampling = "shifted"
temperature = 0.5
center_term = "squared_distance"
"#;

impl Suite {
    /// The contamination ratios of the suite's runs (`[None]` for a clean suite).
    pub fn ratios(&self) -> Vec<Option<f64>> {
        if self.contaminations.is_empty() {
            vec![None]
        } else {
            self.contaminations.iter().map(|&g| Some(g)).collect()
        }
    }

    /// The result label of `entry` at contamination `gamma`: `csi`, or `csi-g10` for γ = 10 %.
    pub fn run_label(entry: &str, gamma: Option<f64>) -> String {
        match gamma {
            None => entry.to_string(),
            Some(g) => format!("{entry}-g{}", (g * 100.0).round()),
        }
    }

    /// The result label of `entry` under KE protocol `protocol`: `csi-spa`.
    pub fn protocol_label(entry: &str, protocol: KeProtocol) -> String {
        format!("{entry}-{}", protocol.name())
    }

    /// Position of the entry a result label belongs to (`csi-g10+tag`, `ke-spa` → `csi`'s,
    /// `ke`'s).
    pub fn entry_position(&self, label: &str) -> Option<usize> {
        let base = label.split('+').next().unwrap_or(label);
        self.entries.iter().position(|e| {
            let Some(rest) = base.strip_prefix(e.label) else {
                return false;
            };
            rest.is_empty()
                || rest
                    .strip_prefix("-g")
                    .is_some_and(|pct| pct.parse::<u32>().is_ok())
                || ["-sad", "-spa", "-ssa"].contains(&rest)
        })
    }
}

/// The suite `name`.
pub fn suite(name: &str) -> Result<&'static Suite> {
    match SUITES.iter().find(|s| s.name == name) {
        Some(s) => Ok(s),
        None => bail!(
            "unknown suite `{name}`; suites: {}",
            SUITES.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conad_train::{DistributionShift, MilConvParams, SimClrConfig};

    /// Contaminated runs are labelled per γ and still find their entry (tags too); the
    /// `mil_conv_spec` entry restores the spec's readings on top of the paper defaults.
    #[test]
    fn contaminated_labels_and_the_spec_entry() {
        let s = suite("contaminated").unwrap();
        assert_eq!(s.ratios(), vec![Some(0.02), Some(0.05), Some(0.1)]);
        assert_eq!(Suite::run_label("csi", Some(0.1)), "csi-g10");
        assert_eq!(Suite::run_label("csi", None), "csi");
        let csi = s.entries.iter().position(|e| e.label == "csi");
        assert_eq!(s.entry_position("csi-g10"), csi);
        assert_eq!(s.entry_position("csi-g2+tau"), csi);
        assert_eq!(s.entry_position("csi-gx"), None);
        let spec = s.entry_position("mil_conv_spec-g10").unwrap();
        assert_eq!(s.entries[spec].label, "mil_conv_spec");
        let p = s.entries[spec].config("budget").unwrap();
        let p = p.method.params::<MilConvParams>().unwrap();
        assert_eq!(p.temperature, 0.5);
        let t = toml::Table::try_from(p).unwrap();
        assert_eq!(t["sampling"].as_str(), Some("shifted"));
        assert_eq!(t["center_term"].as_str(), Some("squared_distance"));
        assert_eq!(suite("cifar10").unwrap().ratios(), vec![None]);
        let ke = suite("ke").unwrap();
        assert_eq!(Suite::protocol_label("csi", KeProtocol::Spa), "csi-spa");
        assert_eq!(ke.entry_position("csi-spa"), Some(1));
        assert_eq!(ke.entry_position("ke-ssa"), Some(0));
        assert_eq!(ke.entry_position("ke-xyz"), None);
    }

    /// Every suite entry's budget and paper configs parse; the NT-Xent entry is SimCLR's profile
    /// with the rotation pool, the pairwise variant, τ 0.2 and FIRM's pipelines.
    #[test]
    fn entries_resolve_and_overrides_apply() {
        for suite in SUITES {
            for entry in suite.entries {
                for profile in conad_train::PROFILE_NAMES {
                    let c = entry.config(profile).unwrap();
                    assert_eq!(c.method.name(), entry.method);
                    assert_eq!(c.profile.as_deref(), Some(*profile));
                }
            }
        }
        let nt = suite("fmnist").unwrap().entries[1];
        let c = nt.config("budget").unwrap();
        let p = c.method.params::<SimClrConfig>().unwrap();
        assert_eq!(p.distribution_shift, DistributionShift::Rotations);
        assert_eq!(p.temperature, 0.2);
        let train = toml::Table::try_from(&c.augment.train).unwrap();
        assert_eq!(train["preset"].as_str(), Some("firm"), "{train}");
        // The profile's other settings survive the merge.
        assert_eq!(
            c.view_budget,
            conad_train::profile("simclr", "budget")
                .unwrap()
                .view_budget
        );
        assert!(suite("cifar-typo").is_err());
    }
}
