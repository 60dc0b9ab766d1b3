//! Files that must never be seen half-written.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::TrainError;

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash
/// never leaves a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = path.with_extension("tmp");
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| TrainError::Io { path: p, source }
    };
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("barl-files-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.json");
        fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert!(!dir.join("a.tmp").exists());
        let err = write_atomic(&dir.join("no/such/dir/b.json"), b"x").unwrap_err();
        assert!(err.to_string().contains("no/such/dir"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
