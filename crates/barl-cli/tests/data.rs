//! `barl data`: verify on the shipped files, and downloads from a loopback
//! server serving them in the Hub's layout and as a data folder, including a
//! transfer cut short (resumed by the next run), a server ignoring `Range`, a
//! wrong checksum and a missing file.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use barl_math::data::catalog::{data_set, DATA_SETS};
use common::{assert_ok, barl, scratch, stderr};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

/// The shipped files under their Hub URL paths and their data-folder paths.
fn files() -> HashMap<String, PathBuf> {
    let mut map = HashMap::new();
    for set in DATA_SETS {
        let local = shipped().join(set.file);
        if let Some(h) = set.hub {
            map.insert(
                format!("datasets/{}/resolve/main/{}", h.repo, h.path),
                local.clone(),
            );
        }
        map.insert(set.file.to_string(), local);
    }
    map
}

fn download(to: &Path, args: &[&str]) -> std::process::Output {
    barl()
        .env_remove("HF_ENDPOINT")
        .args(["data", "download", "--quiet", "--to"])
        .arg(to)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn verify_passes_on_the_shipped_files_and_fails_on_a_changed_one() {
    let out = barl()
        .args(["data", "verify", "--data-dir"])
        .arg(shipped())
        .output()
        .unwrap();
    let text = assert_ok(&out);
    assert!(text.contains("all 10 set(s) verified"), "{text}");
    let dir = scratch("data-verify");
    std::fs::create_dir_all(dir.join("benchmarks")).unwrap();
    std::fs::write(dir.join("benchmarks/amc23.jsonl"), "{}\n").unwrap();
    let out = barl()
        .args(["data", "verify", "amc23", "aime24", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("amc23          DIFFERS"), "{text}");
    assert!(text.contains("aime24         missing"), "{text}");
    assert!(stderr(&out).contains("2 of 2 set(s)"), "{}", stderr(&out));
}

#[test]
fn a_cut_transfer_is_kept_and_resumed_then_verified() {
    let server = common::http::serve(files());
    let to = scratch("data-flaky");
    let endpoint = format!("{}/flaky", server.base);
    let first = download(&to, &["math500", "--endpoint", &endpoint]);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let part = to.join("benchmarks/math500.jsonl.part");
    let set = data_set("math500").unwrap();
    let half = set.bytes / 2;
    assert!(
        stderr(&first).contains(&format!("stopped after {half} of {} bytes", set.bytes)),
        "{}",
        stderr(&first)
    );
    assert_eq!(std::fs::metadata(&part).unwrap().len(), half);
    assert!(!to.join(set.file).exists(), "half a file was installed");
    // The same command continues from the kept bytes.
    let second = download(&to, &["math500", "--endpoint", &endpoint]);
    let text = assert_ok(&second);
    assert!(text.contains(&format!("resumed at byte {half}")), "{text}");
    assert!(!part.exists());
    let log = server.log.lock().unwrap().clone();
    assert_eq!(
        log.last().unwrap(),
        &format!(
            "/flaky/datasets/HuggingFaceH4/MATH-500/resolve/main/test.jsonl range=Some({half})"
        )
    );
    assert_eq!(
        std::fs::read(to.join(set.file)).unwrap(),
        std::fs::read(shipped().join(set.file)).unwrap()
    );
    let again = download(&to, &["math500", "--endpoint", &endpoint]);
    assert!(assert_ok(&again).contains("already in"));
}

#[test]
fn a_server_that_ignores_range_restarts_the_file() {
    let server = common::http::serve(files());
    let to = scratch("data-norange");
    std::fs::create_dir_all(to.join("benchmarks")).unwrap();
    // Stale bytes in the part: the 200 answer replaces them.
    std::fs::write(to.join("benchmarks/amc23.jsonl.part"), "stale").unwrap();
    let endpoint = format!("{}/norange", server.base);
    let text = assert_ok(&download(&to, &["amc23", "--endpoint", &endpoint]));
    assert!(text.contains("amc23: 27631 bytes, checksum ok"), "{text}");
    assert!(!text.contains("resumed"), "{text}");
}

#[test]
fn a_wrong_checksum_installs_nothing_and_names_both_sums() {
    let server = common::http::serve(files());
    let to = scratch("data-corrupt");
    let endpoint = format!("{}/corrupt", server.base);
    let out = download(&to, &["aime24", "--endpoint", &endpoint]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let want = data_set("aime24").unwrap().sha256;
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(err.contains(&format!("expected {want}")), "{err}");
    assert!(!to.join("benchmarks/aime24.jsonl").exists());
    assert!(!to.join("benchmarks/aime24.jsonl.part").exists());
}

#[test]
fn every_set_comes_from_a_served_data_folder_and_errors_are_named() {
    let server = common::http::serve(files());
    let to = scratch("data-all");
    let from = format!("{}/ok", server.base);
    assert_ok(&download(&to, &["all", "--from", &from]));
    let out = barl()
        .args(["data", "verify", "--data-dir"])
        .arg(&to)
        .output()
        .unwrap();
    assert!(assert_ok(&out).contains("all 10 set(s) verified"));
    // A set the Hub does not hold in this format says what to do instead.
    let hub = format!("{}/ok", server.base);
    let out = download(&scratch("data-nohub"), &["gsm8k", "--endpoint", &hub]);
    assert!(
        stderr(&out).contains("`gsm8k` is not published on the Hub"),
        "{}",
        stderr(&out)
    );
    // A 404 and a dead server are errors naming the URL; a bad name is a usage error.
    let out = download(
        &scratch("data-404"),
        &["amc23", "--from", &format!("{}/ok/nowhere", server.base)],
    );
    assert!(stderr(&out).contains("HTTP 404"), "{}", stderr(&out));
    let out = download(
        &scratch("data-dead"),
        &["amc23", "--from", "http://127.0.0.1:9"],
    );
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    let out = download(&scratch("data-bad"), &["gsm9k"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown data set `gsm9k`"),
        "{}",
        stderr(&out)
    );
}
