//! `.npz` archives (numpy's zip of `.npy` members, stored or deflated) through the `zip` crate.
//!
//! Each member is parsed with [`crate::npy`]; the bytes a member may decompress to are bounded by
//! its compressed size times deflate's maximal ratio, so a corrupt header cannot force a huge
//! allocation.

use crate::error::{Error, Result};
use crate::npy::{self, NpyArray};
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::Path;
use zip::ZipArchive;

/// An open `.npz` archive.
#[derive(Debug)]
pub struct Npz<R> {
    archive: ZipArchive<R>,
    origin: String,
}

impl<'a> Npz<Cursor<&'a [u8]>> {
    /// Opens an archive held in memory.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the bytes are not a zip archive.
    pub fn from_bytes(bytes: &'a [u8], origin: &str) -> Result<Self> {
        Self::new(Cursor::new(bytes), origin)
    }
}

impl Npz<BufReader<File>> {
    /// Opens an archive file.
    ///
    /// # Errors
    /// [`Error::MissingFile`] (naming the path), [`Error::Io`] or [`Error::Corrupt`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::MissingFile {
                    what: ".npz archive".into(),
                    path: path.to_path_buf(),
                    hint: "check the path (MedMNIST files are named like breastmnist.npz)".into(),
                }
            } else {
                Error::io(path, e)
            }
        })?;
        Self::new(BufReader::new(file), &path.display().to_string())
    }
}

impl<R: Read + Seek> Npz<R> {
    fn new(reader: R, origin: &str) -> Result<Self> {
        let archive = ZipArchive::new(reader).map_err(|e| {
            Error::corrupt(origin, format!("not a readable .npz (zip) archive: {e}"))
        })?;
        Ok(Self {
            archive,
            origin: origin.to_string(),
        })
    }

    /// The archive's origin (path or label), for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Array names (member names without `.npy`), in archive order.
    pub fn keys(&self) -> Vec<String> {
        self.archive
            .file_names()
            .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string())
            .collect()
    }

    /// True when the archive holds array `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.archive.index_for_name(&format!("{key}.npy")).is_some()
    }

    /// Reads array `key`.
    ///
    /// # Errors
    /// [`Error::MissingKey`] (listing the keys present) or the parse errors of [`crate::npy`],
    /// with the origin `archive.npz[key]`.
    pub fn read(&mut self, key: &str) -> Result<NpyArray> {
        let origin = format!("{}[{key}]", self.origin);
        let name = format!("{key}.npy");
        let Some(index) = self.archive.index_for_name(&name) else {
            return Err(Error::MissingKey {
                origin: self.origin.clone(),
                key: key.to_string(),
                found: self.keys(),
                hint: "write the archive with numpy.savez(path, key=array, …)".into(),
            });
        };
        let mut member = self
            .archive
            .by_index(index)
            .map_err(|e| Error::corrupt(&origin, format!("cannot open the zip member: {e}")))?;
        let bound = member
            .compressed_size()
            .saturating_mul(1100)
            .saturating_add(4096)
            .min(member.size());
        let header = read_member_header(&mut member, &origin)?;
        let avail = bound.saturating_sub(header.data_offset as u64);
        npy::read_array_data(&mut member, &header, &origin, Some(avail))
    }
}

fn read_member_header<R: Read>(r: &mut R, origin: &str) -> Result<npy::NpyHeader> {
    // Read the fixed prefix to learn the header length, then the header itself, and parse it.
    let mut pre = [0u8; 12];
    let mut got = 0;
    while got < 10 {
        match r.read(&mut pre[got..10]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(zip_read_error(origin, e)),
        }
    }
    if got < 10 {
        return Err(Error::truncated(origin, "npy header", 10, got as u64));
    }
    let major = pre[6];
    let prefix_len = if major == 1 { 10 } else { 12 };
    while got < prefix_len {
        match r.read(&mut pre[got..prefix_len]) {
            Ok(0) => {
                return Err(Error::truncated(
                    origin,
                    "npy header",
                    prefix_len as u64,
                    got as u64,
                ));
            }
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(zip_read_error(origin, e)),
        }
    }
    // Delegate validation (magic, version, limits) to the npy parser on prefix + header bytes.
    let header_len = if major == 1 {
        usize::from(u16::from_le_bytes([pre[8], pre[9]]))
    } else {
        u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as usize
    };
    let mut buf = pre[..prefix_len].to_vec();
    if header_len <= 1 << 20 {
        let mut header = Vec::with_capacity(header_len);
        r.take(header_len as u64)
            .read_to_end(&mut header)
            .map_err(|e| zip_read_error(origin, e))?;
        buf.extend_from_slice(&header);
    }
    npy::parse_header(&buf, origin)
}

fn zip_read_error(origin: &str, e: std::io::Error) -> Error {
    Error::corrupt(origin, format!("cannot decompress the zip member: {e}"))
}
