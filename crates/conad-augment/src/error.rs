//! The crate's one error type.
//!
//! Every variant carries the offending value(s) and its message says how to fix the input.

/// Errors of `conad-augment`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A pixel buffer does not hold `channels × height × width` (per image) values.
    #[error(
        "buffer holds {actual} values but {what} needs {expected}; pass the data exactly as stored \
         (uint8 batches as (N, H, W, C), f32 images as (C, H, W))"
    )]
    BufferLength {
        /// Which buffer (e.g. `"uint8 batch (N=4, H=28, W=28, C=1)"`).
        what: String,
        /// Values the shape implies.
        expected: usize,
        /// Values actually given.
        actual: usize,
    },

    /// Only grey (1 channel) and RGB (3 channels) images are supported.
    #[error("{channels} channels given; only 1 (grey) or 3 (RGB) channels are supported")]
    UnsupportedChannels {
        /// The channel count given.
        channels: usize,
    },

    /// An image (or a requested output) with zero height or width.
    #[error("{what} has size {height}×{width}; both sides must be at least 1")]
    EmptySize {
        /// Which size (e.g. `"random_resized_crop.size"`).
        what: String,
        /// Height given.
        height: usize,
        /// Width given.
        width: usize,
    },

    /// A probability outside [0, 1] (or NaN).
    #[error("{what} = {p} is not a probability; use a value in [0, 1]")]
    InvalidProbability {
        /// Which probability (e.g. `"color_jitter.p"`).
        what: String,
        /// The value given.
        p: f64,
    },

    /// A `[min, max]` range that is reversed, non-finite or outside its allowed domain.
    #[error("{what} = [{min}, {max}] is invalid: {requirement}")]
    InvalidRange {
        /// Which range (e.g. `"random_resized_crop.scale"`).
        what: String,
        /// Lower end given.
        min: f64,
        /// Upper end given.
        max: f64,
        /// What a valid range looks like.
        requirement: &'static str,
    },

    /// A config field (or parameter) outside its domain. The same shape in every conad crate:
    /// `invalid config: \`field\` = value: what is accepted`.
    #[error("invalid config: `{field}` = {value}: {reason}")]
    InvalidConfig {
        /// The field, as a dotted path where it is nested (e.g. `optimizer.momentum`).
        field: String,
        /// The rejected value, formatted.
        value: String,
        /// What the field accepts.
        reason: String,
    },

    /// A Gaussian-blur kernel size that is even or zero (torchvision requires odd, positive sizes).
    #[error(
        "gaussian blur kernel size {size} is invalid; use an odd positive size such as 3 or 23"
    )]
    InvalidKernelSize {
        /// The size given.
        size: usize,
    },

    /// Normalisation mean/std whose length matches neither 1 nor the image's channel count.
    #[error(
        "normalize has {mean_len} means and {std_len} stds but the image has {channels} channels; \
         give one value per channel (or a single value for all channels)"
    )]
    NormalizeLength {
        /// Number of means.
        mean_len: usize,
        /// Number of standard deviations.
        std_len: usize,
        /// Channels of the image reaching the step.
        channels: usize,
    },

    /// A crop rectangle that does not lie inside the image.
    #[error(
        "crop (top {top}, left {left}, height {height}, width {width}) does not fit a \
         {image_height}×{image_width} image; keep top + height ≤ H and left + width ≤ W with non-zero sides"
    )]
    CropOutOfBounds {
        /// Top row of the crop.
        top: usize,
        /// Left column of the crop.
        left: usize,
        /// Crop height.
        height: usize,
        /// Crop width.
        width: usize,
        /// Image height.
        image_height: usize,
        /// Image width.
        image_width: usize,
    },

    /// A shifting transform index outside 0..=3.
    #[error("{what} index {index} is invalid; use 0, 1, 2 or 3")]
    InvalidShiftIndex {
        /// `"rotate.quarter_turns"` or `"cut_perm.index"`.
        what: &'static str,
        /// The index given.
        index: u8,
    },

    /// More than one `shift` slot in a pipeline.
    #[error(
        "the pipeline has {count} `shift` steps; at most one slot for the shifting transform is allowed"
    )]
    DuplicateShiftSlot {
        /// Number of `shift` steps found.
        count: usize,
    },

    /// Two shifting transforms of one batch produce views of different shapes (e.g. rot90 of a
    /// non-square image without a later fixed-size crop).
    #[error(
        "shift {shift} gives views of shape {got:?} but the first shift gives {expected:?}; add a \
         fixed-size crop/resize after the shift slot or use square images"
    )]
    InconsistentShape {
        /// The shift (display form) that disagrees.
        shift: String,
        /// Shape (C, H, W) of the first shift's views.
        expected: [usize; 3],
        /// Shape (C, H, W) of this shift's views.
        got: [usize; 3],
    },

    /// A sample index that does not address an image of the batch.
    #[error("sample index {index} is out of range for a batch of {len} images")]
    IndexOutOfRange {
        /// The index given.
        index: usize,
        /// Number of images in the batch.
        len: usize,
    },

    /// Zero views (or zero shifts) requested.
    #[error("{what} must be at least 1 (got 0)")]
    ZeroCount {
        /// `"views"` or `"shifts"`.
        what: &'static str,
    },
}

/// Result alias of this crate.
impl Error {
    /// An [`Error::InvalidConfig`].
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        Self::InvalidConfig {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
