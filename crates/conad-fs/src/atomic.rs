//! [`AtomicFile`], [`AtomicPath`], [`write_atomic`]: the temporary-file-and-rename protocol.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{FsError, Operation};
use crate::fault;

/// True when `path` exists and is not a regular file (a device, a FIFO, a socket): such a
/// destination is written in place, never renamed over.
fn is_special(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// The file a write to `dest` must replace: a symbolic link is followed to its target (renaming
/// over the link would replace the link, not the file it names).
fn resolve(dest: &Path) -> PathBuf {
    match fs::symlink_metadata(dest) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(dest).unwrap_or_else(|_| {
            // A dangling link: write where it points.
            fs::read_link(dest)
                .map(|t| match dest.parent() {
                    Some(dir) if t.is_relative() => dir.join(t),
                    _ => t,
                })
                .unwrap_or_else(|_| dest.to_path_buf())
        }),
        _ => dest.to_path_buf(),
    }
}

/// Distinguishes temporary files of one process (threads writing the same destination).
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Creates a new temporary file beside `dest` (never opening an existing one, so a planted link
/// or another writer's file is not reused), with the permissions of the file it will replace.
fn create_temp(dest: &Path) -> Result<(PathBuf, File), FsError> {
    let mode = fs::metadata(dest).ok().map(|m| m.permissions());
    for _ in 0..16 {
        let tmp = temp_path_for(dest)?;
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => {
                if let Some(mode) = &mode {
                    // Best effort: a file system without permissions keeps its default.
                    let _ = fs::set_permissions(&tmp, mode.clone());
                }
                return Ok((tmp, file));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(FsError::new(dest, Operation::Create, e)),
        }
    }
    Err(FsError::new(
        dest,
        Operation::Create,
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free temporary name beside it",
        ),
    ))
}

/// `DIR/.STEM.tmp-PID-N.EXT` beside `dest` (the extension is kept last, so that writers that
/// pick an encoder by extension, such as image libraries, still see it).
fn temp_path_for(dest: &Path) -> Result<PathBuf, FsError> {
    let invalid = || {
        FsError::new(
            dest,
            Operation::Create,
            io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
        )
    };
    let name = dest.file_name().ok_or_else(invalid)?;
    let pid = std::process::id();
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let pid = format!("{pid}-{n}");
    let mut tmp = OsString::from(".");
    match (dest.file_stem(), dest.extension()) {
        (Some(stem), Some(ext)) => {
            tmp.push(stem);
            tmp.push(format!(".tmp-{pid}."));
            tmp.push(ext);
        }
        _ => {
            tmp.push(name);
            tmp.push(format!(".tmp-{pid}"));
        }
    }
    Ok(dest.with_file_name(tmp))
}

/// Syncs the directory holding `path`, so that a rename in it survives a power loss.
fn sync_parent(path: &Path) -> Result<(), FsError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        // Some file systems cannot sync a directory; the rename itself is still atomic.
        Err(e) if matches!(e.raw_os_error(), Some(22) | Some(9)) => Ok(()),
        Err(e) => Err(FsError::new(path, Operation::SyncDirectory, e)),
    }
}

/// Renames `tmp` over `dest` (counted by the [`fault`] hook) and syncs the directory; removes
/// `tmp` when the rename fails.
fn publish(tmp: &Path, dest: &Path) -> Result<(), FsError> {
    fault::before_mutation();
    if let Err(e) = fs::rename(tmp, dest) {
        let _ = fs::remove_file(tmp);
        return Err(FsError::new(dest, Operation::Rename, e));
    }
    sync_parent(dest)
}

/// A file being written; it replaces its destination only on [`AtomicFile::commit`].
///
/// Dropping it without committing removes the temporary file and leaves the destination as it
/// was. Write errors name the destination.
#[derive(Debug)]
pub struct AtomicFile {
    dest: PathBuf,
    /// `None` when the destination is a device or FIFO written in place.
    tmp: Option<PathBuf>,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `dest` (its directory must exist).
    ///
    /// # Errors
    /// [`Operation::Create`] when the temporary file cannot be created.
    pub fn create(dest: impl AsRef<Path>) -> Result<Self, FsError> {
        let dest = resolve(dest.as_ref());
        if is_special(&dest) {
            let file =
                File::create(&dest).map_err(|e| FsError::new(&dest, Operation::Create, e))?;
            return Ok(Self {
                dest,
                tmp: None,
                writer: Some(BufWriter::new(file)),
            });
        }
        let (tmp, file) = create_temp(&dest)?;
        Ok(Self {
            dest,
            tmp: Some(tmp),
            writer: Some(BufWriter::new(file)),
        })
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// Flushes, syncs and renames the file over its destination.
    ///
    /// # Errors
    /// [`Operation::Write`] / [`Operation::Sync`] / [`Operation::Rename`]; the destination is
    /// unchanged and the temporary file removed.
    pub fn commit(mut self) -> Result<(), FsError> {
        let writer = self.writer.take().expect("an AtomicFile is committed once");
        let file = writer
            .into_inner()
            .map_err(|e| FsError::new(&self.dest, Operation::Write, e.into_error()))?;
        let Some(tmp) = self.tmp.take() else {
            // In place (a device): nothing to rename; a sync error on a device is not a
            // failure of the data.
            return Ok(());
        };
        if let Err(e) = file.sync_all() {
            let _ = fs::remove_file(&tmp);
            return Err(FsError::new(&self.dest, Operation::Sync, e));
        }
        drop(file);
        publish(&tmp, &self.dest)
    }

    fn wrap(&self, e: io::Error) -> io::Error {
        FsError::new(&self.dest, Operation::Write, e).into()
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let w = self.writer.as_mut().expect("written before commit");
        w.write(buf).map_err(|e| self.wrap(e))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let w = self.writer.as_mut().expect("written before commit");
        w.write_all(buf).map_err(|e| self.wrap(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        let w = self.writer.as_mut().expect("flushed before commit");
        w.flush().map_err(|e| self.wrap(e))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            // Not committed: close and remove the partial file.
            drop(self.writer.take());
            let _ = fs::remove_file(tmp);
        }
    }
}

/// A temporary path for libraries that write files by path themselves (plot backends): write to
/// [`AtomicPath::temp_path`], then [`AtomicPath::commit`]. Dropping it uncommitted removes the
/// temporary file.
#[derive(Debug)]
pub struct AtomicPath {
    dest: PathBuf,
    tmp: Option<PathBuf>,
}

impl AtomicPath {
    /// A temporary path beside `dest` (or `dest` itself for a device).
    ///
    /// # Errors
    /// [`Operation::Create`] when `dest` names no file.
    pub fn new(dest: impl AsRef<Path>) -> Result<Self, FsError> {
        let dest = resolve(dest.as_ref());
        let tmp = if is_special(&dest) {
            None
        } else {
            // Reserve the name (and the mode) now; the library writing it truncates the file.
            Some(create_temp(&dest)?.0)
        };
        Ok(Self { dest, tmp })
    }

    /// Where to write.
    pub fn temp_path(&self) -> &Path {
        self.tmp.as_deref().unwrap_or(&self.dest)
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// Syncs the written file and renames it over the destination.
    ///
    /// # Errors
    /// [`Operation::Write`] when nothing was written to the temporary path, [`Operation::Sync`]
    /// and [`Operation::Rename`]; the destination is unchanged.
    pub fn commit(mut self) -> Result<(), FsError> {
        let Some(tmp) = self.tmp.take() else {
            return Ok(());
        };
        if fs::metadata(&tmp).map_or(true, |m| m.len() == 0) {
            let _ = fs::remove_file(&tmp);
            return Err(FsError::new(
                &self.dest,
                Operation::Write,
                io::Error::new(io::ErrorKind::UnexpectedEof, "nothing was written"),
            ));
        }
        if let Err(e) = File::open(&tmp).and_then(|f| f.sync_all()) {
            let _ = fs::remove_file(&tmp);
            return Err(FsError::new(&self.dest, Operation::Sync, e));
        }
        publish(&tmp, &self.dest)
    }
}

impl Drop for AtomicPath {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Writes `bytes` to `path` atomically.
///
/// # Errors
/// As [`AtomicFile::create`] and [`AtomicFile::commit`].
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), FsError> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Writes `path` atomically with `fill`; if `fill` fails the destination is unchanged.
///
/// # Errors
/// As [`write_atomic`]; `fill`'s error is reported as [`Operation::Write`] on `path`.
pub fn write_atomic_with(
    path: impl AsRef<Path>,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), FsError> {
    let path = path.as_ref();
    let mut file = AtomicFile::create(path)?;
    if let Err(e) = fill(&mut file) {
        // Unwrap our own wrapping so the message names the file once.
        let source = match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<FsError>())
        {
            Some(_) => {
                let kind = e.kind();
                let inner = e.into_inner().expect("checked above");
                match inner.downcast::<FsError>() {
                    Ok(fs_error) => return Err(*fs_error),
                    Err(other) => io::Error::new(kind, other),
                }
            }
            None => e,
        };
        return Err(FsError::new(path, Operation::Write, source));
    }
    file.commit()
}

/// Removes `path` if it exists (counted by the [`fault`] hook); `Ok(false)` when it did not.
///
/// # Errors
/// [`Operation::Remove`].
pub fn remove_file_if_exists(path: impl AsRef<Path>) -> Result<bool, FsError> {
    let path = path.as_ref();
    if fs::symlink_metadata(path).is_err() {
        return Ok(false);
    }
    fault::before_mutation();
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(FsError::new(path, Operation::Remove, e)),
    }
}
