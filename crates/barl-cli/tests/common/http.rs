//! A loopback HTTP server for download tests: serves files by URL path, with
//! faults chosen by the first path segment:
//!
//! - `/ok/P`: the file, honouring `Range: bytes=N-` with 206;
//! - `/flaky/P`: the first request for P announces the whole length but sends
//!   half and closes; later ones behave as `/ok/`;
//! - `/corrupt/P`: the whole file with one byte changed;
//! - `/norange/P`: the whole file with 200 whatever the `Range`.
//!
//! Unknown paths get 404. Every request line is recorded (with its `Range`).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub struct Server {
    pub base: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Serves `files` (URL path without the fault segment -> file) until the test ends.
pub fn serve(files: HashMap<String, PathBuf>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let (files, log2) = (Arc::new(files), log.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (files, log, seen) = (files.clone(), log2.clone(), seen.clone());
            std::thread::spawn(move || answer(stream, &files, &log, &seen));
        }
    });
    Server { base, log }
}

fn answer(
    mut stream: TcpStream,
    files: &HashMap<String, PathBuf>,
    log: &Mutex<Vec<String>>,
    seen: &Mutex<HashSet<String>>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let mut range_from = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range: bytes=") {
            range_from = v.trim().trim_end_matches('-').parse::<usize>().ok();
        }
    }
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    log.lock()
        .unwrap()
        .push(format!("{path} range={range_from:?}"));
    let (mode, rest) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("", ""));
    let Some(bytes) = files.get(rest).and_then(|f| std::fs::read(f).ok()) else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let mut body = bytes.clone();
    let first_time = seen.lock().unwrap().insert(rest.to_string());
    let honour_range = matches!(mode, "ok" | "flaky") && !(mode == "flaky" && first_time);
    let start = range_from.filter(|_| honour_range).unwrap_or(0);
    if mode == "corrupt" {
        body[bytes.len() / 2] ^= 0x20;
    }
    let status = if start > 0 {
        format!(
            "206 Partial Content\r\nContent-Range: bytes {start}-{}/{}",
            bytes.len() - 1,
            bytes.len()
        )
    } else {
        "200 OK".to_string()
    };
    let body = &body[start.min(body.len())..];
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let cut = if mode == "flaky" && first_time {
        body.len() / 2
    } else {
        body.len()
    };
    let _ = stream.write_all(&body[..cut]);
    let _ = stream.flush();
}
