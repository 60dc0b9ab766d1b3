//! Fuzz target `grade`: arbitrary bytes, split at the first NUL byte (or in the
//! middle) into a prediction and a gold answer, decoded as lossy UTF-8; runs the
//! extraction (on the whole input, and on each half as a response and as a gold
//! answer) and both graders. Fails on any panic or on a verdict slower than
//! 50 ms (the fastest of up to three timings), far inside the grader's 5 s limit;
//! each new slowest verdict is printed with its input, so the run's last such line
//! names the slowest input seen.
//!
//! Run (stable toolchain): `RUSTC_BOOTSTRAP=1 cargo fuzz run grade -- -runs=1000000`
#![no_main]

use std::sync::Mutex;
use std::time::Instant;

use barl_math::extract::{extract_answer, gold_answer, ExtractOptions};
use barl_math::grader::grader_by_name;
use libfuzzer_sys::fuzz_target;

/// The slowest verdict so far, in ms.
static SLOWEST: Mutex<f64> = Mutex::new(0.0);

fuzz_target!(|data: &[u8]| {
    let cut = data.iter().position(|&b| b == 0).unwrap_or(data.len() / 2);
    let pred = String::from_utf8_lossy(&data[..cut]);
    let gold = String::from_utf8_lossy(&data[(cut + 1).min(data.len())..]);
    let opts = ExtractOptions::default();
    let _ = extract_answer(&String::from_utf8_lossy(data), &opts);
    let _ = extract_answer(&pred, &opts.for_response(true, false));
    let _ = gold_answer(&gold, true);
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
            // Retimed above 1 ms, so that the slowest verdict reported is not
            // one pause of a shared machine.
            if ms < 1.0 {
                break;
            }
        }
        if let Ok(mut slowest) = SLOWEST.lock() {
            if ms > *slowest {
                *slowest = ms;
                let show = |s: &str| s.chars().take(120).collect::<String>();
                eprintln!(
                    "slowest verdict so far: {ms:.3} ms ({name}; pred {:?}, gold {:?}, {} bytes)",
                    show(&pred),
                    show(&gold),
                    data.len()
                );
            }
        }
        assert!(ms < 50.0, "{name} took {ms:.1} ms");
    }
});
