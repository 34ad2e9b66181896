//! Standard output for every command. `println!` panics when stdout is a closed pipe
//! (`conad data info … | head -1`) or a full device (`> /dev/full`); commands write through
//! [`outln!`] instead, which returns the error. [`exit_status`] then treats a closed pipe as a
//! normal end (status 0: the reader has what it wanted) and any other write error as an error
//! that names standard output.

use std::io::{self, Write};

/// Writes one line to standard output (like `println!`), returning an `anyhow` error on failure.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// Writes one line of information to standard error (like `eprintln!`, which panics when
/// stderr is closed or full); a failing stderr is ignored, it has nowhere to be reported.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use errln;

/// Writes formatted text to standard output.
pub fn write_stdout(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args).map_err(stdout_error)
}

/// Flushes standard output (buffered bytes of a full device fail here).
pub fn flush_stdout() -> anyhow::Result<()> {
    io::stdout().lock().flush().map_err(stdout_error)
}

fn stdout_error(e: io::Error) -> anyhow::Error {
    anyhow::Error::new(e).context("cannot write to standard output")
}

/// True when `err` (or any error in its chain) is a closed pipe.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The process status for a command's result: 0 on success or a closed stdout pipe, else 2
/// after one line on standard error (`conad: <what went wrong>: <why>`).
pub fn exit_status(result: anyhow::Result<()>) -> i32 {
    let result = result.and_then(|()| flush_stdout());
    match result {
        Ok(()) => 0,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            // `{:#}` joins the context chain on one line; a failing stderr cannot be reported.
            let _ = writeln!(io::stderr(), "conad: {e:#}");
            2
        }
    }
}
