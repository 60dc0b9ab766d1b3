//! Files that must never be seen half-written, and the hash that tells a
//! file (or a config) from another.

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

/// FNV-1a, 64 bit, from its offset basis: `h = 0xcbf29ce484222325`, then for
/// each byte `b`, `h = (h XOR b) * 0x100000001b3` (mod 2^64).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_extend(0xcbf2_9ce4_8422_2325, bytes)
}

/// Continues an FNV-1a 64 hash `h` over more bytes (for data read in pieces).
pub fn fnv1a64_extend(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
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
