//! Gzip helpers shared by the IDX reader: decoding from memory with bounded pre-allocation and
//! error mapping (a broken stream is [`Error::Corrupt`], never a panic).
//!
//! flate2 runs on the `zlib-rs` backend (pure Rust, the fastest of flate2's backends here).

use crate::error::{Error, Result};
use flate2::bufread::MultiGzDecoder;
use std::io::Read;

/// First two bytes of every gzip member.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Deflate cannot expand input by more than ~1032:1; anything claiming more is a lie.
const MAX_DEFLATE_RATIO: u64 = 1100;

/// A decoder over an in-memory gzip file (multi-member files are decoded as one stream).
pub fn decoder(bytes: &[u8]) -> MultiGzDecoder<&[u8]> {
    MultiGzDecoder::new(bytes)
}

/// A hard upper bound on the decompressed size of `bytes` (deflate's maximal ratio).
pub fn decompressed_bound(bytes: &[u8]) -> u64 {
    (bytes.len() as u64)
        .saturating_mul(MAX_DEFLATE_RATIO)
        .saturating_add(4096)
}

/// The size recorded in the gzip trailer (ISIZE, the uncompressed size mod 2³²) — a hint only,
/// used to pre-size buffers; never trusted beyond [`decompressed_bound`].
pub fn trailer_size_hint(bytes: &[u8]) -> Option<u64> {
    let t = bytes.get(bytes.len().checked_sub(4)?..)?;
    Some(u64::from(u32::from_le_bytes([t[0], t[1], t[2], t[3]])))
}

/// Maps an I/O error of a (possibly gzip) reader to a typed error.
pub fn read_error(origin: &str, what: &str, e: std::io::Error, gz: bool) -> Error {
    if gz {
        Error::corrupt(
            origin,
            format!(
                "invalid or truncated gzip stream while reading {what}: {e} — re-download the file"
            ),
        )
    } else {
        Error::corrupt(origin, format!("read error in {what}: {e}"))
    }
}

/// Fills `buf` completely or fails with [`Error::Truncated`] (plain) / [`Error::Corrupt`] (gzip).
pub fn read_full(
    r: &mut impl Read,
    buf: &mut [u8],
    origin: &str,
    what: &str,
    gz: bool,
) -> Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(Error::truncated(
                    origin,
                    what,
                    buf.len() as u64,
                    filled as u64,
                ));
            }
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(origin, what, e, gz)),
        }
    }
    Ok(())
}

/// Checks that `r` is exhausted (for gzip this also verifies the CRC in the trailer).
pub fn expect_end(r: &mut impl Read, origin: &str, consumed: u64, gz: bool) -> Result<()> {
    let mut extra = [0u8; 64];
    loop {
        match r.read(&mut extra) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                return Err(Error::corrupt(
                    origin,
                    format!(
                        "more data follows the {consumed} bytes the header declares — the header and the \
                         data disagree"
                    ),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(origin, "the end of the stream", e, gz)),
        }
    }
}
