//! Run folders: choosing a fresh one and writing files into it safely.

use std::path::PathBuf;

/// The first `<stem>-N` (N = 1, 2, ...) that does not exist yet.
pub fn first_free(stem: &str) -> PathBuf {
    (1..)
        .map(|n| PathBuf::from(format!("{stem}-{n}")))
        .find(|p| !p.exists())
        .expect("some run number is free")
}

pub use barl_train::files::write_atomic;
