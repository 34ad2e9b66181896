//! Batched, parallel, reproducible augmentation into a view-major buffer (docs/reference.md §0, §7
//! "deterministic per-sample RNG").
//!
//! # Layout
//! For `N` sample indices, `V` views and `S` shifts the output is `(V·S·N, C, H, W)` f32,
//! row `(v·S + s)·N + n` = view `v` of shift `s` of sample `indices[n]`: all N images of view 0
//! (shift 0, then shift 1, …), then view 1, … Without shifts (`S = 1`) the positive of row `i` is
//! row `(i + N) mod 2N`, as the losses expect; with CSI's 4 rotations it is `(i + 4N) mod 8N`;
//! with CON2's `[Identity, context]` it is docs/reference.md §1.4's order. For batches that mix shifts per
//! item (FIRM's pre-expanded data set) use [`Augmenter::augment_items`]: `(V·M, C, H, W)`, row
//! `v·M + m`.
//!
//! # Randomness
//! The view `v` of dataset sample `i` under shift `t` in `epoch` draws from
//! `key = node.index(epoch).index(i).index(v)` (steps before the pipeline's shift slot) and from
//! `key.index(t.stream_id())` (the rest), where `node` is `root.child("augment")` for
//! [`Augmenter::new`]. A view therefore depends only on (seed, epoch, dataset index, view, shift) —
//! not on the batch it lands in, its row, the other rows, or the number of threads.

use conad_rng::SeedTree;
use rayon::prelude::*;

use crate::config::AugmentConfig;
use crate::error::{Error, Result};
use crate::image::{Image, check_shape};
use crate::pipeline::{Pipeline, Workspace};
use crate::shift::Shift;

/// A borrowed batch of uint8 images stored as (N, H, W, C), the layout of the dataset loaders.
#[derive(Clone, Copy, Debug)]
pub struct ImageBatchU8<'a> {
    data: &'a [u8],
    len: usize,
    height: usize,
    width: usize,
    channels: usize,
}

impl<'a> ImageBatchU8<'a> {
    /// Wraps `len` images of `height × width × channels` bytes each.
    ///
    /// # Errors
    /// [`Error::UnsupportedChannels`] unless `channels` is 1 or 3, [`Error::EmptySize`] for a
    /// zero side, [`Error::BufferLength`] if `data.len() != len·height·width·channels`.
    pub fn new(
        data: &'a [u8],
        len: usize,
        height: usize,
        width: usize,
        channels: usize,
    ) -> Result<Self> {
        check_shape(channels, height, width, "uint8 batch images")?;
        // Saturating: an absurd shape can never match a real buffer, so it reports a mismatch.
        let expected = len
            .saturating_mul(height)
            .saturating_mul(width)
            .saturating_mul(channels);
        if data.len() != expected {
            return Err(Error::BufferLength {
                what: format!("uint8 batch (N={len}, H={height}, W={width}, C={channels})"),
                expected,
                actual: data.len(),
            });
        }
        Ok(Self {
            data,
            len,
            height,
            width,
            channels,
        })
    }

    /// Number of images.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// `true` for an empty batch.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `[C, H, W]` of every image.
    pub const fn image_shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// The bytes of image `i`, (H, W, C).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `i >= len`.
    pub fn image_u8(&self, i: usize) -> Result<&'a [u8]> {
        if i >= self.len {
            return Err(Error::IndexOutOfRange {
                index: i,
                len: self.len,
            });
        }
        let n = self.height * self.width * self.channels;
        Ok(&self.data[i * n..(i + 1) * n])
    }

    /// Image `i` as an f32 (C, H, W) [`Image`].
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `i >= len`.
    pub fn image(&self, i: usize) -> Result<Image> {
        Image::from_u8_hwc(self.image_u8(i)?, self.height, self.width, self.channels)
    }
}

/// A pipeline plus the seed node its random streams derive from.
#[derive(Clone, Debug)]
pub struct Augmenter {
    pipeline: Pipeline,
    node: SeedTree,
}

impl Augmenter {
    /// The child label under the run's root: `root.child("augment")`.
    pub const SEED_LABEL: &'static str = "augment";

    /// An augmenter keyed by `root.child("augment")`.
    ///
    /// # Errors
    /// As [`AugmentConfig::validate`].
    pub fn new(config: &AugmentConfig, root: SeedTree) -> Result<Self> {
        Self::with_seed_node(config, root.child(Self::SEED_LABEL))
    }

    /// An augmenter keyed by `node` itself (e.g. a separate node per UniCon-HA stage or for a
    /// fixed test-time-augmentation set).
    ///
    /// # Errors
    /// As [`AugmentConfig::validate`].
    pub fn with_seed_node(config: &AugmentConfig, node: SeedTree) -> Result<Self> {
        Ok(Self {
            pipeline: Pipeline::new(config)?,
            node,
        })
    }

    /// The compiled pipeline.
    pub const fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The seed node of view `view` of dataset sample `sample` in `epoch`.
    pub fn view_key(&self, epoch: u64, sample: u64, view: u64) -> SeedTree {
        self.node.index(epoch).index(sample).index(view)
    }

    /// Shape `[C, H, W]` of every view for this batch and these shifts.
    ///
    /// # Errors
    /// [`Error::ZeroCount`] for no shifts, the pipeline's shape errors, and
    /// [`Error::InconsistentShape`] if two shifts give different shapes.
    pub fn view_shape(&self, images: &ImageBatchU8<'_>, shifts: &[Shift]) -> Result<[usize; 3]> {
        let first = *shifts.first().ok_or(Error::ZeroCount { what: "shifts" })?;
        let expected = self.pipeline.output_shape(images.image_shape(), first)?;
        for &shift in &shifts[1..] {
            let got = self.pipeline.output_shape(images.image_shape(), shift)?;
            if got != expected {
                return Err(Error::InconsistentShape {
                    shift: shift.to_string(),
                    expected,
                    got,
                });
            }
        }
        Ok(expected)
    }

    /// One view, exactly as any batch holding view `view` of `sample` under `shift` in `epoch`
    /// has it.
    ///
    /// # Errors
    /// As [`Pipeline::apply`].
    pub fn augment_one(
        &self,
        img: &Image,
        sample: u64,
        epoch: u64,
        view: u64,
        shift: Shift,
    ) -> Result<Image> {
        let key = self.view_key(epoch, sample, view);
        self.pipeline.apply(
            img,
            shift,
            &mut key.rng(),
            &mut key.index(shift.stream_id()).rng(),
        )
    }

    /// `V` views of every sample in `indices`, view-major: `(V·N, C, H, W)`.
    ///
    /// # Errors
    /// [`Error::ZeroCount`] for `views = 0`, [`Error::IndexOutOfRange`] for an index outside the
    /// batch, and the pipeline's shape errors for this image shape.
    pub fn augment_batch(
        &self,
        images: &ImageBatchU8<'_>,
        indices: &[usize],
        epoch: u64,
        views: usize,
    ) -> Result<Vec<f32>> {
        self.augment_batch_shifted(images, indices, epoch, views, &[Shift::Identity])
    }

    /// [`Augmenter::augment_batch`] into a preallocated buffer of exactly `V·N·C·H·W` values.
    ///
    /// # Errors
    /// As [`Augmenter::augment_batch`], plus [`Error::BufferLength`] for a wrong `out` length.
    pub fn augment_batch_into(
        &self,
        images: &ImageBatchU8<'_>,
        indices: &[usize],
        epoch: u64,
        views: usize,
        out: &mut [f32],
    ) -> Result<()> {
        self.augment_batch_shifted_into(images, indices, epoch, views, &[Shift::Identity], out)
    }

    /// `V` views of every shift of every sample: `(V·S·N, C, H, W)`, row `(v·S + s)·N + n`.
    ///
    /// # Errors
    /// As [`Augmenter::augment_batch`], plus [`Error::ZeroCount`] for no shifts,
    /// [`Error::InvalidShiftIndex`] and [`Error::InconsistentShape`].
    pub fn augment_batch_shifted(
        &self,
        images: &ImageBatchU8<'_>,
        indices: &[usize],
        epoch: u64,
        views: usize,
        shifts: &[Shift],
    ) -> Result<Vec<f32>> {
        let [c, h, w] = self.view_shape(images, shifts)?;
        let mut out = vec![0.0f32; views * shifts.len() * indices.len() * c * h * w];
        self.augment_batch_shifted_into(images, indices, epoch, views, shifts, &mut out)?;
        Ok(out)
    }

    /// [`Augmenter::augment_batch_shifted`] into a preallocated buffer of `V·S·N·C·H·W` values.
    ///
    /// # Errors
    /// As [`Augmenter::augment_batch_shifted`], plus [`Error::BufferLength`].
    pub fn augment_batch_shifted_into(
        &self,
        images: &ImageBatchU8<'_>,
        indices: &[usize],
        epoch: u64,
        views: usize,
        shifts: &[Shift],
        out: &mut [f32],
    ) -> Result<()> {
        let shape = self.check_call(images, indices.iter().copied(), views, shifts)?;
        let (n, s_count) = (indices.len(), shifts.len());
        self.fill(images, epoch, shape, views * s_count * n, out, |r| {
            (r / (n * s_count), indices[r % n], shifts[(r / n) % s_count])
        })
    }

    /// `V` views of items that each carry their own shift (FIRM's pre-expanded data set of
    /// (image, rotation) pairs): `(V·M, C, H, W)`, row `v·M + m`.
    ///
    /// # Errors
    /// As [`Augmenter::augment_batch_shifted`].
    pub fn augment_items(
        &self,
        images: &ImageBatchU8<'_>,
        items: &[ShiftedSample],
        epoch: u64,
        views: usize,
    ) -> Result<Vec<f32>> {
        let shifts: Vec<Shift> = items.iter().map(|it| it.shift).collect();
        let [c, h, w] = if shifts.is_empty() {
            self.view_shape(images, &[Shift::Identity])?
        } else {
            self.view_shape(images, &shifts)?
        };
        let mut out = vec![0.0f32; views * items.len() * c * h * w];
        self.augment_items_into(images, items, epoch, views, &mut out)?;
        Ok(out)
    }

    /// [`Augmenter::augment_items`] into a preallocated buffer of `V·M·C·H·W` values.
    ///
    /// # Errors
    /// As [`Augmenter::augment_items`], plus [`Error::BufferLength`].
    pub fn augment_items_into(
        &self,
        images: &ImageBatchU8<'_>,
        items: &[ShiftedSample],
        epoch: u64,
        views: usize,
        out: &mut [f32],
    ) -> Result<()> {
        let mut shifts: Vec<Shift> = items.iter().map(|it| it.shift).collect();
        if shifts.is_empty() {
            shifts.push(Shift::Identity);
        }
        let shape = self.check_call(images, items.iter().map(|it| it.index), views, &shifts)?;
        let m = items.len();
        self.fill(images, epoch, shape, views * m, out, |r| {
            let it = items[r % m];
            (r / m, it.index, it.shift)
        })
    }

    /// Validates a call and returns the view shape.
    fn check_call(
        &self,
        images: &ImageBatchU8<'_>,
        mut indices: impl Iterator<Item = usize>,
        views: usize,
        shifts: &[Shift],
    ) -> Result<[usize; 3]> {
        if views == 0 {
            return Err(Error::ZeroCount { what: "views" });
        }
        let shape = self.view_shape(images, shifts)?;
        if let Some(index) = indices.find(|&i| i >= images.len()) {
            return Err(Error::IndexOutOfRange {
                index,
                len: images.len(),
            });
        }
        Ok(shape)
    }

    /// Fills `rows` rows of `out` in parallel; `row_of(r)` gives (view, sample, shift) of row `r`.
    fn fill(
        &self,
        images: &ImageBatchU8<'_>,
        epoch: u64,
        [c, h, w]: [usize; 3],
        rows: usize,
        out: &mut [f32],
        row_of: impl Fn(usize) -> (usize, usize, Shift) + Sync,
    ) -> Result<()> {
        let row = c * h * w;
        if out.len() != rows * row {
            return Err(Error::BufferLength {
                what: format!("output ({rows} rows of C={c}, H={h}, W={w})"),
                expected: rows * row,
                actual: out.len(),
            });
        }
        let [ic, ih, iw] = images.image_shape();
        let image_len = ic * ih * iw;
        out.par_chunks_mut(row)
            .enumerate()
            .for_each_init(Workspace::new, |ws, (r, dst)| {
                let (view, sample, shift) = row_of(r);
                let src = &images.data[sample * image_len..(sample + 1) * image_len];
                ws.cur.assign_u8_hwc(src, ih, iw, ic);
                let key = self.view_key(epoch, sample as u64, view as u64);
                let (mut pre, mut post) = (key.rng(), key.index(shift.stream_id()).rng());
                self.pipeline.run(ws, shift, &mut pre, &mut post);
                dst.copy_from_slice(ws.cur.data());
            });
        Ok(())
    }
}

/// A dataset sample together with the shift it is to be augmented under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShiftedSample {
    /// Index of the image in the batch / data set.
    pub index: usize,
    /// Its shifting or context transform.
    pub shift: Shift,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presets;
    use rand::Rng;

    fn random_batch(n: usize, h: usize, w: usize, c: usize, seed: u64) -> Vec<u8> {
        let mut rng = SeedTree::new(seed).rng();
        (0..n * h * w * c).map(|_| rng.random::<u8>()).collect()
    }

    #[test]
    fn rows_follow_the_view_major_layout_and_keys() {
        let data = random_batch(5, 12, 10, 3, 1);
        let batch = ImageBatchU8::new(&data, 5, 12, 10, 3).unwrap();
        let aug = Augmenter::new(&presets::simclr_cifar(8), SeedTree::new(9)).unwrap();
        let indices = [4, 0, 2];
        let out = aug.augment_batch(&batch, &indices, 7, 2).unwrap();
        let row = 3 * 8 * 8;
        assert_eq!(out.len(), 2 * 3 * row);
        for v in 0..2 {
            for (n, &i) in indices.iter().enumerate() {
                let one = aug
                    .augment_one(
                        &batch.image(i).unwrap(),
                        i as u64,
                        7,
                        v as u64,
                        Shift::Identity,
                    )
                    .unwrap();
                let r = v * 3 + n;
                assert_eq!(
                    &out[r * row..(r + 1) * row],
                    one.data(),
                    "view {v} sample {i}"
                );
            }
        }
        // The two views differ, and a sample's views do not depend on its batch position.
        assert_ne!(&out[..row], &out[3 * row..4 * row]);
        let alone = aug.augment_batch(&batch, &[2], 7, 2).unwrap();
        assert_eq!(&alone[..row], &out[2 * row..3 * row]);
        // Another epoch gives other views.
        let next = aug.augment_batch(&batch, &indices, 8, 2).unwrap();
        assert_ne!(next, out);
    }

    #[test]
    fn shifted_layout_blocks_and_shared_pre_shift_stream() {
        // CSI: flip before the slot, then jitter/crop. Rotating the image *source* of a view by
        // 90° with all post-slot randomness disabled must reproduce rot90 of the flipped view.
        let data = random_batch(3, 8, 8, 3, 2);
        let batch = ImageBatchU8::new(&data, 3, 8, 8, 3).unwrap();
        let cfg = AugmentConfig::from_steps(vec![
            crate::config::Step::HorizontalFlip { p: 0.5 },
            crate::config::Step::Shift,
        ]);
        let aug = Augmenter::new(&cfg, SeedTree::new(3)).unwrap();
        let out = aug
            .augment_batch_shifted(&batch, &[0, 1, 2], 0, 2, &Shift::ROTATIONS)
            .unwrap();
        let row = 3 * 8 * 8;
        assert_eq!(out.len(), 2 * 4 * 3 * row);
        for v in 0..2 {
            for n in 0..3 {
                let base =
                    Image::new(3, 8, 8, out[(v * 4 * 3 + n) * row..][..row].to_vec()).unwrap();
                for (s, shift) in Shift::ROTATIONS.iter().enumerate() {
                    let r = (v * 4 + s) * 3 + n;
                    let got = &out[r * row..(r + 1) * row];
                    assert_eq!(got, shift.apply(&base).unwrap().data());
                }
            }
        }
    }

    #[test]
    fn items_match_the_shifted_batch_rows() {
        let data = random_batch(4, 10, 10, 3, 5);
        let batch = ImageBatchU8::new(&data, 4, 10, 10, 3).unwrap();
        let aug = Augmenter::new(&presets::csi(8), SeedTree::new(6)).unwrap();
        let full = aug
            .augment_batch_shifted(&batch, &[0, 1, 2, 3], 2, 2, &Shift::ROTATIONS)
            .unwrap();
        // A FIRM-style mixed batch: (sample, rotation) pairs in arbitrary order.
        let items = [(3, 1u8), (0, 0), (2, 3), (0, 2)].map(|(index, k)| ShiftedSample {
            index,
            shift: Shift::Rotate { quarter_turns: k },
        });
        let mixed = aug.augment_items(&batch, &items, 2, 2).unwrap();
        let row = 3 * 8 * 8;
        for v in 0..2 {
            for (m, it) in items.iter().enumerate() {
                let k = it.shift.stream_id() as usize;
                let r_full = (v * 4 + k) * 4 + it.index;
                let r_mixed = v * items.len() + m;
                assert_eq!(
                    &mixed[r_mixed * row..(r_mixed + 1) * row],
                    &full[r_full * row..(r_full + 1) * row]
                );
            }
        }
        // Plain batches equal the identity block of rotation batches (same stream id 0).
        let plain = aug.augment_batch(&batch, &[0, 1, 2, 3], 2, 2).unwrap();
        assert_eq!(&plain[..4 * row], &full[..4 * row]);
        assert_eq!(&plain[4 * row..], &full[16 * row..20 * row]);
        assert!(aug.augment_items(&batch, &[], 2, 2).unwrap().is_empty());
        let bad = [ShiftedSample {
            index: 9,
            shift: Shift::Identity,
        }];
        assert!(matches!(
            aug.augment_items(&batch, &bad, 0, 1),
            Err(Error::IndexOutOfRange { index: 9, .. })
        ));
    }

    #[test]
    fn typed_errors_for_bad_calls() {
        let data = random_batch(2, 4, 4, 1, 3);
        assert!(matches!(
            ImageBatchU8::new(&data[1..], 2, 4, 4, 1),
            Err(Error::BufferLength { .. })
        ));
        let batch = ImageBatchU8::new(&data, 2, 4, 4, 1).unwrap();
        let aug = Augmenter::new(&presets::simclr_cifar(4), SeedTree::new(0)).unwrap();
        assert_eq!(
            aug.augment_batch(&batch, &[0, 2], 0, 2),
            Err(Error::IndexOutOfRange { index: 2, len: 2 })
        );
        assert_eq!(
            aug.augment_batch(&batch, &[0], 0, 0),
            Err(Error::ZeroCount { what: "views" })
        );
        assert!(matches!(
            aug.augment_batch_shifted(&batch, &[0], 0, 1, &[]),
            Err(Error::ZeroCount { what: "shifts" })
        ));
        let mut short = vec![0.0; 3];
        assert!(matches!(
            aug.augment_batch_into(&batch, &[0], 0, 1, &mut short),
            Err(Error::BufferLength { .. })
        ));
        // Rotations of non-square images without a later resize give inconsistent shapes.
        let wide = random_batch(1, 4, 6, 3, 4);
        let wide = ImageBatchU8::new(&wide, 1, 4, 6, 3).unwrap();
        let plain = Augmenter::new(&AugmentConfig::from_steps(vec![]), SeedTree::new(0)).unwrap();
        assert!(matches!(
            plain.augment_batch_shifted(&wide, &[0], 0, 1, &Shift::ROTATIONS),
            Err(Error::InconsistentShape { .. })
        ));
        assert!(aug.augment_batch(&batch, &[], 0, 2).unwrap().is_empty());
    }
}
