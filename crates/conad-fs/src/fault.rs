//! Fault injection for crash tests: with `CONAD_TEST_ABORT_AT_FS_OP=N` in the environment the
//! process aborts (as a `kill -9` would end it) just before its N-th file-system mutation
//! through this crate (a rename that publishes a file, a removal), N ≥ 1. Tests run a command
//! with N = 1, 2, … and check after each abort that every output it left is consistent.
//!
//! Without the variable [`before_mutation`] costs one relaxed atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms the hook.
pub const ABORT_AT_ENV: &str = "CONAD_TEST_ABORT_AT_FS_OP";

static COUNT: AtomicU64 = AtomicU64::new(0);

fn armed_at() -> Option<u64> {
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    *AT.get_or_init(|| {
        std::env::var(ABORT_AT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&n| n > 0)
    })
}

/// Called before each mutation; aborts the process at the armed count.
pub fn before_mutation() {
    if let Some(at) = armed_at() {
        let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
        if n == at {
            eprintln!("{ABORT_AT_ENV}={at}: aborting before file-system mutation {n}");
            std::process::abort();
        }
    }
}

/// Mutations counted so far (only counted while the hook is armed).
pub fn mutations() -> u64 {
    COUNT.load(Ordering::SeqCst)
}
