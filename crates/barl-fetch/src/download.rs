//! One download: `GET url` into `<dest>.part` (continuing it with a `Range`
//! request when it exists), then the checksum, then `rename` onto `dest`.
//!
//! A transfer that stops early keeps the `.part` file so the next call resumes
//! it; a checksum mismatch removes it (its bytes are wrong, not short).

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

/// What went wrong, with the URL and file involved.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error("{url}: cannot connect: {msg}")]
    Connect { url: String, msg: String },
    #[error("{url}: the server answered HTTP {code} {text}")]
    Status {
        url: String,
        code: u16,
        text: String,
    },
    #[error(
        "{url}: the transfer stopped after {got} of {} bytes ({msg}); the partial file {} is kept and the same command resumes it",
        .expected.map_or("?".to_string(), |e| e.to_string()), .part.display()
    )]
    Truncated {
        url: String,
        got: u64,
        expected: Option<u64>,
        part: PathBuf,
        msg: String,
    },
    #[error("{url}: checksum mismatch: the file has SHA-256 {got}, expected {expected}; it was not installed")]
    Checksum {
        url: String,
        expected: String,
        got: String,
    },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How a successful [`fetch`] went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// Size of the installed file.
    pub bytes: u64,
    /// Bytes already in the `.part` file that the server continued from (0: a fresh download).
    pub resumed_from: u64,
}

/// Downloads `url` to `dest`, verifying that its SHA-256 is `sha256` (lower-case
/// hex). `progress(done, total)` is called as bytes arrive (`total` when the
/// server says). See the module docs for what is kept on failure.
pub fn fetch(
    url: &str,
    dest: &Path,
    sha256: &str,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<Fetched, FetchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { path, source }
    };
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let part = part_path(dest);
    let have = std::fs::metadata(&part).map_or(0, |m| m.len());
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .build();
    let mut request = agent.get(url);
    if have > 0 {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(r) => r,
        // The part already holds the whole file (a crash after the last byte).
        Err(ureq::Error::Status(416, _)) if have > 0 => {
            return install(url, &part, dest, sha256, have)
        }
        Err(ureq::Error::Status(code, r)) => {
            return Err(FetchError::Status {
                url: url.to_string(),
                code,
                text: r.status_text().to_string(),
            })
        }
        Err(ureq::Error::Transport(t)) => {
            // Its text starts with the URL, which the error already names.
            let text = t.to_string();
            let msg = text
                .strip_prefix(&format!("{url}: "))
                .unwrap_or(&text)
                .to_string();
            return Err(FetchError::Connect {
                url: url.to_string(),
                msg,
            });
        }
    };
    // 206 continues the part; anything else is the whole file from byte 0.
    let start = if response.status() == 206 && continues_at(&response, have) {
        have
    } else {
        0
    };
    let length: Option<u64> = response
        .header("Content-Length")
        .and_then(|v| v.trim().parse().ok());
    let expected = length.map(|l| l + start);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(start > 0)
        .truncate(start == 0)
        .open(&part)
        .map_err(io(&part))?;
    let mut reader = response.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = start;
    let truncated = |got: u64, msg: String| FetchError::Truncated {
        url: url.to_string(),
        got,
        expected,
        part: part.clone(),
        msg,
    };
    loop {
        progress(done, expected);
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                file.sync_all().map_err(io(&part))?;
                return Err(truncated(done, e.to_string()));
            }
        };
        file.write_all(&buf[..n]).map_err(io(&part))?;
        done += n as u64;
    }
    file.sync_all().map_err(io(&part))?;
    drop(file);
    if let Some(e) = expected.filter(|&e| done < e) {
        return Err(truncated(
            done,
            format!("the connection closed {} bytes early", e - done),
        ));
    }
    install(url, &part, dest, sha256, start)
}

/// Checks the finished part and renames it onto `dest`.
fn install(
    url: &str,
    part: &Path,
    dest: &Path,
    sha256: &str,
    resumed_from: u64,
) -> Result<Fetched, FetchError> {
    let got = crate::sha256_file(part).map_err(|source| FetchError::Io {
        path: part.to_path_buf(),
        source,
    })?;
    if !got.eq_ignore_ascii_case(sha256) {
        let _ = std::fs::remove_file(part);
        return Err(FetchError::Checksum {
            url: url.to_string(),
            expected: sha256.to_string(),
            got,
        });
    }
    let bytes = std::fs::metadata(part).map_or(0, |m| m.len());
    std::fs::rename(part, dest).map_err(|source| FetchError::Io {
        path: dest.to_path_buf(),
        source,
    })?;
    Ok(Fetched {
        bytes,
        resumed_from,
    })
}

/// `dest` with `.part` added to its name.
fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Whether a 206 answer's `Content-Range: bytes A-B/N` starts at `at`.
fn continues_at(response: &ureq::Response, at: u64) -> bool {
    response
        .header("Content-Range")
        .and_then(|v| v.trim().strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|a| a.trim().parse::<u64>().ok())
        == Some(at)
}
