//! Single image files as a trained model sees them: the preprocessing a detector records
//! ([`ImagePreprocessing`]: the training images' size and channels and the resize policy) and
//! the recursive listing of image files under the paths a user gives.
//!
//! Decoding, channel conversion and resizing are the `folder:` loader's own
//! ([`crate::folder`]), so an image scored by a detector is prepared exactly like the images it
//! was trained on.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::folder::{self, ChannelMode, Decoded, FolderOptions, ResizePolicy};

/// How an image file becomes a model input: `height × width × channels` u8 pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePreprocessing {
    /// Height the model was trained on.
    pub height: usize,
    /// Width the model was trained on.
    pub width: usize,
    /// Channels the model was trained on (1 grey, 3 RGB): colour images are converted with
    /// ITU-R 601 luma, grey ones replicated.
    pub channels: usize,
    /// How an image of another size is brought to `height × width`.
    pub resize: ResizePolicy,
}

impl ImagePreprocessing {
    /// The preprocessing of a training set's images (`resize` for files of other sizes).
    pub fn of(train: &Dataset, resize: ResizePolicy) -> Self {
        Self {
            height: train.height,
            width: train.width,
            channels: train.channels,
            resize,
        }
    }

    /// Bytes per prepared image.
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Checks the fields.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero or absurd size or a channel count other than 1 or 3.
    pub fn validate(&self) -> Result<()> {
        FolderOptions {
            size: Some((self.height, self.width)),
            ..FolderOptions::default()
        }
        .validate()?;
        if self.channels != 1 && self.channels != 3 {
            return Err(Error::invalid(
                "preprocessing.channels",
                self.channels,
                "1 (grey) or 3 (RGB)",
            ));
        }
        Ok(())
    }

    fn options(&self) -> FolderOptions {
        FolderOptions {
            size: Some((self.height, self.width)),
            channels: if self.channels == 1 {
                ChannelMode::Gray
            } else {
                ChannelMode::Rgb
            },
            resize: self.resize,
        }
    }

    /// Brings decoded `height × width × channels` pixels (1 or 3 channels) to this
    /// preprocessing.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `pixels` does not hold `height·width·channels` bytes or
    /// `channels` is not 1 or 3.
    pub fn prepare(
        &self,
        pixels: Vec<u8>,
        (height, width, channels): (usize, usize, usize),
    ) -> Result<Vec<u8>> {
        if (channels != 1 && channels != 3)
            || height == 0
            || width == 0
            || pixels.len() != height * width * channels
        {
            return Err(Error::invalid(
                "image",
                format!("{} bytes for {height}×{width}×{channels}", pixels.len()),
                "height·width·channels bytes in HWC order, 1 or 3 channels",
            ));
        }
        let d = Decoded {
            pixels,
            height,
            width,
            channels,
        };
        Ok(folder::fit(folder::to_channels(d, self.channels), &self.options()).pixels)
    }

    /// Decodes an image file (png / jpg / bmp, any size, grey or colour) and prepares it.
    ///
    /// # Errors
    /// [`Error::Io`] for an unreadable file, [`Error::ImageDecode`] for a corrupt one.
    pub fn load(&self, path: &Path) -> Result<Vec<u8>> {
        let d = folder::decode(path)?;
        Ok(folder::fit(folder::to_channels(d, self.channels), &self.options()).pixels)
    }
}

/// Every image file (by extension, [`folder::IMAGE_EXTENSIONS`]) under `paths`: files as given,
/// folders recursively, each folder's entries in name order, hidden entries skipped.
///
/// # Errors
/// [`Error::MissingFile`] for a path that does not exist; [`Error::Io`] for an unreadable
/// folder.
pub fn find_image_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .map(|e| {
                let e = e.map_err(|e| Error::io(dir, e))?;
                Ok((e.file_name().to_string_lossy().into_owned(), e.path()))
            })
            .collect::<Result<_>>()?;
        entries.sort();
        for (name, path) in entries {
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                walk(&path, out)?;
            } else if folder::is_image(&name) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(Error::MissingFile {
                what: "image or folder".into(),
                path: p.clone(),
                hint: "give image files (png, jpg, bmp) or folders holding them".into(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(dir: &Path, name: &str, w: u32, h: u32, rgb: bool) -> PathBuf {
        let path = dir.join(name);
        if rgb {
            image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 40) as u8, (y * 40) as u8, 7]))
                .save(&path)
                .unwrap();
        } else {
            image::GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 10 + y) as u8]))
                .save(&path)
                .unwrap();
        }
        path
    }

    #[test]
    fn prepares_like_the_folder_loader() {
        let dir = std::env::temp_dir().join(format!("conad-image-file-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub/.hidden")).unwrap();
        let grey = png(&dir, "b.png", 6, 4, false);
        let colour = png(&dir.join("sub"), "a.png", 5, 5, true);
        png(&dir.join("sub/.hidden"), "x.png", 2, 2, false);
        std::fs::write(dir.join("notes.txt"), "not an image").unwrap();

        let grey3 = ImagePreprocessing {
            height: 4,
            width: 6,
            channels: 3,
            resize: ResizePolicy::Stretch,
        };
        // Same size: grey replicated to RGB, no resampling.
        let px = grey3.load(&grey).unwrap();
        assert_eq!(px.len(), 72);
        assert_eq!(&px[3..6], &[10, 10, 10]); // pixel (y 0, x 1)
        let luma = ImagePreprocessing {
            height: 5,
            width: 5,
            channels: 1,
            ..grey3
        };
        // Colour to grey with PIL's integer luma: pixel (0, 1) = (40, 0, 7).
        let px = luma.load(&colour).unwrap();
        assert_eq!(px[1], folder::rgb_to_luma(40, 0, 7));
        // Resizing goes through the folder loader's resampler.
        let small = ImagePreprocessing {
            height: 2,
            width: 3,
            ..grey3
        };
        let raw = image::open(&grey).unwrap().to_luma8().into_raw();
        let expected = folder::resize_bilinear(&raw, (4, 6), 1, (2, 3));
        let got = small.load(&grey).unwrap();
        assert_eq!(got.len(), 18);
        assert_eq!(got.chunks(3).map(|p| p[0]).collect::<Vec<_>>(), expected);

        let files = find_image_files(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(files, vec![grey.clone(), colour]);
        assert!(matches!(
            find_image_files(&[dir.join("missing.png")]),
            Err(Error::MissingFile { .. })
        ));
        std::fs::write(dir.join("broken.png"), b"\x89PNG garbage").unwrap();
        assert!(matches!(
            grey3.load(&dir.join("broken.png")),
            Err(Error::ImageDecode { .. })
        ));
        assert!(grey3.prepare(vec![0; 5], (2, 2, 1)).is_err());
        assert!(
            ImagePreprocessing {
                channels: 2,
                ..grey3
            }
            .validate()
            .is_err()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
