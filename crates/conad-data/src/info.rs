//! A summary of a loaded data set: per split the image count, shape and per-class counts.
//! `Display` prints a table (what `conad data info SPEC` shows); `Serialize` gives the JSON form.

use crate::dataset::{Dataset, LoadedData};
use serde::Serialize;
use std::fmt;

/// Count of one class in one split.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClassCount {
    /// Label.
    pub label: u32,
    /// Class name.
    pub name: String,
    /// Number of images.
    pub count: usize,
}

/// Summary of one split.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SplitInfo {
    /// `"train"`, `"val"` or `"test"`.
    pub split: String,
    /// Number of images.
    pub count: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Channels.
    pub channels: usize,
    /// Images per class, label order (every class listed, zeros included).
    pub per_class: Vec<ClassCount>,
}

impl SplitInfo {
    /// Summarises one split.
    pub fn of(split: &str, d: &Dataset) -> Self {
        Self {
            split: split.to_string(),
            count: d.len(),
            height: d.height,
            width: d.width,
            channels: d.channels,
            per_class: d
                .class_counts()
                .into_iter()
                .enumerate()
                .map(|(l, count)| ClassCount {
                    label: l as u32,
                    name: d.class_names[l].clone(),
                    count,
                })
                .collect(),
        }
    }
}

/// Summary of a loaded data set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DatasetInfo {
    /// Data set name.
    pub name: String,
    /// The spec it was loaded from.
    pub source: String,
    /// Number of classes.
    pub num_classes: usize,
    /// The conventional normal class(es), if any.
    pub default_normal_classes: Option<Vec<u32>>,
    /// train, val (if present), test.
    pub splits: Vec<SplitInfo>,
    /// Remarks made while loading.
    pub notes: Vec<String>,
}

impl DatasetInfo {
    /// Summarises `data`.
    pub fn of(data: &LoadedData) -> Self {
        let mut splits = vec![SplitInfo::of("train", &data.train)];
        if let Some(v) = &data.val {
            splits.push(SplitInfo::of("val", v));
        }
        splits.push(SplitInfo::of("test", &data.test));
        Self {
            name: data.name.clone(),
            source: data.source.clone(),
            num_classes: data.class_names().len(),
            default_normal_classes: data.default_normal_classes.clone(),
            splits,
            notes: data.notes.clone(),
        }
    }
}

impl fmt::Display for DatasetInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "data set: {} ({})", self.name, self.source)?;
        let shapes: Vec<String> = self
            .splits
            .iter()
            .map(|s| format!("{} {}×{}×{}", s.split, s.height, s.width, s.channels))
            .collect();
        let same = self.splits.windows(2).all(|w| {
            (w[0].height, w[0].width, w[0].channels) == (w[1].height, w[1].width, w[1].channels)
        });
        match (same, self.splits.first()) {
            (true, Some(s)) => writeln!(
                f,
                "image shape (H×W×C): {}×{}×{}",
                s.height, s.width, s.channels
            )?,
            _ => writeln!(f, "image shape (H×W×C): {}", shapes.join(", "))?,
        }
        if let Some(normal) = &self.default_normal_classes {
            let names: Vec<String> = normal
                .iter()
                .map(|&l| {
                    let name = self
                        .splits
                        .first()
                        .and_then(|s| s.per_class.get(l as usize))
                        .map_or("?", |c| c.name.as_str());
                    format!("{l} ({name})")
                })
                .collect();
            writeln!(f, "default normal class: {}", names.join(", "))?;
        }
        let name_w = self
            .splits
            .first()
            .map(|s| {
                s.per_class
                    .iter()
                    .map(|c| c.name.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
            .max(5);
        let label_w = self.num_classes.saturating_sub(1).to_string().len().max(5);
        let col_w: Vec<usize> = self
            .splits
            .iter()
            .map(|s| s.split.len().max(s.count.to_string().len()).max(6))
            .collect();
        write!(f, "{:>label_w$}  {:<name_w$}", "label", "class")?;
        for (s, w) in self.splits.iter().zip(&col_w) {
            write!(f, "  {:>w$}", s.split)?;
        }
        writeln!(f)?;
        for l in 0..self.num_classes {
            let name = self
                .splits
                .first()
                .map_or("", |s| s.per_class[l].name.as_str());
            write!(f, "{l:>label_w$}  {name:<name_w$}")?;
            for (s, w) in self.splits.iter().zip(&col_w) {
                write!(f, "  {:>w$}", s.per_class.get(l).map_or(0, |c| c.count))?;
            }
            writeln!(f)?;
        }
        write!(f, "{:>label_w$}  {:<name_w$}", "", "total")?;
        for (s, w) in self.splits.iter().zip(&col_w) {
            write!(f, "  {:>w$}", s.count)?;
        }
        writeln!(f)?;
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}
