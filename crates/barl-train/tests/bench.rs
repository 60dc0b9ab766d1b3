//! `engine_bench` in-process on the tiny random Llama: each section measures
//! what it says (token counts, JSON fields), and the cached prefix scores equal
//! re-encoding, the check that makes its speed-up figure meaningful.

use barl_model::testing::{fresh_temp_dir, save_tiny_llama};
use barl_train::math::bench::{engine_bench, EngineBench};
use barl_train::math::engine::Engine;
use barl_train::TrainError;

fn settings() -> EngineBench {
    EngineBench {
        runs: 2,
        batches: vec![1, 3],
        new_tokens: 5,
        prefill_len: 12,
        train: true,
        train_batch: 2,
        train_len: 10,
        hypotheses: 3,
        steps: 2,
        chunk: 4,
        greedy: true,
        train_only: false,
    }
}

#[test]
fn every_section_reports_and_cached_scores_match_reencoding() {
    let dir = fresh_temp_dir("bench-engine");
    let engine = Engine::load(&save_tiny_llama(&dir, 7).unwrap()).unwrap();
    let mut lines = Vec::new();
    let report = engine_bench(&engine, &settings(), &mut |l| lines.push(l)).unwrap();
    let sampling = report["sampling"].as_array().unwrap();
    assert_eq!(sampling.len(), 2);
    assert_eq!(sampling[1]["batch"], 3);
    assert_eq!(sampling[1]["first_completion"].as_array().unwrap().len(), 5);
    assert_eq!(report["prefill"]["tokens"], 12);
    assert_eq!(report["train_step"]["len"], 10);
    let diff = report["prefix_scoring"]["max_abs_diff"].as_f64().unwrap();
    assert!(diff < 1e-4, "cached and re-encoded scores differ by {diff}");
    for what in [
        "sample  batch   1",
        "prefill 12 tokens",
        "train step 2 x 10",
        "prefix scoring 3 hyps",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(what)),
            "{what}: {lines:?}"
        );
    }
    // Counts of zero are refused before anything runs.
    let bad = EngineBench {
        runs: 0,
        ..settings()
    };
    assert!(matches!(
        engine_bench(&engine, &bad, &mut |_| {}),
        Err(TrainError::Setting(_))
    ));
}
