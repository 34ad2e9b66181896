//! Image folders in an MVTec-AD-like layout (png / jpg / bmp; grey or RGB; any size).
//!
//! # Layout
//! ```text
//! DIR/
//!   train/good/*.png|jpg|jpeg|bmp     normal training images      (the folder may be named `normal`)
//!   test/good/*                       normal test images          (optional; `normal` accepted too)
//!   test/<anomaly type>/*             one folder per anomaly type; its name becomes a class name
//!                                     (test/ itself is optional: without it the test split is
//!                                     empty, for fitting a detector on normal images only)
//!   (anything else in DIR, e.g. MVTec's ground_truth/, is ignored)
//! ```
//! Class 0 is the normal class (named after its folder, `good` or `normal`); anomaly types follow
//! in alphabetical order. Every training image has label 0, so the one-class protocol's default
//! normal class is 0. Files are read in name order; hidden entries (`.…`) are ignored; files with
//! other extensions are skipped and reported in the load notes. A class folder without images, a
//! missing `train/good`, or a `test/` without any class folder is an [`Error::BadFolderLayout`]
//! that lists what was expected and what was found.
//!
//! # Size and channels
//! - `size`: target `(H, W)`. Without it, all images must already share one size
//!   ([`Error::InconsistentImageSizes`] otherwise).
//! - [`ResizePolicy::Stretch`]: bilinear resize to exactly `H×W` (aspect ratio not kept).
//!   [`ResizePolicy::CenterCrop`]: bilinear resize so the image covers `H×W` with its aspect
//!   ratio kept (the shorter relative side hits the target), then a centre crop (offsets floored).
//!   Bilinear = the `image` crate's triangle filter, which, like PIL's `BILINEAR`, widens its
//!   support when downscaling (antialiasing).
//! - [`ChannelMode::Auto`]: 1 channel if every image is grey (grey colour type, or RGB with
//!   R = G = B everywhere), else 3 (grey images replicated). `Gray` converts colour with PIL's
//!   ITU-R 601 integer formula `(19595 R + 38470 G + 7471 B + 2¹⁵) >> 16`; `Rgb` replicates grey.
//!   Alpha is dropped; 16-bit images are scaled to 8 bits.

use crate::dataset::{Dataset, LoadedData};
use crate::error::{Error, Result};
use image::{DynamicImage, ImageBuffer, Luma, Rgb, imageops::FilterType};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Accepted image extensions (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];
/// Accepted names of the normal-class folder.
pub const NORMAL_FOLDER_NAMES: [&str; 2] = ["good", "normal"];

/// How images are brought to the target size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResizePolicy {
    /// Bilinear resize to exactly the target size.
    #[default]
    Stretch,
    /// Resize keeping the aspect ratio so the image covers the target, then crop the centre.
    CenterCrop,
}

/// Output channel count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelMode {
    /// 1 if every image is grey, else 3.
    #[default]
    Auto,
    /// 1 channel (colour images converted with ITU-R 601 weights).
    Gray,
    /// 3 channels (grey images replicated).
    Rgb,
}

/// Options of the `folder:` loader (spec syntax `folder:DIR,size=HxW,channels=1|3|auto,resize=stretch|center-crop`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderOptions {
    /// Target size (H, W); `None` = keep the (common) native size.
    pub size: Option<(usize, usize)>,
    /// Output channels.
    pub channels: ChannelMode,
    /// Resize policy (used only with `size`).
    pub resize: ResizePolicy,
}

impl FolderOptions {
    /// Checks the options.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a zero or absurd target size.
    pub fn validate(&self) -> Result<()> {
        if let Some((h, w)) = self.size
            && (h == 0 || w == 0 || h > 16384 || w > 16384)
        {
            return Err(Error::invalid(
                "size",
                format!("{h}x{w}"),
                "height and width between 1 and 16384",
            ));
        }
        Ok(())
    }
}

/// One decoded image before channel unification.
pub(crate) struct Decoded {
    pub(crate) pixels: Vec<u8>,
    pub(crate) height: usize,
    pub(crate) width: usize,
    pub(crate) channels: usize,
}

fn visible_entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let is_dir = path.is_dir();
        out.push((name, path, is_dir));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn describe(entries: &[(String, PathBuf, bool)]) -> Vec<String> {
    entries
        .iter()
        .map(|(n, _, d)| if *d { format!("{n}/") } else { n.clone() })
        .collect()
}

pub(crate) fn is_image(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| IMAGE_EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)))
}

/// Finds the normal-class folder among `entries` of `dir`.
fn normal_folder(
    dir: &Path,
    entries: &[(String, PathBuf, bool)],
    required: bool,
) -> Result<Option<(String, PathBuf)>> {
    let found: Vec<&(String, PathBuf, bool)> = entries
        .iter()
        .filter(|(n, _, d)| *d && NORMAL_FOLDER_NAMES.contains(&n.as_str()))
        .collect();
    match found.as_slice() {
        [] if required => Err(Error::BadFolderLayout {
            dir: dir.to_path_buf(),
            expected: "a folder named good/ (or normal/) holding the normal training images".into(),
            found: describe(entries),
        }),
        [] => Ok(None),
        [(n, p, _)] => Ok(Some((n.clone(), p.clone()))),
        _ => Err(Error::BadFolderLayout {
            dir: dir.to_path_buf(),
            expected: "exactly one of good/ and normal/ (both are present)".into(),
            found: describe(entries),
        }),
    }
}

/// Image files of a class folder, sorted by name; `skipped` collects other entries.
fn class_images(dir: &Path, skipped: &mut Vec<String>) -> Result<Vec<PathBuf>> {
    let entries = visible_entries(dir)?;
    let mut images = Vec::new();
    for (name, path, is_dir) in &entries {
        if !is_dir && is_image(name) {
            images.push(path.clone());
        } else {
            skipped.push(path.display().to_string());
        }
    }
    if images.is_empty() {
        return Err(Error::BadFolderLayout {
            dir: dir.to_path_buf(),
            expected: format!("image files ({})", IMAGE_EXTENSIONS.join(", ")),
            found: describe(&entries),
        });
    }
    Ok(images)
}

/// PIL's `convert("L")`: ITU-R 601 luma in 16-bit fixed point.
pub fn rgb_to_luma(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
}

pub(crate) fn decode(path: &Path) -> Result<Decoded> {
    let err = |message: String| Error::ImageDecode {
        path: path.to_path_buf(),
        message,
    };
    let img: DynamicImage = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .decode()
        .map_err(|e| err(e.to_string()))?;
    let (width, height) = (img.width() as usize, img.height() as usize);
    if width == 0 || height == 0 {
        return Err(err(format!("the image is {height}×{width} pixels")));
    }
    if !img.color().has_color() {
        return Ok(Decoded {
            pixels: img.to_luma8().into_raw(),
            height,
            width,
            channels: 1,
        });
    }
    let rgb = img.to_rgb8().into_raw();
    if rgb.chunks_exact(3).all(|p| p[0] == p[1] && p[1] == p[2]) {
        // Grey content in an RGB (or palette) container: keep it as grey.
        let pixels = rgb.chunks_exact(3).map(|p| p[0]).collect();
        return Ok(Decoded {
            pixels,
            height,
            width,
            channels: 1,
        });
    }
    Ok(Decoded {
        pixels: rgb,
        height,
        width,
        channels: 3,
    })
}

pub(crate) fn to_channels(d: Decoded, channels: usize) -> Decoded {
    match (d.channels, channels) {
        (1, 3) => Decoded {
            pixels: d.pixels.iter().flat_map(|&p| [p, p, p]).collect(),
            channels: 3,
            ..d
        },
        (3, 1) => Decoded {
            pixels: d
                .pixels
                .chunks_exact(3)
                .map(|p| rgb_to_luma(p[0], p[1], p[2]))
                .collect(),
            channels: 1,
            ..d
        },
        _ => d,
    }
}

/// Bilinear (triangle-filter) resize of an (H, W, C) u8 image, C ∈ {1, 3}.
///
/// # Shapes
/// `pixels`: `h·w·c` bytes; returns `th·tw·c` bytes.
pub fn resize_bilinear(
    pixels: &[u8],
    (h, w): (usize, usize),
    c: usize,
    (th, tw): (usize, usize),
) -> Vec<u8> {
    if (h, w) == (th, tw) {
        return pixels.to_vec();
    }
    let (w32, h32, tw32, th32) = (w as u32, h as u32, tw as u32, th as u32);
    match c {
        1 => ImageBuffer::<Luma<u8>, _>::from_raw(w32, h32, pixels.to_vec())
            .map(|b| image::imageops::resize(&b, tw32, th32, FilterType::Triangle).into_raw()),
        _ => ImageBuffer::<Rgb<u8>, _>::from_raw(w32, h32, pixels.to_vec())
            .map(|b| image::imageops::resize(&b, tw32, th32, FilterType::Triangle).into_raw()),
    }
    .unwrap_or_else(|| vec![0; th * tw * c])
}

/// Resize keeping the aspect ratio so the result covers `(th, tw)`, then crop the centre.
///
/// # Shapes
/// `pixels`: `h·w·c` bytes; returns `th·tw·c` bytes.
pub fn resize_center_crop(
    pixels: &[u8],
    (h, w): (usize, usize),
    c: usize,
    (th, tw): (usize, usize),
) -> Vec<u8> {
    let scale = (th as f64 / h as f64).max(tw as f64 / w as f64);
    let nh = ((h as f64 * scale).round() as usize).max(th);
    let nw = ((w as f64 * scale).round() as usize).max(tw);
    let resized = resize_bilinear(pixels, (h, w), c, (nh, nw));
    let (top, left) = ((nh - th) / 2, (nw - tw) / 2);
    let mut out = Vec::with_capacity(th * tw * c);
    for y in top..top + th {
        let row = (y * nw + left) * c;
        out.extend_from_slice(&resized[row..row + tw * c]);
    }
    out
}

pub(crate) fn fit(d: Decoded, options: &FolderOptions) -> Decoded {
    let Some((th, tw)) = options.size else {
        return d;
    };
    let pixels = match options.resize {
        ResizePolicy::Stretch => {
            resize_bilinear(&d.pixels, (d.height, d.width), d.channels, (th, tw))
        }
        ResizePolicy::CenterCrop => {
            resize_center_crop(&d.pixels, (d.height, d.width), d.channels, (th, tw))
        }
    };
    Decoded {
        pixels,
        height: th,
        width: tw,
        ..d
    }
}

/// The normal training images of an image folder (`train/good/` or `train/normal/`), in the
/// order [`load_folder`] reads them: image `i` of the training split is file `i`.
///
/// # Errors
/// [`Error::BadFolderLayout`] without a normal training folder or images in it.
pub fn training_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let (_, (_, normal)) = train_normal_folder(dir)?;
    class_images(&normal, &mut Vec::new())
}

/// A folder entry: name, path, whether it is a folder.
type Entry = (String, PathBuf, bool);

/// The entries of `dir/train/` and its normal-class folder (name, path).
fn train_normal_folder(dir: &Path) -> Result<(Vec<Entry>, (String, PathBuf))> {
    let train_dir = dir.join("train");
    let entries = visible_entries(&train_dir)?;
    let normal =
        normal_folder(&train_dir, &entries, true)?.ok_or_else(|| Error::BadFolderLayout {
            dir: train_dir.clone(),
            expected: "good/".into(),
            found: describe(&entries),
        })?;
    Ok((entries, normal))
}

/// Loads an image folder (see the module docs for the layout and options).
///
/// # Errors
/// [`Error::MissingFile`] for a missing `dir`; [`Error::BadFolderLayout`];
/// [`Error::ImageDecode`]; [`Error::InconsistentImageSizes`] without `size`;
/// [`Error::InvalidParameter`] for bad options.
pub fn load_folder(dir: &Path, options: &FolderOptions) -> Result<LoadedData> {
    options.validate()?;
    if !dir.is_dir() {
        return Err(Error::MissingFile {
            what: "image folder".into(),
            path: dir.to_path_buf(),
            hint: "give a folder holding train/good/ and test/<class>/ (see conad_data::folder)"
                .into(),
        });
    }
    let top = visible_entries(dir)?;
    let has = |name: &str| top.iter().any(|(n, _, d)| *d && n == name);
    if !has("train") {
        return Err(Error::BadFolderLayout {
            dir: dir.to_path_buf(),
            expected: "a train/ folder (train/good/, and optionally test/good/ and \
                       test/<anomaly type>/)"
                .into(),
            found: describe(&top),
        });
    }
    let has_test = has("test");
    let test_dir = dir.join("test");
    let (train_entries, (normal_name, train_normal)) = train_normal_folder(dir)?;
    // Without test/ the data set has training images only (e.g. `conad fit` on normal images).
    let test_entries = if has_test {
        visible_entries(&test_dir)?
    } else {
        Vec::new()
    };
    let test_normal = normal_folder(&test_dir, &test_entries, false)?;
    let anomaly_dirs: Vec<(String, PathBuf)> = test_entries
        .iter()
        .filter(|(n, _, d)| *d && !NORMAL_FOLDER_NAMES.contains(&n.as_str()))
        .map(|(n, p, _)| (n.clone(), p.clone()))
        .collect();
    if has_test && test_normal.is_none() && anomaly_dirs.is_empty() {
        return Err(Error::BadFolderLayout {
            dir: test_dir,
            expected: "good/ (normal test images) and/or one folder per anomaly type".into(),
            found: describe(&test_entries),
        });
    }
    // Entries that are not class folders: files in train/ or test/, other folders in train/.
    let mut skipped: Vec<String> = train_entries
        .iter()
        .filter(|(_, p, d)| !*d || *p != train_normal)
        .chain(test_entries.iter().filter(|(_, _, d)| !*d))
        .map(|(_, p, _)| p.display().to_string())
        .collect();
    let mut class_names = vec![normal_name];
    class_names.extend(anomaly_dirs.iter().map(|(n, _)| n.clone()));

    // (path, label, is_test)
    let mut files: Vec<(PathBuf, u32, bool)> = class_images(&train_normal, &mut skipped)?
        .into_iter()
        .map(|p| (p, 0, false))
        .collect();
    if let Some((_, p)) = &test_normal {
        files.extend(
            class_images(p, &mut skipped)?
                .into_iter()
                .map(|p| (p, 0, true)),
        );
    }
    for (k, (_, p)) in anomaly_dirs.iter().enumerate() {
        files.extend(
            class_images(p, &mut skipped)?
                .into_iter()
                .map(|p| (p, k as u32 + 1, true)),
        );
    }

    let forced = match options.channels {
        ChannelMode::Gray => Some(1),
        ChannelMode::Rgb => Some(3),
        ChannelMode::Auto => None,
    };
    let decoded: Vec<Decoded> = files
        .par_iter()
        .map(|(p, _, _)| {
            let d = decode(p)?;
            let d = match forced {
                Some(c) => to_channels(d, c),
                None => d,
            };
            Ok(fit(d, options))
        })
        .collect::<Result<Vec<_>>>()?;
    let (h, w) = (decoded[0].height, decoded[0].width);
    if let Some((i, d)) = decoded
        .iter()
        .enumerate()
        .find(|(_, d)| (d.height, d.width) != (h, w))
    {
        return Err(Error::InconsistentImageSizes {
            first: files[0].0.clone(),
            first_hw: (h, w),
            other: files[i].0.clone(),
            other_hw: (d.height, d.width),
        });
    }
    let channels = forced.unwrap_or(if decoded.iter().all(|d| d.channels == 1) {
        1
    } else {
        3
    });

    let shape = (h, w, channels);
    let mut splits = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    for (d, (_, label, is_test)) in decoded.into_iter().zip(&files) {
        let d = to_channels(d, channels);
        let (images, labels) = &mut splits[usize::from(*is_test)];
        images.extend_from_slice(&d.pixels);
        labels.push(*label);
    }
    let [(train_images, train_labels), (test_images, test_labels)] = splits;
    let mut notes = vec![format!(
        "image folder: normal class '{}' = label 0, {} anomaly type(s){}",
        class_names[0],
        anomaly_dirs.len(),
        match options.size {
            Some((th, tw)) => format!(", resized to {th}×{tw} ({:?})", options.resize),
            None => String::new(),
        }
    )];
    if !has_test {
        notes.push(format!(
            "{} has no test/ folder: training images only (no evaluation)",
            dir.display()
        ));
    } else if test_normal.is_none() {
        notes.push(format!(
            "{} has no good/ folder: the test split has no normal images",
            test_dir.display()
        ));
    }
    if !skipped.is_empty() {
        notes.push(format!(
            "skipped {} non-image entries: {}",
            skipped.len(),
            skipped.join(", ")
        ));
    }
    let data = LoadedData {
        name: "folder".into(),
        source: format!("folder:{}", dir.display()),
        train: Dataset::new(
            train_images,
            train_labels.len(),
            shape,
            train_labels,
            class_names.clone(),
        )?,
        val: None,
        test: Dataset::new(
            test_images,
            test_labels.len(),
            shape,
            test_labels,
            class_names,
        )?,
        default_normal_classes: Some(vec![0]),
        notes,
    };
    data.validate()?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_matches_pil() {
        // PIL 9.4:
        // for c in [(255,0,0),(0,255,0),(0,0,255),(10,200,30),(7,7,7),(200,100,50),(1,2,3)]:
        //     print(Image.new("RGB", (1, 1), c).convert("L").getpixel((0, 0)))
        // → 76 150 29 124 7 124 2
        let cases = [
            ((255, 0, 0), 76),
            ((0, 255, 0), 150),
            ((0, 0, 255), 29),
            ((10, 200, 30), 124),
            ((7, 7, 7), 7),
            ((200, 100, 50), 124),
            ((1, 2, 3), 2),
        ];
        for ((r, g, b), l) in cases {
            assert_eq!(rgb_to_luma(r, g, b), l, "({r},{g},{b})");
        }
    }

    #[test]
    fn resize_constant_and_identity() {
        let img = vec![77u8; 5 * 7 * 3];
        assert_eq!(
            resize_bilinear(&img, (5, 7), 3, (3, 11)),
            vec![77u8; 3 * 11 * 3]
        );
        assert_eq!(
            resize_center_crop(&img, (5, 7), 3, (4, 4)),
            vec![77u8; 4 * 4 * 3]
        );
        let grad: Vec<u8> = (0..20).collect();
        assert_eq!(resize_bilinear(&grad, (4, 5), 1, (4, 5)), grad);
    }

    #[test]
    fn bilinear_matches_pil_within_one_level() {
        // PIL 9.4:
        //   a = (np.arange(24).reshape(4, 6) * 10).astype(np.uint8); im = Image.fromarray(a, "L")
        //   np.asarray(im.resize((3, 2), Image.BILINEAR))  # and (9, 6), (4, 3)
        let img: Vec<u8> = (0..24).map(|v| v * 10).collect();
        let cases: [((usize, usize), Vec<u8>); 3] = [
            ((2, 3), vec![50, 68, 86, 144, 162, 180]),
            (
                (6, 9),
                vec![
                    0, 5, 12, 18, 25, 32, 38, 45, 50, 30, 35, 42, 48, 55, 62, 68, 75, 80, 70, 75,
                    82, 88, 95, 102, 108, 115, 120, 110, 115, 122, 128, 135, 142, 148, 155, 160,
                    150, 155, 162, 168, 175, 182, 188, 195, 200, 180, 185, 192, 198, 205, 212, 218,
                    225, 230,
                ],
            ),
            (
                (3, 4),
                vec![22, 36, 50, 64, 94, 108, 122, 136, 166, 180, 194, 208],
            ),
        ];
        for (size, pil) in cases {
            let ours = resize_bilinear(&img, (4, 6), 1, size);
            assert_eq!(ours.len(), pil.len());
            for (k, (&a, &b)) in ours.iter().zip(&pil).enumerate() {
                assert!(
                    a.abs_diff(b) <= 1,
                    "{size:?} pixel {k}: ours {a}, PIL {b}\n{ours:?}"
                );
            }
        }
    }

    #[test]
    fn center_crop_takes_the_middle() {
        // 2×6 grey image, target 2×2: scale 1 (height fits), crop columns 2..4.
        let img: Vec<u8> = (0..12).map(|v| v * 10).collect();
        assert_eq!(
            resize_center_crop(&img, (2, 6), 1, (2, 2)),
            vec![20, 30, 80, 90]
        );
    }
}
