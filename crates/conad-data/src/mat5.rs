//! A reader for the numeric arrays of MATLAB level-5 MAT files (the format of SVHN's official
//! `*_32x32.mat`): a 128-byte header, then data elements; `miCOMPRESSED` elements are zlib
//! streams holding one `miMATRIX` each. Only full (non-sparse, real) numeric arrays are read;
//! cell, struct, char and sparse arrays are skipped. Little-endian files only (MATLAB on x86
//! writes them). Written here rather than taken from a crate: conad needs two arrays from one
//! well-specified format, bounded allocation and typed errors naming the file, on the flate2 it
//! already uses.

use std::collections::BTreeMap;
use std::io::Read;

use flate2::read::ZlibDecoder;

use crate::error::{Error, Result};

const HEADER: usize = 128;
const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
/// mxCLASS values of numeric arrays (double … uint64).
const NUMERIC_CLASSES: std::ops::RangeInclusive<u8> = 6..=15;
/// Deflate cannot expand input by more than ~1032:1.
const MAX_DEFLATE_RATIO: u64 = 1100;

/// The values of one numeric array.
#[derive(Clone, Debug, PartialEq)]
pub enum MatValues {
    /// `uint8` data (kept as bytes: SVHN's images).
    U8(Vec<u8>),
    /// Any other numeric type, widened to f64.
    F64(Vec<f64>),
}

/// A numeric array: dimensions and values in MATLAB's column-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct MatArray {
    /// Dimensions, first fastest.
    pub dims: Vec<usize>,
    /// Values.
    pub values: MatValues,
}

impl MatArray {
    /// Number of elements (the product of the dimensions).
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    origin: &'a str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(Error::corrupt(
                self.origin,
                format!(
                    "{what}: {n} bytes needed at offset {} of {}; the file is truncated",
                    self.pos,
                    self.bytes.len()
                ),
            ));
        };
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A data element: (type, payload), with the small-element format and 8-byte padding.
    fn element(&mut self, what: &str) -> Result<(u32, &'a [u8])> {
        let first = self.u32(what)?;
        if first >> 16 != 0 {
            // Small data element: type in the low 16 bits, size in the high 16, payload in 4 bytes.
            let (ty, n) = (first & 0xffff, (first >> 16) as usize);
            let payload = self.take(4, what)?;
            if n > 4 {
                return Err(Error::corrupt(
                    self.origin,
                    format!("{what}: small element of {n} bytes"),
                ));
            }
            return Ok((ty, &payload[..n]));
        }
        let n = self.u32(what)? as usize;
        let payload = self.take(n, what)?;
        // Compressed elements are not padded; the others are to 8 bytes.
        if first != MI_COMPRESSED {
            let pad = (8 - n % 8) % 8;
            let pad = pad.min(self.bytes.len() - self.pos);
            self.pos += pad;
        }
        Ok((first, payload))
    }

    fn done(&self) -> bool {
        self.pos >= self.bytes.len()
    }
}

/// Widens a typed payload to f64.
fn to_f64(ty: u32, b: &[u8], origin: &str) -> Result<Vec<f64>> {
    macro_rules! conv {
        ($t:ty, $n:expr) => {
            b.chunks_exact($n)
                .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk size")) as f64)
                .collect()
        };
    }
    Ok(match ty {
        MI_INT8 => b.iter().map(|&v| f64::from(v as i8)).collect(),
        MI_UINT8 => b.iter().map(|&v| f64::from(v)).collect(),
        MI_INT16 => conv!(i16, 2),
        MI_UINT16 => conv!(u16, 2),
        MI_INT32 => conv!(i32, 4),
        MI_UINT32 => conv!(u32, 4),
        MI_SINGLE => conv!(f32, 4),
        MI_DOUBLE => conv!(f64, 8),
        MI_INT64 => conv!(i64, 8),
        MI_UINT64 => conv!(u64, 8),
        other => {
            return Err(Error::corrupt(
                origin,
                format!("numeric data of MAT type {other} is not supported"),
            ));
        }
    })
}

/// Parses one `miMATRIX` payload; `None` for arrays that are not full real numeric ones.
fn matrix(payload: &[u8], origin: &str) -> Result<Option<(String, MatArray)>> {
    let mut c = Cursor {
        bytes: payload,
        pos: 0,
        origin,
    };
    let (_, flags) = c.element("array flags")?;
    if flags.len() < 8 {
        return Err(Error::corrupt(origin, "array flags shorter than 8 bytes"));
    }
    let class = flags[0];
    let complex = flags[1] & 0x08 != 0;
    let (dty, dims) = c.element("dimensions")?;
    if dty != MI_INT32 {
        return Err(Error::corrupt(origin, "dimensions are not int32"));
    }
    let dims: Vec<usize> = dims
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]).max(0) as usize)
        .collect();
    let (_, name) = c.element("array name")?;
    let name = String::from_utf8_lossy(name).into_owned();
    if !NUMERIC_CLASSES.contains(&class) || complex {
        return Ok(None);
    }
    let (ty, real) = c.element("real part")?;
    let count: usize = dims.iter().product();
    let values = if ty == MI_UINT8 {
        MatValues::U8(real.to_vec())
    } else {
        MatValues::F64(to_f64(ty, real, origin)?)
    };
    let got = match &values {
        MatValues::U8(v) => v.len(),
        MatValues::F64(v) => v.len(),
    };
    if got != count {
        return Err(Error::corrupt(
            origin,
            format!("array `{name}` has dimensions {dims:?} ({count} values) but {got} values"),
        ));
    }
    Ok(Some((name, MatArray { dims, values })))
}

/// Every full real numeric array of a level-5 MAT file, by name.
///
/// # Errors
/// [`Error::Corrupt`] naming `origin` for a file that is not a little-endian level-5 MAT file
/// (MATLAB 7.3 files are HDF5: re-save with `-v7`), a truncated element or a broken zlib stream.
pub fn read_mat5(bytes: &[u8], origin: &str) -> Result<BTreeMap<String, MatArray>> {
    if bytes.len() < HEADER {
        return Err(Error::corrupt(
            origin,
            "shorter than a MAT file header (128 bytes)",
        ));
    }
    if bytes.starts_with(b"\x89HDF") || bytes[..HEADER].windows(3).any(|w| w == b"7.3") {
        return Err(Error::corrupt(
            origin,
            "a MATLAB 7.3 (HDF5) file; conad reads level-5 MAT files: re-save it with `save -v7`",
        ));
    }
    if &bytes[126..128] != b"IM" {
        return Err(Error::corrupt(
            origin,
            "not a little-endian level-5 MAT file (no `IM` endian indicator at byte 126)",
        ));
    }
    let mut out = BTreeMap::new();
    let mut c = Cursor {
        bytes: &bytes[HEADER..],
        pos: 0,
        origin,
    };
    while !c.done() {
        let (ty, payload) = c.element("data element")?;
        let parsed = match ty {
            MI_MATRIX => matrix(payload, origin)?,
            MI_COMPRESSED => {
                let bound = (payload.len() as u64).saturating_mul(MAX_DEFLATE_RATIO);
                let mut inflated = Vec::new();
                ZlibDecoder::new(payload)
                    .take(bound)
                    .read_to_end(&mut inflated)
                    .map_err(|e| Error::corrupt(origin, format!("broken zlib stream: {e}")))?;
                let mut inner = Cursor {
                    bytes: &inflated,
                    pos: 0,
                    origin,
                };
                let (ity, ipayload) = inner.element("compressed element")?;
                if ity == MI_MATRIX {
                    matrix(ipayload, origin)?
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some((name, array)) = parsed {
            out.insert(name, array);
        }
    }
    Ok(out)
}
