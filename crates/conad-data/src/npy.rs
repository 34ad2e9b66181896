//! A small reader/writer for numpy's `.npy` format (format versions 1.0, 2.0 and 3.0).
//!
//! Supported dtypes: `|u1` (uint8), `<i8` (int64), `<f4` (float32), `<f8` (float64), C order only
//! (`fortran_order: False`). Anything else (big-endian, structured, object, Fortran order) is
//! rejected with [`Error::UnsupportedArray`] saying what was found.
//!
//! The CLI uses [`read_f32_matrix`] / [`write_f32_matrix`] for embedding matrices; the MedMNIST
//! loader uses [`parse_array`] on the members of an `.npz` archive.
//!
//! Safety against corrupt headers: the size the header declares (`prod(shape) · itemsize`,
//! overflow-checked) is compared with the bytes actually available *before* any allocation of
//! that size, so a corrupt header can never trigger a multi-GB allocation.
//!
//! Format reference: numpy `numpy/lib/format.py` (NEP 1): magic `\x93NUMPY`, major, minor,
//! header length (u16 little-endian for v1, u32 for v2/v3), an ASCII (v1/v2) or UTF-8 (v3) Python
//! dict literal padded with spaces and ending in `\n`, then the raw data.

use crate::error::{Error, Result};
use conad_fs::AtomicFile;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy aligns the data start to 64 bytes.
const ARRAY_ALIGN: usize = 64;
/// numpy leaves room to grow the first axis to 21 digits (`GROWTH_AXIS_MAX_DIGITS`).
const GROWTH_AXIS_MAX_DIGITS: usize = 21;
/// Headers longer than this are treated as corrupt (numpy's default read limit is 10 000).
const MAX_HEADER_LEN: usize = 1 << 20;

/// Element type of an `.npy` array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// `|u1`: uint8.
    U8,
    /// `<i8`: little-endian int64.
    I64,
    /// `<f4`: little-endian float32.
    F32,
    /// `<f8`: little-endian float64.
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::U8 => 1,
            DType::I64 | DType::F64 => 8,
            DType::F32 => 4,
        }
    }

    /// The numpy `descr` string.
    pub fn descr(self) -> &'static str {
        match self {
            DType::U8 => "|u1",
            DType::I64 => "<i8",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
        }
    }

    fn from_descr(descr: &str) -> Option<DType> {
        match descr {
            "|u1" | "<u1" | "u1" => Some(DType::U8),
            "<i8" => Some(DType::I64),
            "<f4" => Some(DType::F32),
            "<f8" => Some(DType::F64),
            _ => None,
        }
    }
}

/// The parsed header of an `.npy` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: DType,
    /// Array shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Format version (major, minor).
    pub version: (u8, u8),
    /// Offset of the first data byte from the start of the file.
    pub data_offset: usize,
}

impl NpyHeader {
    /// Number of elements (`prod(shape)`), `None` on overflow.
    pub fn num_elements(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
    }

    /// Number of data bytes, `None` on overflow.
    pub fn data_len(&self) -> Option<usize> {
        self.num_elements()?.checked_mul(self.dtype.size())
    }
}

/// Typed element storage of an [`NpyArray`].
#[derive(Clone, Debug, PartialEq)]
pub enum NpyData {
    /// uint8 elements.
    U8(Vec<u8>),
    /// int64 elements.
    I64(Vec<i64>),
    /// float32 elements.
    F32(Vec<f32>),
    /// float64 elements.
    F64(Vec<f64>),
}

impl NpyData {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            NpyData::U8(_) => DType::U8,
            NpyData::I64(_) => DType::I64,
            NpyData::F32(_) => DType::F32,
            NpyData::F64(_) => DType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            NpyData::U8(v) => v.len(),
            NpyData::I64(v) => v.len(),
            NpyData::F32(v) => v.len(),
            NpyData::F64(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An array read from an `.npy` file: C-order elements and shape.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// Shape (row-major).
    pub shape: Vec<usize>,
    /// Elements.
    pub data: NpyData,
}

// ------------------------------------------------------------------------------------------------
// Header parsing

/// Parses the header at the start of `bytes` (the data need not be present).
///
/// # Errors
/// [`Error::Corrupt`], [`Error::Truncated`] or [`Error::UnsupportedArray`].
pub fn parse_header(bytes: &[u8], origin: &str) -> Result<NpyHeader> {
    read_header(&mut &bytes[..], origin)
}

fn read_exact_or_truncated<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    origin: &str,
    what: &str,
    base: u64,
) -> Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(Error::truncated(
                    origin,
                    what,
                    base + buf.len() as u64,
                    base + filled as u64,
                ));
            }
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::corrupt(origin, format!("read error in {what}: {e}"))),
        }
    }
    Ok(())
}

fn read_header<R: Read>(r: &mut R, origin: &str) -> Result<NpyHeader> {
    let mut pre = [0u8; 8];
    read_exact_or_truncated(r, &mut pre, origin, "npy magic", 0)?;
    if &pre[..6] != MAGIC {
        return Err(Error::corrupt(
            origin,
            "not an .npy file (missing the \\x93NUMPY magic) — write it with numpy.save",
        ));
    }
    let version = (pre[6], pre[7]);
    let (len_bytes, utf8) = match version.0 {
        1 => (2usize, false),
        2 => (4, false),
        3 => (4, true),
        v => {
            return Err(Error::corrupt(
                origin,
                format!(
                    "unsupported .npy format version {v}.{} (1, 2 and 3 are supported)",
                    version.1
                ),
            ));
        }
    };
    let mut lb = [0u8; 4];
    read_exact_or_truncated(r, &mut lb[..len_bytes], origin, "npy header length", 8)?;
    let header_len = u32::from_le_bytes(lb) as usize;
    if header_len > MAX_HEADER_LEN {
        return Err(Error::corrupt(
            origin,
            format!(
                "declared .npy header length {header_len} bytes is implausible (limit {MAX_HEADER_LEN})"
            ),
        ));
    }
    let mut header = vec![0u8; header_len];
    let base = 8 + len_bytes as u64;
    read_exact_or_truncated(r, &mut header, origin, "npy header", base)?;
    let text = if utf8 {
        std::str::from_utf8(&header)
            .map_err(|_| Error::corrupt(origin, "npy v3 header is not valid UTF-8"))?
            .to_string()
    } else {
        // Latin-1: map each byte to the char of the same code point.
        header.iter().map(|&b| b as char).collect()
    };
    let dict = parse_dict(&text)
        .map_err(|p| Error::corrupt(origin, format!("bad npy header {text:?}: {p}")))?;
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (k, v) in dict {
        match (k.as_str(), v) {
            ("descr", Value::Str(s)) => descr = Some(s),
            ("fortran_order", Value::Bool(b)) => fortran = Some(b),
            ("shape", Value::Tuple(t)) => shape = Some(t),
            (key @ ("descr" | "fortran_order" | "shape"), _) => {
                return Err(Error::UnsupportedArray {
                    origin: origin.to_string(),
                    key: None,
                    problem: format!("npy header field '{key}' has an unexpected type in {text:?}"),
                });
            }
            _ => {}
        }
    }
    let (Some(descr), Some(fortran), Some(shape)) = (descr, fortran, shape) else {
        return Err(Error::corrupt(
            origin,
            format!("npy header {text:?} lacks one of 'descr', 'fortran_order', 'shape'"),
        ));
    };
    let dtype = DType::from_descr(&descr).ok_or_else(|| Error::UnsupportedArray {
        origin: origin.to_string(),
        key: None,
        problem: format!(
            "dtype '{descr}' is not supported; use uint8 ('|u1'), little-endian int64 ('<i8'), float32 \
             ('<f4') or float64 ('<f8'), e.g. numpy.save(path, a.astype('<f4'))"
        ),
    })?;
    if fortran {
        return Err(Error::UnsupportedArray {
            origin: origin.to_string(),
            key: None,
            problem:
                "Fortran-order arrays are not supported; save numpy.ascontiguousarray(a) instead"
                    .into(),
        });
    }
    Ok(NpyHeader {
        dtype,
        shape,
        version,
        data_offset: base as usize + header_len,
    })
}

#[derive(Debug)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// Parses the Python dict literal of an npy header: string keys; values are strings, booleans or
/// tuples of non-negative integers.
fn parse_dict(text: &str) -> std::result::Result<Vec<(String, Value)>, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    p.expect(b'{')?;
    let mut out = Vec::new();
    loop {
        p.ws();
        if p.peek() == Some(b'}') {
            p.i += 1;
            break;
        }
        let key = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        let value = match p.peek() {
            Some(b'\'' | b'"') => Value::Str(p.string()?),
            Some(b'(') => Value::Tuple(p.tuple()?),
            Some(b'T') => {
                p.keyword("True")?;
                Value::Bool(true)
            }
            Some(b'F') => {
                p.keyword("False")?;
                Value::Bool(false)
            }
            other => {
                return Err(format!(
                    "unexpected value start {:?} at byte {}",
                    other.map(char::from),
                    p.i
                ));
            }
        };
        out.push((key, value));
        p.ws();
        match p.peek() {
            Some(b',') => p.i += 1,
            Some(b'}') => {}
            other => {
                return Err(format!(
                    "expected ',' or '}}' at byte {}, found {:?}",
                    p.i,
                    other.map(char::from)
                ));
            }
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected text after the dict at byte {}", p.i));
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!(
                "expected '{}' at byte {}, found {:?}",
                c as char,
                self.i,
                self.peek().map(char::from)
            ))
        }
    }
    fn keyword(&mut self, kw: &str) -> std::result::Result<(), String> {
        if self.s[self.i..].starts_with(kw.as_bytes()) {
            self.i += kw.len();
            Ok(())
        } else {
            Err(format!("expected {kw} at byte {}", self.i))
        }
    }
    fn string(&mut self) -> std::result::Result<String, String> {
        let q = self.peek().ok_or("expected a string, found the end")?;
        if q != b'\'' && q != b'"' {
            return Err(format!("expected a quoted string at byte {}", self.i));
        }
        self.i += 1;
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == q {
                let s = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                return Ok(s);
            }
            if c == b'\\' {
                return Err("escaped characters are not supported in npy headers".into());
            }
            self.i += 1;
        }
        Err("unterminated string".into())
    }
    fn tuple(&mut self) -> std::result::Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.ws();
            match self.peek() {
                Some(b')') => {
                    self.i += 1;
                    return Ok(dims);
                }
                Some(b'0'..=b'9') => {
                    let start = self.i;
                    while matches!(self.peek(), Some(b'0'..=b'9')) {
                        self.i += 1;
                    }
                    let digits =
                        std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                    let d: usize = digits
                        .parse()
                        .map_err(|_| format!("dimension {digits} does not fit in 64 bits"))?;
                    dims.push(d);
                    // Python 2 long suffix.
                    if matches!(self.peek(), Some(b'L')) {
                        self.i += 1;
                    }
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b')') => {}
                        other => {
                            return Err(format!(
                                "expected ',' or ')' in shape, found {:?}",
                                other.map(char::from)
                            ));
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "expected a dimension in shape, found {:?}",
                        other.map(char::from)
                    ));
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Data

/// Reads the data of an array whose header has been read. `available` bounds the bytes the source
/// can possibly provide (file length, slice length, or a decompression bound), so a lying header
/// cannot make us allocate more than what exists.
pub(crate) fn read_array_data<R: Read>(
    r: &mut R,
    header: &NpyHeader,
    origin: &str,
    available: Option<u64>,
) -> Result<NpyArray> {
    let nbytes = header.data_len().ok_or_else(|| {
        Error::corrupt(
            origin,
            format!("npy shape {:?} overflows the address space", header.shape),
        )
    })?;
    if let Some(avail) = available
        && nbytes as u64 > avail
    {
        return Err(Error::truncated(
            origin,
            format!(
                "npy data of shape {:?} ({})",
                header.shape,
                header.dtype.descr()
            ),
            header.data_offset as u64 + nbytes as u64,
            header.data_offset as u64 + avail,
        ));
    }
    let count = nbytes / header.dtype.size();
    let data = match header.dtype {
        DType::U8 => NpyData::U8(read_elements(r, count, 1, header, origin, |b| b[0])?),
        DType::I64 => NpyData::I64(read_elements(r, count, 8, header, origin, |b| {
            i64::from_le_bytes(b.try_into().unwrap_or([0; 8]))
        })?),
        DType::F32 => NpyData::F32(read_elements(r, count, 4, header, origin, |b| {
            f32::from_le_bytes(b.try_into().unwrap_or([0; 4]))
        })?),
        DType::F64 => NpyData::F64(read_elements(r, count, 8, header, origin, |b| {
            f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))
        })?),
    };
    // Anything after the data means the header and the payload disagree.
    let mut extra = [0u8; 1];
    loop {
        match r.read(&mut extra) {
            Ok(0) => break,
            Ok(_) => {
                return Err(Error::corrupt(
                    origin,
                    format!(
                        "bytes follow the array data: the header declares shape {:?} ({}) = {nbytes} bytes \
                         but the file is longer",
                        header.shape,
                        header.dtype.descr()
                    ),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::corrupt(
                    origin,
                    format!("read error after the array data: {e}"),
                ));
            }
        }
    }
    Ok(NpyArray {
        shape: header.shape.clone(),
        data,
    })
}

/// Reads `count` elements of `size` bytes in 64 KiB chunks, converting as it goes (no second copy
/// of the raw bytes).
fn read_elements<R: Read, T>(
    r: &mut R,
    count: usize,
    size: usize,
    header: &NpyHeader,
    origin: &str,
    convert: impl Fn(&[u8]) -> T,
) -> Result<Vec<T>> {
    // `count` was checked against the bytes available; still, pre-allocate at most 512 MiB
    // (compressed members only bound their size by deflate's ratio), growing as data arrives.
    let mut out = Vec::with_capacity(count.min((512 << 20) / size));
    let mut buf = vec![0u8; (1 << 16) / size * size];
    let total = count * size;
    let mut done = 0usize;
    while done < total {
        let want = (total - done).min(buf.len());
        let chunk = &mut buf[..want];
        read_exact_or_truncated(
            r,
            chunk,
            origin,
            &format!("npy data of shape {:?}", header.shape),
            (header.data_offset + done) as u64,
        )?;
        out.extend(chunk.chunks_exact(size).map(&convert));
        done += want;
    }
    Ok(out)
}

/// Parses a whole `.npy` file held in memory.
///
/// # Errors
/// [`Error::Corrupt`], [`Error::Truncated`] or [`Error::UnsupportedArray`].
pub fn parse_array(bytes: &[u8], origin: &str) -> Result<NpyArray> {
    let mut r = bytes;
    let header = read_header(&mut r, origin)?;
    let avail = r.len() as u64;
    read_array_data(&mut r, &header, origin, Some(avail))
}

/// Reads an `.npy` file of any supported dtype.
///
/// # Errors
/// [`Error::Io`] (naming the path) plus the errors of [`parse_array`].
pub fn read_array(path: impl AsRef<Path>) -> Result<NpyArray> {
    let path = path.as_ref();
    let origin = path.display().to_string();
    let file = File::open(path).map_err(|e| open_error(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut r = BufReader::with_capacity(1 << 16, file);
    let header = read_header(&mut r, &origin)?;
    let avail = len.saturating_sub(header.data_offset as u64);
    read_array_data(&mut r, &header, &origin, Some(avail))
}

pub(crate) fn open_error(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::MissingFile {
            what: "file".into(),
            path: path.to_path_buf(),
            hint: "check the path".into(),
        }
    } else {
        Error::io(path, e)
    }
}

impl NpyArray {
    /// The uint8 elements, or [`Error::UnsupportedArray`] naming the actual dtype.
    pub fn into_u8(self, origin: &str) -> Result<Vec<u8>> {
        match self.data {
            NpyData::U8(v) => Ok(v),
            other => Err(wrong_dtype(origin, "uint8 ('|u1')", other.dtype())),
        }
    }

    /// The int64 elements (uint8 arrays are widened), or [`Error::UnsupportedArray`].
    pub fn into_i64(self, origin: &str) -> Result<Vec<i64>> {
        match self.data {
            NpyData::I64(v) => Ok(v),
            NpyData::U8(v) => Ok(v.into_iter().map(i64::from).collect()),
            other => Err(wrong_dtype(
                origin,
                "an integer type ('|u1' or '<i8')",
                other.dtype(),
            )),
        }
    }

    /// The elements as float32 (float64 is rounded to nearest), or [`Error::UnsupportedArray`].
    pub fn into_f32(self, origin: &str) -> Result<Vec<f32>> {
        match self.data {
            NpyData::F32(v) => Ok(v),
            NpyData::F64(v) => Ok(v.into_iter().map(|x| x as f32).collect()),
            other => Err(wrong_dtype(
                origin,
                "a float type ('<f4' or '<f8')",
                other.dtype(),
            )),
        }
    }
}

fn wrong_dtype(origin: &str, wanted: &str, got: DType) -> Error {
    Error::UnsupportedArray {
        origin: origin.to_string(),
        key: None,
        problem: format!("expected {wanted}, found '{}'", got.descr()),
    }
}

/// Reads a uint8 array of any shape: `(elements, shape)`.
///
/// # Errors
/// As [`read_array`]; [`Error::UnsupportedArray`] if the dtype is not uint8.
pub fn read_u8_array(path: impl AsRef<Path>) -> Result<(Vec<u8>, Vec<usize>)> {
    let origin = path.as_ref().display().to_string();
    let a = read_array(path)?;
    let shape = a.shape.clone();
    Ok((a.into_u8(&origin)?, shape))
}

/// Reads an integer array (int64, or uint8 widened) of any shape: `(elements, shape)`.
///
/// # Errors
/// As [`read_array`]; [`Error::UnsupportedArray`] if the dtype is not an integer type.
pub fn read_i64_array(path: impl AsRef<Path>) -> Result<(Vec<i64>, Vec<usize>)> {
    let origin = path.as_ref().display().to_string();
    let a = read_array(path)?;
    let shape = a.shape.clone();
    Ok((a.into_i64(&origin)?, shape))
}

/// Reads a 2-D float matrix (float32, or float64 rounded to float32): `(row-major data, rows, cols)`.
///
/// # Shapes
/// The file must hold a 2-D array `(rows, cols)`; `data.len() == rows · cols`.
///
/// # Errors
/// As [`read_array`]; [`Error::UnsupportedArray`] if the array is not 2-D or not float.
pub fn read_f32_matrix(path: impl AsRef<Path>) -> Result<(Vec<f32>, usize, usize)> {
    let origin = path.as_ref().display().to_string();
    f32_matrix(read_array(path)?, &origin)
}

/// [`read_f32_matrix`] on bytes held in memory.
///
/// # Errors
/// As [`parse_array`]; [`Error::UnsupportedArray`] if the array is not 2-D or not float.
pub fn parse_f32_matrix(bytes: &[u8], origin: &str) -> Result<(Vec<f32>, usize, usize)> {
    f32_matrix(parse_array(bytes, origin)?, origin)
}

fn f32_matrix(a: NpyArray, origin: &str) -> Result<(Vec<f32>, usize, usize)> {
    let [rows, cols] = a.shape[..] else {
        return Err(Error::UnsupportedArray {
            origin: origin.to_string(),
            key: None,
            problem: format!(
                "expected a 2-D matrix (rows, cols), found shape {:?}",
                a.shape
            ),
        });
    };
    Ok((a.into_f32(origin)?, rows, cols))
}

// ------------------------------------------------------------------------------------------------
// Writing

/// The `.npy` v1.0 header numpy would write for a C-order array of `dtype` and `shape`
/// (byte-identical to `numpy.save`, including numpy's growth padding and 64-byte alignment).
pub fn encode_header(dtype: DType, shape: &[usize]) -> Vec<u8> {
    let shape_repr = match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_repr}, }}",
        dtype.descr()
    );
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        dict.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
    }
    let hlen = dict.len() + 1;
    let padlen = ARRAY_ALIGN - ((MAGIC.len() + 2 + 2 + hlen) % ARRAY_ALIGN);
    let total_header = dict.len() + padlen + 1;
    let mut out = Vec::with_capacity(10 + total_header);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    // v1 header length is u16: our dicts are < 200 bytes, always fits.
    out.extend_from_slice(&(total_header as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padlen));
    out.push(b'\n');
    out
}

fn check_matrix_shape(rows: usize, cols: usize, len: usize) -> Result<()> {
    if rows.checked_mul(cols) != Some(len) {
        return Err(Error::invalid(
            "matrix shape",
            format!("{rows}×{cols} for {len} elements"),
            "rows · cols must equal the number of elements",
        ));
    }
    Ok(())
}

/// Writes a row-major float32 matrix as `.npy` to any writer.
///
/// # Errors
/// [`Error::InvalidParameter`] if `data.len() != rows · cols`; [`Error::Io`] (with `origin` as the
/// path) on a write failure.
pub fn write_f32_matrix_to<W: Write>(
    w: &mut W,
    data: &[f32],
    rows: usize,
    cols: usize,
    origin: &Path,
) -> Result<()> {
    check_matrix_shape(rows, cols, data.len())?;
    let io = |e| Error::io(origin, e);
    w.write_all(&encode_header(DType::F32, &[rows, cols]))
        .map_err(io)?;
    let mut buf = Vec::with_capacity(1 << 16);
    for chunk in data.chunks(1 << 14) {
        buf.clear();
        for x in chunk {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        w.write_all(&buf).map_err(io)?;
    }
    w.flush().map_err(io)
}

/// Writes a row-major float32 matrix to `path` as `.npy` (readable with `numpy.load`),
/// atomically: `path` is the previous file or the complete new one, never a partial one.
///
/// # Errors
/// [`Error::InvalidParameter`] if `data.len() != rows · cols`; [`Error::Io`] naming the path.
pub fn write_f32_matrix(
    path: impl AsRef<Path>,
    data: &[f32],
    rows: usize,
    cols: usize,
) -> Result<()> {
    let path = path.as_ref();
    // The shape is checked before a file is created.
    check_matrix_shape(rows, cols, data.len())?;
    let mut file = AtomicFile::create(path)?;
    write_f32_matrix_to(&mut file, data, rows, cols, path)?;
    Ok(file.commit()?)
}

/// Writes a little-endian int64 vector to `path` as `.npy` (e.g. labels; `numpy.load` gives
/// an `int64` array of shape `(n,)`), atomically.
///
/// # Errors
/// [`Error::Io`] naming the path.
pub fn write_i64_vector(path: impl AsRef<Path>, values: &[i64]) -> Result<()> {
    let path = path.as_ref();
    let io = |e| Error::io(path, e);
    let mut w = AtomicFile::create(path)?;
    w.write_all(&encode_header(DType::I64, &[values.len()]))
        .map_err(io)?;
    for v in values {
        w.write_all(&v.to_le_bytes()).map_err(io)?;
    }
    Ok(w.commit()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_dict_parser() {
        let d =
            parse_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }          \n")
                .unwrap();
        assert_eq!(d.len(), 3);
        assert!(matches!(&d[2].1, Value::Tuple(t) if t == &vec![3, 4]));
        let d =
            parse_dict("{\"shape\": (5L,), \"descr\": \"|u1\", \"fortran_order\": True}").unwrap();
        assert!(matches!(&d[0].1, Value::Tuple(t) if t == &vec![5]));
        assert!(matches!(&d[2].1, Value::Bool(true)));
        assert!(
            matches!(&parse_dict("{'shape': ()}").unwrap()[0].1, Value::Tuple(t) if t.is_empty())
        );
        for bad in [
            "",
            "{",
            "{'a' 1}",
            "{'shape': (3,,)}",
            "{'shape': (-1,)}",
            "{'a': 'x'} junk",
            "{'a': 'x",
        ] {
            assert!(parse_dict(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn header_len_is_64_aligned_and_shapes_print_like_python() {
        for shape in [
            vec![0usize],
            vec![5],
            vec![3, 4],
            vec![123_456_789, 512],
            vec![1, 2, 3, 4],
        ] {
            let h = encode_header(DType::F32, &shape);
            assert_eq!(h.len() % 64, 0, "{shape:?}");
            let parsed = parse_header(&h, "mem").unwrap();
            assert_eq!(parsed.shape, shape);
            assert_eq!(parsed.data_offset, h.len());
        }
        let h = encode_header(DType::I64, &[5]);
        assert!(String::from_utf8_lossy(&h).contains("'shape': (5,), }"));
    }

    #[test]
    fn absurd_shape_is_rejected_before_allocation() {
        // Header declares 10^12 × 10^6 float32 = 4e18 bytes; only 16 bytes follow.
        let mut bytes = encode_header(DType::F32, &[1_000_000_000_000, 1_000_000]);
        bytes.extend_from_slice(&[0u8; 16]);
        let e = parse_array(&bytes, "mem").unwrap_err();
        assert!(
            matches!(e, Error::Truncated { .. } | Error::Corrupt { .. }),
            "{e}"
        );
        // Overflowing product.
        let mut bytes = encode_header(DType::F64, &[usize::MAX / 2, 3]);
        bytes.extend_from_slice(&[0u8; 8]);
        assert!(matches!(
            parse_array(&bytes, "mem").unwrap_err(),
            Error::Corrupt { .. }
        ));
    }

    #[test]
    fn roundtrip_in_memory() {
        let data = [1.5f32, -0.0, f32::MAX, f32::MIN_POSITIVE, 3.25, -7.0];
        let mut buf = Vec::new();
        write_f32_matrix_to(&mut buf, &data, 2, 3, Path::new("mem")).unwrap();
        let (back, r, c) = parse_f32_matrix(&buf, "mem").unwrap();
        assert_eq!((r, c), (2, 3));
        assert_eq!(
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            data.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        let e = write_f32_matrix_to(&mut buf, &data, 4, 2, Path::new("mem")).unwrap_err();
        assert!(e.to_string().contains("4×2 for 6 elements"), "{e}");
    }

    #[test]
    fn trailing_bytes_and_short_data_are_errors() {
        let mut buf = Vec::new();
        write_f32_matrix_to(&mut buf, &[1.0, 2.0], 1, 2, Path::new("mem")).unwrap();
        let mut longer = buf.clone();
        longer.push(0);
        assert!(
            parse_array(&longer, "mem")
                .unwrap_err()
                .to_string()
                .contains("bytes follow")
        );
        let e = parse_array(&buf[..buf.len() - 1], "mem").unwrap_err();
        assert!(
            matches!(
                e,
                Error::Truncated {
                    expected: 136,
                    found: 135,
                    ..
                }
            ),
            "{e}"
        );
    }
}
