//! MNIST / Fashion-MNIST IDX files, plain or gzip-compressed.
//!
//! IDX layout (LeCun et al., <http://yann.lecun.com/exdb/mnist/>): a big-endian u32 magic number
//! (`0x00000803` = 2051 for 3-D uint8 images, `0x00000801` = 2049 for 1-D uint8 labels), one
//! big-endian u32 per dimension, then the uint8 data in row-major order.
//!
//! The standard file names are `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
//! `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally with `.gz`; the variant
//! with a dot (`train-images.idx3-ubyte`) found in some copies is accepted too. Gzip is detected
//! from the content (bytes `1f 8b`), not from the name.
//!
//! Guard against corrupt headers: the declared `n·rows·cols` (overflow-checked) is compared with
//! the bytes available before the data buffer is allocated.

use crate::error::{Error, Result};
use crate::gz::{self, GZIP_MAGIC};
use std::io::Read;

/// Magic number of an IDX file of 3-D uint8 arrays (images).
pub const IMAGES_MAGIC: u32 = 2051;
/// Magic number of an IDX file of 1-D uint8 arrays (labels).
pub const LABELS_MAGIC: u32 = 2049;

/// Images decoded from an IDX3 file.
///
/// # Shapes
/// `pixels`: (n, rows, cols) row-major, one byte per pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Pixels, (n, rows, cols).
    pub pixels: Vec<u8>,
    /// Number of images.
    pub n: usize,
    /// Rows (height).
    pub rows: usize,
    /// Columns (width).
    pub cols: usize,
}

/// Parses an IDX3 image file (plain or gzip) held in memory.
///
/// # Errors
/// [`Error::BadMagic`], [`Error::Truncated`] or [`Error::Corrupt`], naming `origin`.
pub fn parse_images(bytes: &[u8], origin: &str) -> Result<IdxImages> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let mut dec = gz::decoder(bytes);
        let limits = Limits::gz(bytes);
        read_images(&mut dec, origin, limits, true)
    } else {
        let mut r = bytes;
        read_images(&mut r, origin, Limits::plain(bytes), false)
    }
}

/// Parses an IDX1 label file (plain or gzip) held in memory.
///
/// # Errors
/// [`Error::BadMagic`], [`Error::Truncated`] or [`Error::Corrupt`], naming `origin`.
pub fn parse_labels(bytes: &[u8], origin: &str) -> Result<Vec<u8>> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let mut dec = gz::decoder(bytes);
        read_labels(&mut dec, origin, Limits::gz(bytes), true)
    } else {
        let mut r = bytes;
        read_labels(&mut r, origin, Limits::plain(bytes), false)
    }
}

fn read_be_u32s<const K: usize>(
    r: &mut impl Read,
    origin: &str,
    what: &str,
    gz: bool,
) -> Result<[u32; K]> {
    let mut buf = [0u8; 16];
    let buf = &mut buf[..4 * K];
    gz::read_full(r, buf, origin, what, gz)?;
    let mut out = [0u32; K];
    for (o, c) in out.iter_mut().zip(buf.chunks_exact(4)) {
        *o = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    }
    Ok(out)
}

fn check_magic(found: u32, expected: u32, what: &'static str, origin: &str) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::BadMagic {
            origin: origin.to_string(),
            what,
            expected,
            found,
        })
    }
}

/// Largest buffer pre-allocated from size hints; larger payloads grow as data arrives.
const MAX_PRESIZE: u64 = 512 << 20;

/// Size bounds of a stream (whole stream, header included).
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// No valid stream can deliver more than this.
    available: u64,
    /// Expected total size, used to pre-size the buffer (never above `available`).
    hint: u64,
}

impl Limits {
    fn plain(bytes: &[u8]) -> Self {
        Self {
            available: bytes.len() as u64,
            hint: bytes.len() as u64,
        }
    }
    fn gz(bytes: &[u8]) -> Self {
        let available = gz::decompressed_bound(bytes);
        Self {
            available,
            hint: gz::trailer_size_hint(bytes).unwrap_or(0).min(available),
        }
    }
    fn minus(self, header: u64) -> Self {
        Self {
            available: self.available.saturating_sub(header),
            hint: self.hint.saturating_sub(header),
        }
    }
}

fn read_images(r: &mut impl Read, origin: &str, limits: Limits, gz: bool) -> Result<IdxImages> {
    let [magic] = read_be_u32s::<1>(r, origin, "IDX magic number", gz)?;
    check_magic(magic, IMAGES_MAGIC, "IDX3 uint8 images", origin)?;
    let [n, rows, cols] = read_be_u32s::<3>(r, origin, "IDX3 dimensions", gz)?;
    let (n, rows, cols) = (n as usize, rows as usize, cols as usize);
    if n > 0 && (rows == 0 || cols == 0) {
        return Err(Error::corrupt(
            origin,
            format!("IDX3 header declares {n} images of {rows}×{cols} pixels"),
        ));
    }
    // u128: three u32 factors can exceed u64.
    let declared = u64::try_from((n as u128) * (rows as u128) * (cols as u128)).map_err(|_| {
        Error::corrupt(
            origin,
            format!("IDX3 header declares {n} images of {rows}×{cols} pixels, an impossible size"),
        )
    })?;
    let pixels = read_payload(
        r,
        origin,
        declared,
        limits.minus(16),
        16,
        "IDX3 image data",
        gz,
    )?;
    Ok(IdxImages {
        pixels,
        n,
        rows,
        cols,
    })
}

fn read_labels(r: &mut impl Read, origin: &str, limits: Limits, gz: bool) -> Result<Vec<u8>> {
    let [magic] = read_be_u32s::<1>(r, origin, "IDX magic number", gz)?;
    check_magic(magic, LABELS_MAGIC, "IDX1 uint8 labels", origin)?;
    let [n] = read_be_u32s::<1>(r, origin, "IDX1 dimension", gz)?;
    read_payload(
        r,
        origin,
        u64::from(n),
        limits.minus(8),
        8,
        "IDX1 label data",
        gz,
    )
}

/// Reads exactly `declared` bytes and checks that the stream ends right after them.
fn read_payload(
    r: &mut impl Read,
    origin: &str,
    declared: u64,
    limits: Limits,
    header_len: u64,
    what: &str,
    gz: bool,
) -> Result<Vec<u8>> {
    if declared > limits.available && gz {
        return Err(Error::corrupt(
            origin,
            format!(
                "the header declares {declared} bytes of {what}, more than this gzip file can decompress \
                 to (at most {} bytes) — the header is corrupt",
                limits.available
            ),
        ));
    }
    if declared > limits.available {
        return Err(Error::truncated(
            origin,
            what,
            header_len + declared,
            header_len + limits.available,
        ));
    }
    // Pre-size from the input length (plain) or the gzip trailer (a hint, ≤ deflate's bound, and
    // at most 512 MiB); a lying header only makes the buffer grow as real data arrives.
    let mut out = Vec::with_capacity(declared.min(limits.hint).min(MAX_PRESIZE) as usize);
    r.take(declared)
        .read_to_end(&mut out)
        .map_err(|e| gz::read_error(origin, what, e, gz))?;
    if (out.len() as u64) < declared {
        return Err(Error::truncated(
            origin,
            what,
            header_len + declared,
            header_len + out.len() as u64,
        ));
    }
    gz::expect_end(r, origin, header_len + declared, gz)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images_file(n: u32, rows: u32, cols: u32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [IMAGES_MAGIC, n, rows, cols] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_plain_images_and_labels() {
        let f = images_file(2, 2, 3, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let im = parse_images(&f, "mem").unwrap();
        assert_eq!((im.n, im.rows, im.cols), (2, 2, 3));
        assert_eq!(im.pixels[6..], [7, 8, 9, 10, 11, 12]);
        let mut l = Vec::new();
        l.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
        l.extend_from_slice(&3u32.to_be_bytes());
        l.extend_from_slice(&[9, 0, 4]);
        assert_eq!(parse_labels(&l, "mem").unwrap(), vec![9, 0, 4]);
        // Swapped files: a label file read as images.
        let e = parse_images(&l, "labels.idx").unwrap_err();
        assert!(
            matches!(
                e,
                Error::BadMagic {
                    expected: 2051,
                    found: 2049,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("labels.idx"));
    }

    #[test]
    fn absurd_dims_do_not_allocate() {
        // 4 billion images of 65536² pixels declared in a 20-byte file.
        let f = images_file(u32::MAX, 65536, 65536, &[0; 4]);
        let e = parse_images(&f, "mem").unwrap_err();
        assert!(matches!(e, Error::Truncated { found: 20, .. }), "{e}");
    }

    #[test]
    fn trailing_bytes_are_corrupt() {
        let f = images_file(1, 1, 2, &[1, 2, 3]);
        assert!(matches!(
            parse_images(&f, "mem").unwrap_err(),
            Error::Corrupt { .. }
        ));
    }
}
