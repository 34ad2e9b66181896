//! The data set spec string used by every conad command: `KIND:LOCATION[,KEY=VALUE…]`.
//!
//! | spec | data |
//! |---|---|
//! | `fashion-mnist:DIR` | Fashion-MNIST IDX files (plain or `.gz`) in `DIR` |
//! | `mnist:DIR` | MNIST IDX files in `DIR` |
//! | `cifar10:DIR` | CIFAR-10 binary batches in `DIR` |
//! | `cifar100:DIR[,labels=coarse\|coarse-csi\|fine]` | CIFAR-100 binary; default labels = the 20 official superclasses |
//! | `svhn:DIR` | SVHN cropped digits (`train_32x32.mat`, `test_32x32.mat`) in `DIR` |
//! | `medmnist:FILE.npz[,name=NAME]` | a MedMNIST archive; `name` overrides the name taken from the file stem |
//! | `folder:DIR[,size=HxW][,channels=auto\|1\|3][,resize=stretch\|center-crop]` | an MVTec-like image folder ([`crate::folder`]) |
//! | `embedded:fashion-mnist` | the Fashion-MNIST subset compiled into the library |
//!
//! `size` also accepts a single number for square images (`size=32`); `channels` also accepts
//! `gray`/`grey` and `rgb`. Kinds are case-insensitive; `fmnist`, `cifar-10`, `cifar-100` are
//! accepted aliases. Everything after the first `,` is options, so a `LOCATION` cannot contain a
//! comma (use a symlink). Specs print back in canonical form ([`std::fmt::Display`]), and
//! serialise as that string.

use crate::cifar::{self, Cifar100Labels};
use crate::dataset::LoadedData;
use crate::embedded::EmbeddedDataset;
use crate::error::{Error, Result};
use crate::folder::{self, ChannelMode, FolderOptions, ResizePolicy};
use crate::medmnist;
use crate::mnist::{self, MnistKind};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Builds a spec of one kind from (the whole spec text, its location, its `key=value` options).
type SpecParser = fn(&str, PathBuf, &[(String, String)]) -> Result<DataSpec>;

/// One spec kind: its keyword, aliases, syntax, the options it takes, how it parses and which
/// [`DataSpec`] variant it builds.
#[derive(Debug)]
pub struct SpecKind {
    /// Canonical keyword (`cifar10`).
    pub name: &'static str,
    /// Other accepted keywords.
    pub aliases: &'static [&'static str],
    /// The syntax shown in errors and help.
    pub syntax: &'static str,
    /// Option keys after the location.
    pub options: &'static [&'static str],
    parse: SpecParser,
    is: fn(&DataSpec) -> bool,
}

/// Every spec kind, one entry each: parsing, [`DataSpec::kind`] and the error listing all come
/// from this table (a test walks it).
pub const SPEC_KINDS: &[SpecKind] = &[
    SpecKind {
        name: "fashion-mnist",
        aliases: &["fashion_mnist", "fashionmnist", "fmnist"],
        syntax: "fashion-mnist:DIR",
        options: &[],
        parse: |_, dir, _| Ok(DataSpec::FashionMnist(dir)),
        is: |d| matches!(d, DataSpec::FashionMnist(_)),
    },
    SpecKind {
        name: "mnist",
        aliases: &[],
        syntax: "mnist:DIR",
        options: &[],
        parse: |_, dir, _| Ok(DataSpec::Mnist(dir)),
        is: |d| matches!(d, DataSpec::Mnist(_)),
    },
    SpecKind {
        name: "cifar10",
        aliases: &["cifar-10"],
        syntax: "cifar10:DIR",
        options: &[],
        parse: |_, dir, _| Ok(DataSpec::Cifar10(dir)),
        is: |d| matches!(d, DataSpec::Cifar10(_)),
    },
    SpecKind {
        name: "cifar100",
        aliases: &["cifar-100"],
        syntax: "cifar100:DIR[,labels=coarse|coarse-csi|fine]",
        options: &["labels"],
        parse: parse_cifar100,
        is: |d| matches!(d, DataSpec::Cifar100 { .. }),
    },
    SpecKind {
        name: "svhn",
        aliases: &[],
        syntax: "svhn:DIR",
        options: &[],
        parse: |_, dir, _| Ok(DataSpec::Svhn(dir)),
        is: |d| matches!(d, DataSpec::Svhn(_)),
    },
    SpecKind {
        name: "medmnist",
        aliases: &[],
        syntax: "medmnist:FILE.npz[,name=NAME]",
        options: &["name"],
        parse: |_, file, options| {
            Ok(DataSpec::MedMnist {
                file,
                name: options.first().map(|(_, v)| v.to_ascii_lowercase()),
            })
        },
        is: |d| matches!(d, DataSpec::MedMnist { .. }),
    },
    SpecKind {
        name: "folder",
        aliases: &[],
        syntax: "folder:DIR[,size=HxW][,channels=auto|1|3][,resize=stretch|center-crop]",
        options: &["size", "channels", "resize"],
        parse: parse_folder,
        is: |d| matches!(d, DataSpec::Folder { .. }),
    },
    SpecKind {
        name: "embedded",
        aliases: &[],
        syntax: "embedded:fashion-mnist",
        options: &[],
        parse: parse_embedded,
        is: |d| matches!(d, DataSpec::Embedded(_)),
    },
];

/// The syntax of every kind (for error messages).
fn kind_syntaxes() -> Vec<&'static str> {
    SPEC_KINDS.iter().map(|k| k.syntax).collect()
}

/// A parsed data set spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSpec {
    /// `fashion-mnist:DIR`.
    FashionMnist(PathBuf),
    /// `mnist:DIR`.
    Mnist(PathBuf),
    /// `cifar10:DIR`.
    Cifar10(PathBuf),
    /// `cifar100:DIR[,labels=…]`.
    Cifar100 {
        /// Folder holding `train.bin`, `test.bin`.
        dir: PathBuf,
        /// Label granularity.
        labels: Cifar100Labels,
    },
    /// `svhn:DIR`.
    Svhn(PathBuf),
    /// `medmnist:FILE.npz[,name=…]`.
    MedMnist {
        /// The archive.
        file: PathBuf,
        /// Name override (selects the normal-label convention).
        name: Option<String>,
    },
    /// `folder:DIR[,…]`.
    Folder {
        /// The folder.
        dir: PathBuf,
        /// Size / channel / resize options.
        options: FolderOptions,
    },
    /// `embedded:NAME`.
    Embedded(EmbeddedDataset),
}

impl DataSpec {
    /// The kind keyword (`"cifar10"`, `"folder"`, …), from [`SPEC_KINDS`].
    pub fn kind(&self) -> &'static str {
        SPEC_KINDS
            .iter()
            .find(|k| (k.is)(self))
            .map_or("unregistered", |k| k.name)
    }

    /// Loads the data set.
    ///
    /// # Errors
    /// Those of the loader of the spec's kind; missing files name the path.
    pub fn load(&self) -> Result<LoadedData> {
        let mut data = match self {
            DataSpec::FashionMnist(dir) => mnist::load_idx_dir(dir, MnistKind::FashionMnist),
            DataSpec::Mnist(dir) => mnist::load_idx_dir(dir, MnistKind::Mnist),
            DataSpec::Cifar10(dir) => cifar::load_cifar10(dir),
            DataSpec::Cifar100 { dir, labels } => cifar::load_cifar100(dir, *labels),
            DataSpec::Svhn(dir) => crate::svhn::load_svhn(dir),
            DataSpec::MedMnist { file, name } => medmnist::load_medmnist(file, name.as_deref()),
            DataSpec::Folder { dir, options } => folder::load_folder(dir, options),
            DataSpec::Embedded(e) => e.load(),
        }?;
        data.source = self.to_string();
        Ok(data)
    }
}

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind();
        match self {
            DataSpec::FashionMnist(p)
            | DataSpec::Mnist(p)
            | DataSpec::Cifar10(p)
            | DataSpec::Svhn(p) => {
                write!(f, "{kind}:{}", p.display())
            }
            DataSpec::Cifar100 { dir, labels } => {
                write!(f, "{kind}:{}", dir.display())?;
                match labels {
                    Cifar100Labels::Coarse => Ok(()),
                    Cifar100Labels::CoarseCsi => write!(f, ",labels=coarse-csi"),
                    Cifar100Labels::Fine => write!(f, ",labels=fine"),
                }
            }
            DataSpec::MedMnist { file, name } => {
                write!(f, "{kind}:{}", file.display())?;
                match name {
                    Some(n) => write!(f, ",name={n}"),
                    None => Ok(()),
                }
            }
            DataSpec::Folder { dir, options } => {
                write!(f, "{kind}:{}", dir.display())?;
                if let Some((h, w)) = options.size {
                    write!(f, ",size={h}x{w}")?;
                }
                match options.channels {
                    ChannelMode::Auto => {}
                    ChannelMode::Gray => write!(f, ",channels=1")?,
                    ChannelMode::Rgb => write!(f, ",channels=3")?,
                }
                match options.resize {
                    ResizePolicy::Stretch => Ok(()),
                    ResizePolicy::CenterCrop => write!(f, ",resize=center-crop"),
                }
            }
            DataSpec::Embedded(e) => write!(f, "{kind}:{}", e.name()),
        }
    }
}

fn bad(spec: &str, problem: impl Into<String>) -> Error {
    Error::BadSpec {
        spec: spec.to_string(),
        problem: problem.into(),
    }
}

fn parse_size(spec: &str, v: &str) -> Result<(usize, usize)> {
    let parse = |s: &str| {
        s.trim()
            .parse::<usize>()
            .ok()
            .filter(|&x| x > 0)
            .ok_or_else(|| {
                bad(
                    spec,
                    format!("size '{v}' is not HxW with positive integers (e.g. size=224x224)"),
                )
            })
    };
    let (h, w) = match v.split_once(['x', 'X', '×']) {
        Some((h, w)) => (parse(h)?, parse(w)?),
        None => {
            let s = parse(v)?;
            (s, s)
        }
    };
    let o = FolderOptions {
        size: Some((h, w)),
        ..FolderOptions::default()
    };
    o.validate().map_err(|e| bad(spec, e.to_string()))?;
    Ok((h, w))
}

impl FromStr for DataSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let spec = s.trim();
        let Some((kind, rest)) = spec.split_once(':') else {
            return Err(bad(
                spec,
                format!(
                    "expected KIND:LOCATION, e.g. cifar10:/data/cifar10; valid kinds: {}",
                    kind_syntaxes().join(", ")
                ),
            ));
        };
        let kind_lc = kind.trim().to_ascii_lowercase();
        let Some(entry) = SPEC_KINDS
            .iter()
            .find(|k| k.name == kind_lc || k.aliases.contains(&kind_lc.as_str()))
        else {
            return Err(Error::UnknownSpecKind {
                kind: kind.to_string(),
                spec: spec.to_string(),
                valid: kind_syntaxes(),
            });
        };
        let kind = entry.name;
        let mut parts = rest.split(',');
        let location = parts.next().unwrap_or("").trim();
        if location.is_empty() {
            return Err(bad(spec, format!("no location after '{kind}:'")));
        }
        let mut options: Vec<(String, String)> = Vec::new();
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                return Err(bad(
                    spec,
                    format!("option '{p}' is not KEY=VALUE (paths cannot contain ',')"),
                ));
            };
            options.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let allowed = entry.options;
        if let Some((k, _)) = options.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            return Err(bad(
                spec,
                if allowed.is_empty() {
                    format!("'{kind}' takes no options (found '{k}')")
                } else {
                    format!(
                        "unknown option '{k}' for '{kind}'; valid: {}",
                        allowed.join(", ")
                    )
                },
            ));
        }
        (entry.parse)(spec, PathBuf::from(location), &options)
    }
}

fn parse_cifar100(spec: &str, dir: PathBuf, options: &[(String, String)]) -> Result<DataSpec> {
    let mut labels = Cifar100Labels::Coarse;
    for (_, v) in options {
        labels = match v.to_ascii_lowercase().as_str() {
            "coarse" | "superclass" => Cifar100Labels::Coarse,
            "coarse-csi" | "csi" => Cifar100Labels::CoarseCsi,
            "fine" => Cifar100Labels::Fine,
            _ => {
                return Err(bad(
                    spec,
                    format!("labels '{v}': expected coarse, coarse-csi or fine"),
                ));
            }
        };
    }
    Ok(DataSpec::Cifar100 { dir, labels })
}

fn parse_folder(spec: &str, dir: PathBuf, options: &[(String, String)]) -> Result<DataSpec> {
    let mut o = FolderOptions::default();
    for (k, v) in options {
        match k.as_str() {
            "size" => o.size = Some(parse_size(spec, v)?),
            "channels" => {
                o.channels = match v.to_ascii_lowercase().as_str() {
                    "auto" => ChannelMode::Auto,
                    "1" | "gray" | "grey" => ChannelMode::Gray,
                    "3" | "rgb" => ChannelMode::Rgb,
                    _ => {
                        return Err(bad(spec, format!("channels '{v}': expected auto, 1 or 3")));
                    }
                }
            }
            _ => {
                o.resize = match v.to_ascii_lowercase().as_str() {
                    "stretch" => ResizePolicy::Stretch,
                    "center-crop" | "centre-crop" | "crop" => ResizePolicy::CenterCrop,
                    _ => {
                        return Err(bad(
                            spec,
                            format!("resize '{v}': expected stretch or center-crop"),
                        ));
                    }
                }
            }
        }
    }
    Ok(DataSpec::Folder { dir, options: o })
}

fn parse_embedded(spec: &str, location: PathBuf, _: &[(String, String)]) -> Result<DataSpec> {
    let location = location.to_string_lossy().to_ascii_lowercase();
    EmbeddedDataset::ALL
        .into_iter()
        .find(|e| e.name() == location)
        .map(DataSpec::Embedded)
        .ok_or_else(|| {
            bad(
                spec,
                format!(
                    "no embedded data set '{location}'; available: {}",
                    EmbeddedDataset::ALL.map(|e| e.name()).join(", ")
                ),
            )
        })
}

impl serde::Serialize for DataSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DataSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kind table is the only place kinds live: every name and alias parses to a spec whose
    /// `kind()` is the entry, prints back in canonical form, and every variant has an entry.
    #[test]
    fn the_kind_table_is_complete_and_consistent() {
        let location = |k: &SpecKind| {
            if k.name == "embedded" {
                "fashion-mnist"
            } else {
                "/data/x"
            }
        };
        let mut seen = Vec::new();
        for k in SPEC_KINDS {
            for keyword in std::iter::once(&k.name).chain(k.aliases) {
                let text = format!("{}:{}", keyword.to_uppercase(), location(k));
                let spec: DataSpec = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
                assert_eq!(spec.kind(), k.name, "{text}");
                assert_eq!(spec.to_string(), format!("{}:{}", k.name, location(k)));
            }
            assert!(
                k.syntax.starts_with(&format!("{}:", k.name)),
                "{}",
                k.syntax
            );
            for o in k.options {
                assert!(
                    k.syntax.contains(&format!("{o}=")),
                    "{} lacks {o}",
                    k.syntax
                );
            }
            seen.push(k.name);
        }
        // Exhaustive over the enum: a new variant without a table entry fails to compile here
        // or has kind() == "unregistered".
        let p = PathBuf::from("/d");
        for spec in [
            DataSpec::FashionMnist(p.clone()),
            DataSpec::Mnist(p.clone()),
            DataSpec::Cifar10(p.clone()),
            DataSpec::Svhn(p.clone()),
            DataSpec::Cifar100 {
                dir: p.clone(),
                labels: Cifar100Labels::Fine,
            },
            DataSpec::MedMnist {
                file: p.clone(),
                name: None,
            },
            DataSpec::Folder {
                dir: p.clone(),
                options: FolderOptions::default(),
            },
            DataSpec::Embedded(EmbeddedDataset::ALL[0]),
        ] {
            let exhaustive = match &spec {
                DataSpec::FashionMnist(_)
                | DataSpec::Mnist(_)
                | DataSpec::Cifar10(_)
                | DataSpec::Svhn(_)
                | DataSpec::Cifar100 { .. }
                | DataSpec::MedMnist { .. }
                | DataSpec::Folder { .. }
                | DataSpec::Embedded(_) => spec.kind(),
            };
            assert!(seen.contains(&exhaustive), "{spec:?}");
        }
    }

    #[test]
    fn parses_every_kind_and_roundtrips() {
        for s in [
            "fashion-mnist:/usr/share/datasets/fashion-mnist",
            "mnist:data/mnist",
            "cifar10:/d/c10",
            "svhn:/d/svhn",
            "cifar100:/d/c100",
            "cifar100:/d/c100,labels=coarse-csi",
            "cifar100:/d/c100,labels=fine",
            "medmnist:/d/breastmnist.npz",
            "medmnist:/d/x.npz,name=octmnist",
            "folder:/d/bottle",
            "folder:/d/bottle,size=32x48,channels=3,resize=center-crop",
            "folder:/d/bottle,channels=1",
            "embedded:fashion-mnist",
        ] {
            let spec: DataSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        let spec: DataSpec = "FMNIST:/x".parse().unwrap();
        assert_eq!(spec, DataSpec::FashionMnist("/x".into()));
        let spec: DataSpec = "folder:/x,size=64,channels=rgb,resize=crop"
            .parse()
            .unwrap();
        assert_eq!(
            spec,
            DataSpec::Folder {
                dir: "/x".into(),
                options: FolderOptions {
                    size: Some((64, 64)),
                    channels: ChannelMode::Rgb,
                    resize: ResizePolicy::CenterCrop
                }
            }
        );
    }

    #[test]
    fn unknown_kind_lists_valid_kinds() {
        let e = "imagenet:/d".parse::<DataSpec>().unwrap_err();
        assert!(matches!(&e, Error::UnknownSpecKind { kind, .. } if kind == "imagenet"));
        let msg = e.to_string();
        for k in SPEC_KINDS {
            assert!(msg.contains(k.syntax), "{msg} lacks {}", k.syntax);
        }
    }

    #[test]
    fn malformed_specs() {
        for (s, needle) in [
            ("cifar10", "expected KIND:LOCATION"),
            ("cifar10:", "no location"),
            ("cifar10:/d,size=3", "takes no options"),
            ("folder:/d,sise=3", "unknown option 'sise'"),
            ("folder:/d,size=0x3", "not HxW"),
            ("folder:/d,size=99999", "between 1 and 16384"),
            ("folder:/d,channels=2", "channels '2'"),
            ("folder:/d,resize=zoom", "resize 'zoom'"),
            ("folder:/d,oops", "not KEY=VALUE"),
            ("cifar100:/d,labels=medium", "labels 'medium'"),
            ("embedded:cifar10", "no embedded data set"),
        ] {
            let e = s.parse::<DataSpec>().unwrap_err();
            assert!(e.to_string().contains(needle), "{s}: {e}");
        }
    }

    #[test]
    fn serde_as_string() {
        let spec: DataSpec = "folder:/d,size=8x8".parse().unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(json, "\"folder:/d,size=8x8\"");
        let back: DataSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        assert!(serde_json::from_str::<DataSpec>("\"nope:/d\"").is_err());
    }
}
