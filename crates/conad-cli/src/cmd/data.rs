//! `conad data info SPEC`: per-split, per-class counts, image shape and channels.
//! `conad data export SPEC --out DIR`: a one-class task as PNG files in the `folder:` layout
//! (`DIR/train/good/`, `DIR/test/good/`, `DIR/test/<class>/`), e.g. BreastMNIST for `conad fit`.
use crate::output::outln;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use conad_data::{DataSpec, DatasetInfo, OneClassProtocol};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Print per-split, per-class counts, image shape and channels of a dataset.
    Info(InfoArgs),
    /// Write a one-class task as PNG files in the `folder:` layout (train/good, test/good,
    /// test/<anomalous class>): normal training images, normal and anomalous test images.
    Export(ExportArgs),
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Dataset spec, e.g. `medmnist:breastmnist.npz`.
    pub spec: String,
    /// Normal class label(s), comma-separated; omitted = the data set's conventional normal class.
    #[arg(long = "normal-class", value_delimiter = ',')]
    pub normal_class: Vec<u32>,
    /// Output folder (must not exist, or be empty).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Dataset spec, e.g. `embedded:fashion-mnist`, `fashion-mnist:DIR`, `cifar10:DIR`,
    /// `cifar100:DIR`, `medmnist:FILE.npz`, `folder:DIR`.
    pub spec: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Info(args) => info(&args),
        DataCommand::Export(args) => export(&args),
    }
}

fn info(args: &InfoArgs) -> Result<()> {
    let spec: DataSpec = args.spec.parse()?;
    let data = spec
        .load()
        .with_context(|| format!("loading {}", args.spec))?;
    let info = DatasetInfo::of(&data);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&info)?)?;
    } else {
        crate::output::write_stdout(format_args!("{info}"))?;
    }
    Ok(())
}

/// A class name as a folder name: letters, digits, `-` and `_` kept, runs of anything else
/// become one `_`.
fn folder_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.is_empty() { "class".into() } else { out }
}

/// [`folder_name`] for an anomalous class; a name the folder layout reserves for the normal
/// images (`good`, `normal`) gets an `anomaly_` prefix.
fn anomaly_folder_name(name: &str) -> String {
    let f = folder_name(name);
    if conad_data::folder::NORMAL_FOLDER_NAMES.contains(&f.to_ascii_lowercase().as_str()) {
        format!("anomaly_{f}")
    } else {
        f
    }
}

fn write_png(path: &Path, pixels: &[u8], (h, w, c): (usize, usize, usize)) -> Result<()> {
    let png = crate::png::encode(pixels, h, w, c)
        .with_context(|| format!("encoding {}", path.display()))?;
    Ok(conad_fs::write_atomic(path, &png)?)
}

fn export(args: &ExportArgs) -> Result<()> {
    if args.out.exists()
        && std::fs::read_dir(&args.out)
            .with_context(|| format!("reading {}", args.out.display()))?
            .next()
            .is_some()
    {
        bail!(
            "--out {} exists and is not empty; give a new folder",
            args.out.display()
        );
    }
    let spec: DataSpec = args.spec.parse()?;
    let data = spec
        .load()
        .with_context(|| format!("loading {}", args.spec))?;
    let task = OneClassProtocol::new(args.normal_class.clone()).build(&data)?;
    let names = data.class_names();
    let shape = (task.train.height, task.train.width, task.train.channels);
    let mut written = 0usize;
    let mut put = |dir: PathBuf, file: String, pixels: &[u8]| -> Result<()> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        write_png(&dir.join(file), pixels, shape)?;
        written += 1;
        Ok(())
    };
    for (k, &i) in task.train_source_indices.iter().enumerate() {
        put(
            args.out.join("train/good"),
            format!("train_{i:06}.png"),
            task.train.image(k),
        )?;
    }
    for (k, &i) in task.test_source_indices.iter().enumerate() {
        let class = if task.test_is_anomaly[k] {
            anomaly_folder_name(&names[task.test.labels[k] as usize])
        } else {
            "good".to_string()
        };
        put(
            args.out.join("test").join(class),
            format!("test_{i:06}.png"),
            task.test.image(k),
        )?;
    }
    outln!(
        "{}: {written} PNG files → {}",
        task.description,
        args.out.display()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{anomaly_folder_name, folder_name};

    #[test]
    fn class_names_become_folder_names() {
        assert_eq!(folder_name("malignant"), "malignant");
        assert_eq!(folder_name("normal, benign"), "normal_benign");
        assert_eq!(folder_name("T-shirt/top"), "T-shirt_top");
        assert_eq!(folder_name("///"), "class");
        // PneumoniaMNIST's anomalous class is called "normal" when pneumonia is normal.
        assert_eq!(anomaly_folder_name("normal"), "anomaly_normal");
        assert_eq!(anomaly_folder_name("Good"), "anomaly_Good");
        assert_eq!(anomaly_folder_name("malignant"), "malignant");
    }
}
