//! Where the named benchmarks and training sets are found. One order for every
//! command:
//!
//! 1. the folder the user gave (`--data-dir`, or the `data_dir` config key);
//! 2. `$BARL_DATA_DIR`;
//! 3. the `data/` folder of the barl checkout: the one this binary was built
//!    from, or one above the executable (`target/release/barl`);
//! 4. `~/.cache/barl/data`.
//!
//! The first two are taken as given (a wrong path then fails naming the file);
//! the others only when they hold a `benchmarks/` folder.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::DataError;

/// Set to choose the data folder ahead of the checkout and the cache.
pub const DATA_DIR_ENV: &str = "BARL_DATA_DIR";

/// The data folder, by the order of the module docs. `given` is the flag or
/// config value (`None` or empty when not set).
pub fn find_data_dir(given: Option<&Path>) -> Result<PathBuf, DataError> {
    choose(given, std::env::var_os(DATA_DIR_ENV), &fallback_dirs())
}

/// The checkout and cache folders looked at after the flag and the variable.
pub fn fallback_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")];
    if let Ok(exe) = std::env::current_exe() {
        // A checkout above the executable: the folder with Cargo.toml and data/.
        if let Some(root) = exe
            .ancestors()
            .skip(1)
            .find(|a| a.join("Cargo.toml").is_file() && a.join("data").is_dir())
        {
            dirs.push(root.join("data"));
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cache/barl/data"));
    }
    dirs
}

fn choose(
    given: Option<&Path>,
    env: Option<OsString>,
    fallbacks: &[PathBuf],
) -> Result<PathBuf, DataError> {
    if let Some(g) = given.filter(|g| !g.as_os_str().is_empty()) {
        return Ok(g.to_path_buf());
    }
    if let Some(e) = env.filter(|e| !e.is_empty()) {
        return Ok(PathBuf::from(e));
    }
    if let Some(d) = fallbacks.iter().find(|d| d.join("benchmarks").is_dir()) {
        return Ok(d.canonicalize().unwrap_or_else(|_| d.clone()));
    }
    let mut looked = vec![
        "--data-dir / data_dir (not given)".to_string(),
        format!("${DATA_DIR_ENV} (not set)"),
    ];
    looked.extend(
        fallbacks
            .iter()
            .map(|d| format!("{} (no benchmarks/ folder)", d.display())),
    );
    Err(DataError::NoDataDir {
        looked: looked.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_is_flag_variable_checkout_cache() {
        let root = std::env::temp_dir().join(format!("barl-locate-{}", std::process::id()));
        let (checkout, cache) = (root.join("checkout"), root.join("cache"));
        std::fs::create_dir_all(cache.join("benchmarks")).unwrap();
        std::fs::create_dir_all(&checkout).unwrap();
        let fallbacks = [checkout.clone(), cache.clone()];
        let env = Some(OsString::from("/from/env"));
        let flag = Path::new("/from/flag");
        assert_eq!(choose(Some(flag), env.clone(), &fallbacks).unwrap(), flag);
        // An empty flag or variable counts as not set.
        let got = choose(Some(Path::new("")), env, &fallbacks).unwrap();
        assert_eq!(got, Path::new("/from/env"));
        let got = choose(None, Some(OsString::new()), &fallbacks).unwrap();
        assert_eq!(got, cache.canonicalize().unwrap());
        // A checkout without benchmarks/ is passed over; with it, it comes first.
        std::fs::create_dir_all(checkout.join("benchmarks")).unwrap();
        let got = choose(None, None, &fallbacks).unwrap();
        assert_eq!(got, checkout.canonicalize().unwrap());
        // Nothing anywhere: the error names every place and the fix.
        let nowhere = [root.join("none")];
        let err = choose(None, None, &nowhere).unwrap_err().to_string();
        for part in [
            "--data-dir",
            "BARL_DATA_DIR",
            "none (no benchmarks/ folder)",
        ] {
            assert!(err.contains(part), "{err} lacks {part}");
        }
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn this_checkout_ships_its_data() {
        let dir = &fallback_dirs()[0];
        assert!(
            dir.join("benchmarks/gsm8k.jsonl").is_file(),
            "{}",
            dir.display()
        );
        assert!(dir.join("train/math_train.parquet").is_file());
    }
}
