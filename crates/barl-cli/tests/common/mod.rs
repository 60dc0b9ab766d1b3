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

/// Whether missing data must fail the test (`BARL_REQUIRE_DATA=1`, as in CI).
pub fn required() -> bool {
    std::env::var("BARL_REQUIRE_DATA").is_ok_and(|v| v == "1")
}

/// The path in `var`, if it names an existing file or folder; otherwise a
/// skip note, or a failure under `BARL_REQUIRE_DATA=1`.
pub fn env_path(var: &str) -> Option<PathBuf> {
    let found = std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.exists());
    if found.is_none() {
        assert!(
            !required(),
            "{var} is not set to an existing path and BARL_REQUIRE_DATA=1"
        );
        eprintln!("skipping: {var} not set to an existing path");
    }
    found
}

/// The command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the command succeeded, showing its stderr if not; returns stdout.
pub fn assert_ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}
