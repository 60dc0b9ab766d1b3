//! Fuzz target `grade`: arbitrary bytes, split at the first NUL byte (or in the
//! middle) into a prediction and a gold answer, decoded as lossy UTF-8; runs the
//! extraction and both graders. Fails on any panic or on a verdict slower than
//! 50 ms (the fastest of up to three timings).
//!
//! Run (stable toolchain): `RUSTC_BOOTSTRAP=1 cargo fuzz run grade -- -max_total_time=300`
#![no_main]

use std::time::Instant;

use barl_math::extract::{extract_answer, ExtractOptions};
use barl_math::grader::grader_by_name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cut = data.iter().position(|&b| b == 0).unwrap_or(data.len() / 2);
    let pred = String::from_utf8_lossy(&data[..cut]);
    let gold = String::from_utf8_lossy(&data[(cut + 1).min(data.len())..]);
    let _ = extract_answer(&String::from_utf8_lossy(data), &ExtractOptions::default());
    for name in ["standard", "reference"] {
        let Ok(grader) = grader_by_name(name) else {
            panic!("grader {name} missing");
        };
        // The fastest of three timings, so that a busy shared machine or the
        // sanitizer's first-call costs are not taken for a slow verdict.
        let mut ms = f64::INFINITY;
        for _ in 0..3 {
            let start = Instant::now();
            let _ = grader.grade(&pred, &gold);
            ms = ms.min(start.elapsed().as_secs_f64() * 1e3);
            if ms < 50.0 {
                break;
            }
        }
        assert!(ms < 50.0, "{name} took {ms:.1} ms");
    }
});
