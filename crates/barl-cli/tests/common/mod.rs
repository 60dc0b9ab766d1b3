//! What the binary's tests share: running `barl`, scratch folders, and the
//! paths of the real model and data (`BARL_SMOLLM2`, `BARL_DATA_DIR`), which
//! are skipped with a note when absent unless `BARL_REQUIRE_DATA=1`.

// Each test file uses its own subset.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub mod http;
pub mod train;

/// The `barl` binary under test.
pub fn barl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_barl"))
}

/// A fresh, empty scratch folder under the target directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[allow(unused_imports)]
pub use barl_model::testing::{data_required as required, env_path};

/// The command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the command succeeded, showing its stderr if not; returns stdout.
pub fn assert_ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}
