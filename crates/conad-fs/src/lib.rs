//! Crash-safe file output shared by every conad crate that writes files.
//!
//! A file written through [`AtomicFile`] (or [`write_atomic`]) is either the old file or the
//! complete new one at every instant, also after a kill or a full disk: the bytes go to a
//! temporary file beside the destination (`.NAME.tmp-PID`), which is flushed, `fsync`ed and
//! renamed over the destination; the directory is then synced. A write that fails — or an
//! [`AtomicFile`] dropped before [`AtomicFile::commit`] — removes the temporary file and leaves
//! the destination untouched. Every error names the file and what was being done.
//!
//! Destinations that exist and are not regular files (`/dev/null`, `/dev/stdout`, a FIFO) are
//! written in place: renaming over them would replace the device node.
//!
//! [`fault`] is a test hook that aborts the process at the N-th file-system mutation, so that
//! tests can kill a command at every point of its output sequence.

mod atomic;
mod error;
pub mod fault;

pub use atomic::{AtomicFile, AtomicPath, remove_file_if_exists, write_atomic, write_atomic_with};
pub use error::{FsError, Operation};
