//! [`FsError`]: an I/O error with the file and the operation that failed.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What was being done to the file when an error occurred.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Creating the temporary file beside the destination.
    Create,
    /// Writing or flushing the bytes.
    Write,
    /// `fsync` of the written file (before it replaced the destination).
    Sync,
    /// `fsync` of the directory after the new file replaced the destination: the new file is in
    /// place but may not survive a power loss.
    SyncDirectory,
    /// Renaming the temporary file over the destination.
    Rename,
    /// Removing a file.
    Remove,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Create => "cannot create",
            Self::Write => "cannot write",
            Self::Sync => "cannot sync",
            Self::Rename => "cannot replace",
            Self::Remove => "cannot remove",
            Self::SyncDirectory => "wrote but cannot sync the directory of",
        })
    }
}

/// An I/O error on a named file; the destination (not the temporary file) is named.
#[derive(Debug)]
#[non_exhaustive]
pub struct FsError {
    /// The file the caller asked to write or remove.
    pub path: PathBuf,
    /// What failed.
    pub operation: Operation,
    /// The operating system's error.
    pub source: io::Error,
}

impl FsError {
    pub(crate) fn new(path: impl Into<PathBuf>, operation: Operation, source: io::Error) -> Self {
        Self {
            path: path.into(),
            operation,
            source,
        }
    }

    /// A hint for the common causes, appended to the message.
    fn hint(&self) -> &'static str {
        if self.operation == Operation::SyncDirectory {
            return " (the new file is in place)";
        }
        match self.source.raw_os_error() {
            Some(28) => {
                " (the disk is full: free space or write elsewhere; the previous file, if \
                         any, is unchanged)"
            }
            Some(27) => {
                " (the file size limit was reached; the previous file, if any, is \
                         unchanged)"
            }
            Some(13) | Some(1) => " (permission denied: choose a writable location)",
            Some(30) => " (read-only file system: choose a writable location)",
            _ => "",
        }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}{}",
            self.operation,
            self.path.display(),
            self.source,
            self.hint()
        )
    }
}

/// The OS error is part of the message, so it is not also reported as the `source` (which would
/// print it twice in an error chain).
impl std::error::Error for FsError {}

impl From<FsError> for io::Error {
    fn from(e: FsError) -> Self {
        let kind = e.source.kind();
        io::Error::new(kind, e)
    }
}
