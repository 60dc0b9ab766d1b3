//! Loaders against the real files (the checkout's `data/`, or `BARL_DATA_DIR`
//! when set), and error handling on small fixtures written to a temp dir.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use barl_math::data::{
    load_benchmark, load_benchmark_with, load_generic, DataError, LoadOptions, Problem,
};
use barl_math::evalfile::{compute_metrics, exact_equal, read_eval_file, EvalRecord, EvalWriter};
use barl_math::reflect::ReflectionCounter;

/// The data directory: `BARL_DATA_DIR` when set, else the checkout's shipped
/// `data/` (always there in a checkout, so the real-data tests never skip).
fn data_dir(test: &str) -> Option<PathBuf> {
    let dir = barl_math::data::find_data_dir(None).unwrap_or_else(|e| panic!("{test}: {e}"));
    assert!(
        dir.join("benchmarks").is_dir(),
        "{test}: {} has no benchmarks/ folder",
        dir.display()
    );
    Some(dir)
}

/// A fresh empty directory for one test's fixtures.
fn temp_dir(test: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "barl-math-{}-{}-{test}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn by_id<'a>(problems: &'a [Problem], id: &str) -> &'a Problem {
    problems
        .iter()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("no problem with id {id}"))
}

// ---------------------------------------------------------------------------
// Real data

#[test]
fn all_files_load_with_published_counts() {
    let Some(dir) = data_dir("all_files_load_with_published_counts") else {
        return;
    };
    // Counts from shared/data/README.md (the published sizes of each set).
    let expected = [
        ("gsm8k", 1319),
        ("math500", 500),
        ("aime24", 30),
        ("aime25", 30),
        ("amc23", 40),
        ("minerva_math", 272),
        ("olympiadbench", 675),
        ("college_math", 2818),
        ("gsm8k_train", 7473),
        ("math_train", 7500),
    ];
    for (name, count) in expected {
        let loaded = load_benchmark_with(name, &dir, &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        println!(
            "{name}: {} problems, {} with empty gold",
            loaded.problems.len(),
            loaded.empty_gold
        );
        assert_eq!(loaded.problems.len(), count, "{name}");
        assert!(loaded.skipped.is_empty());
        // README: exactly two rows of the verl file have an empty ground truth.
        let empty_expected = if name == "math_train" { 2 } else { 0 };
        assert_eq!(loaded.empty_gold, empty_expected, "{name}");
        for p in &loaded.problems {
            assert_eq!(p.benchmark, name);
            assert!(p.id.starts_with(&format!("{name}/")), "{}", p.id);
            assert!(!p.question.trim().is_empty(), "{}: empty question", p.id);
            // No loader leaves the boxed-answer instruction in the question.
            assert!(
                !p.question.contains("within \\boxed{}"),
                "{}: instruction left in question",
                p.id
            );
        }
        // Ids are stable: a second load gives the same ones.
        let again = load_benchmark(name, &dir).unwrap();
        assert!(again
            .iter()
            .map(|p| &p.id)
            .eq(loaded.problems.iter().map(|p| &p.id)));
    }
}

#[test]
fn gold_answers_spot_checked() {
    let Some(dir) = data_dir("gold_answers_spot_checked") else {
        return;
    };
    // GSM8K test #0 (Janet's ducks): 16 - 3 - 4 = 9 eggs, 9 * $2 = 18.
    let gsm = load_benchmark("gsm8k", &dir).unwrap();
    assert_eq!(gsm[0].id, "gsm8k/0");
    assert_eq!(gsm[0].gold, "18");
    assert!(gsm[0]
        .question
        .starts_with("Janet\u{2019}s ducks lay 16 eggs"));
    // Thousands commas are kept as written ("#### 2,125" on line 147).
    assert_eq!(gsm[146].gold, "2,125");

    // MATH-500 #0: polar coordinates of (0,3) are (3, pi/2); id from unique_id.
    let m = load_benchmark("math500", &dir).unwrap();
    assert_eq!(m[0].id, "math500/test/precalculus/807.json");
    assert_eq!(m[0].gold, r"\left( 3, \frac{\pi}{2} \right)");
    assert_eq!(m[0].meta["level"], 2);
    assert_eq!(m[0].meta["subject"], "Precalculus");

    // AIME 2024 id 67 is stored as "025"; kept as 25, raw in meta.
    let a24 = load_benchmark("aime24", &dir).unwrap();
    let p = by_id(&a24, "aime24/67");
    assert_eq!(p.gold, "25");
    assert_eq!(p.meta["raw_answer"], "025");
    // id 60 (Aya's walk): 204 minutes, no padding to remove.
    assert_eq!(by_id(&a24, "aime24/60").gold, "204");

    // AIME 2025 #0: bases b > 9 with 17_b | 97_b are 21 and 49, sum 70. The
    // file's own instruction is moved to meta.
    let a25 = load_benchmark("aime25", &dir).unwrap();
    assert_eq!(a25[0].gold, "70");
    assert!(a25[0].question.ends_with("divisor of $97_b.$"));
    assert_eq!(
        a25[0].meta["instruction"],
        "Please reason step by step, and put your final answer within \\boxed{}."
    );

    // AMC 2023 #0: 45 miles at 18 + 12 mph closing speed meet after 1.5 h,
    // 18 * 1.5 = 27 miles from A; stored as the float 27.0. id 17 is -1.0.
    let amc = load_benchmark("amc23", &dir).unwrap();
    assert_eq!(amc[0].gold, "27");
    assert_eq!(by_id(&amc, "amc23/17").gold, "-1");

    // Minerva #0 ends "7200=\boxed{1.6} \mathrm{~cm}"; #1 "\boxed{4.5e33}".
    let mv = load_benchmark("minerva_math", &dir).unwrap();
    assert_eq!(mv[0].gold, "1.6");
    assert_eq!(mv[1].gold, "4.5e33");

    // OlympiadBench: lists with `$` delimiters.
    let ob = load_benchmark("olympiadbench", &dir).unwrap();
    assert_eq!(ob[0].id, "olympiadbench/1606");
    assert_eq!(ob[0].gold, "2");
    assert_eq!(
        by_id(&ob, "olympiadbench/1618").gold,
        "(1,8,19), (2,7,13), (4,5,7)"
    );
    assert_eq!(by_id(&ob, "olympiadbench/1664").gold, "69,84");

    // College Math #0 "$10-4 n$", #11 an interval answer.
    let cm = load_benchmark("college_math", &dir).unwrap();
    assert_eq!(cm[0].gold, "10-4 n");
    assert_eq!(cm[11].gold, r"-1<x \leqslant 1:(-1,1]");

    // GSM8K train #0 (Natalia's clips): 48 + 48/2 = 72.
    let gt = load_benchmark("gsm8k_train", &dir).unwrap();
    assert_eq!(gt[0].gold, "72");
}

#[test]
fn verl_parquet_schema() {
    let Some(dir) = data_dir("verl_parquet_schema") else {
        return;
    };
    let loaded = load_benchmark_with("math_train", &dir, &LoadOptions::default()).unwrap();
    let probs = &loaded.problems;
    // Row 0 (Algebra, Level 5): f is continuous at 2 when 2a + 3 = 2 - 5, so
    // a = -3, and at -2 when -2 - 5 = 2(-2) - b, so b = 3: a + b = 0.
    let p0 = &probs[0];
    assert_eq!(p0.id, "math_train/0");
    assert_eq!(p0.gold, "0");
    assert!(
        p0.question.starts_with("Let \\[f(x) = \\left\\{"),
        "{}",
        p0.question
    );
    assert!(p0
        .question
        .ends_with("without lifting your pencil from the paper)."));
    assert_eq!(p0.meta["level"], "Level 5");
    assert_eq!(p0.meta["type"], "Algebra");
    // Every row's prompt ends with the same instruction, moved to meta.
    for p in probs {
        assert_eq!(
            p.meta["instruction"],
            "Let's think step by step and output the final answer within \\boxed{}.",
            "{}",
            p.id
        );
    }
    // Values read with pyarrow (a second parquet implementation): row 1's
    // ground truth, the last row's, and the rows with an empty one.
    assert_eq!(probs[1].gold, "98");
    assert_eq!(
        probs[7499].gold,
        r"\left( \frac{8}{5}, -\frac{35}{2} \right)"
    );
    let empty: Vec<&Problem> = probs.iter().filter(|p| !p.has_gold()).collect();
    let empty_ids: Vec<&str> = empty.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(empty_ids, ["math_train/5341", "math_train/5343"]);
    assert!(empty.iter().all(|p| p.meta["empty_gold"] == true));
    // README: 5586 rows of levels 3-5.
    let hard = probs
        .iter()
        .filter(|p| {
            matches!(
                p.meta.get("level").and_then(|v| v.as_str()),
                Some("Level 3" | "Level 4" | "Level 5")
            )
        })
        .count();
    assert_eq!(hard, 5586);

    // The generic reader on the same file with dotted keys gives the same golds
    // (and, without stripping, the instruction still in the question).
    let generic = load_generic(
        &dir.join("train/math_train.parquet"),
        "prompt",
        "reward_model.ground_truth",
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(generic.problems.len(), 7500);
    assert!(generic.problems[0].question.ends_with("within \\boxed{}."));
    assert!(generic
        .problems
        .iter()
        .zip(probs)
        .all(|(g, p)| g.gold == p.gold));
}

// ---------------------------------------------------------------------------
// Errors on fixtures

#[test]
fn malformed_json_line_names_file_and_line() {
    let dir = temp_dir("malformed");
    let bench = dir.join("benchmarks");
    std::fs::create_dir_all(&bench).unwrap();
    write(
        &bench,
        "gsm8k.jsonl",
        b"{\"question\": \"1+1?\", \"answer\": \"so\\n#### 2\"}\n\n{\"question\": \"2+2?\", \"answer\": \n{\"question\": \"3+3?\", \"answer\": \"#### 6\"}\n",
    );
    let err = load_benchmark("gsm8k", &dir).unwrap_err();
    let msg = err.to_string();
    // The blank line 2 is skipped but still counted: the bad line is line 3.
    assert!(matches!(err, DataError::Line { line: 3, .. }), "{msg}");
    assert!(msg.contains("gsm8k.jsonl:3: invalid JSON"), "{msg}");

    // skip_bad: the bad line is reported, the others load, and ids stay
    // positional (the third record keeps index 2).
    let opts = LoadOptions {
        skip_bad: true,
        ..Default::default()
    };
    let loaded = load_benchmark_with("gsm8k", &dir, &opts).unwrap();
    assert_eq!(loaded.problems.len(), 2);
    assert_eq!(loaded.skipped.len(), 1);
    assert_eq!(loaded.problems[1].id, "gsm8k/2");
    assert_eq!(loaded.problems[1].gold, "6");
}

#[test]
fn missing_key_and_wrong_type_are_named() {
    let dir = temp_dir("missing");
    let bench = dir.join("benchmarks");
    std::fs::create_dir_all(&bench).unwrap();
    // The error of loading benchmark `name` from the one file `text`.
    let error_of = |name: &str, text: &str| {
        write(&bench, &format!("{name}.jsonl"), text.as_bytes());
        load_benchmark(name, &dir).unwrap_err().to_string()
    };
    let msg = error_of("math500", r#"{"problem": "p", "unique_id": "a"}"#);
    assert!(
        msg.ends_with("math500.jsonl:1: missing key `answer`"),
        "{msg}"
    );
    let msg = error_of("amc23", r#"{"id": 0, "problem": "p", "answer": [1]}"#);
    assert!(
        msg.contains("amc23.jsonl:1: key `answer` is a list"),
        "{msg}"
    );

    write(
        &bench,
        "gsm8k.jsonl",
        b"{\"question\": \"q\", \"answer\": \"no marker\"}\n[1, 2]\n",
    );
    let loaded = load_benchmark_with(
        "gsm8k",
        &dir,
        &LoadOptions {
            skip_bad: true,
            ..Default::default()
        },
    )
    .unwrap();
    let msgs: Vec<String> = loaded.skipped.iter().map(|e| e.to_string()).collect();
    assert_eq!(loaded.problems.len(), 0);
    assert!(
        msgs[0].contains(":1: key `answer` has no `#### `"),
        "{msgs:?}"
    );
    assert!(
        msgs[1].contains(":2: expected a JSON object, found a list"),
        "{msgs:?}"
    );

    // Minerva without a complete \boxed{} in the solution.
    let msg = error_of(
        "minerva_math",
        r#"{"idx": 0, "problem": "p", "solution": "\\boxed{1"}"#,
    );
    assert!(msg.contains(":1: key `solution` has no complete"), "{msg}");

    // Duplicate own ids would break resume: an error on the second one.
    let msg = error_of(
        "aime24",
        "{\"id\": 1, \"problem\": \"p\", \"answer\": \"007\"}\n{\"id\": 1, \"problem\": \"q\", \"answer\": \"8\"}\n",
    );
    assert!(
        msg.contains("aime24.jsonl:2: duplicate id `aime24/1`"),
        "{msg}"
    );

    let msg = load_benchmark("nope", &dir).unwrap_err().to_string();
    assert!(msg.starts_with("unknown benchmark `nope`"), "{msg}");
    let err = load_benchmark("college_math", &dir).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err}");
}

#[test]
fn invalid_utf8_is_a_bad_line_not_a_panic() {
    let dir = temp_dir("utf8");
    let mut bytes = b"{\"q\": \"ok\", \"a\": \"1\"}\n{\"q\": \"".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, b'x']);
    bytes.extend_from_slice(b"\", \"a\": \"2\"}\n");
    let path = write(&dir, "user.jsonl", &bytes);
    let err = load_generic(&path, "q", "a", &LoadOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("user.jsonl:2: invalid UTF-8 at byte 7"),
        "{err}"
    );
    let loaded = load_generic(
        &path,
        "q",
        "a",
        &LoadOptions {
            skip_bad: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(loaded.problems.len(), 1);
    assert_eq!(loaded.skipped.len(), 1);
}

#[test]
fn generic_jsonl_keys_chat_lists_and_labels() {
    let dir = temp_dir("generic");
    let path = write(
        &dir,
        "mine.jsonl",
        br#"{"prompt": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "What is 2+3? Please reason step by step, and put your final answer within \\boxed{}."}, {"role": "assistant", "content": "5"}], "reward_model": {"ground_truth": 5.0}}
{"prompt": "plain text", "reward_model": {"ground_truth": ["$x$", "y"]}}
{"prompt": "no label", "reward_model": {}}
"#,
    );
    let opts = LoadOptions {
        skip_bad: true,
        strip_instruction: true,
    };
    let loaded = load_generic(&path, "prompt", "reward_model.ground_truth", &opts).unwrap();
    let p = &loaded.problems;
    assert_eq!(p.len(), 2);
    // The last *user* message, instruction removed, label 5.0 -> "5".
    assert_eq!(p[0].question, "What is 2+3?");
    assert_eq!(p[0].gold, "5");
    assert_eq!(p[0].id, "mine/0");
    assert_eq!(p[0].benchmark, "mine");
    // A list label gives its first element (kept as written).
    assert_eq!(p[1].gold, "$x$");
    let msg = loaded.skipped[0].to_string();
    assert!(
        msg.ends_with("mine.jsonl:3: missing key `reward_model.ground_truth`"),
        "{msg}"
    );
}

#[test]
fn truncated_or_fake_parquet_is_an_error() {
    let Some(dir) = data_dir("truncated_or_fake_parquet_is_an_error") else {
        return;
    };
    let bytes = std::fs::read(dir.join("train/math_train.parquet")).unwrap();
    let tmp = temp_dir("parquet");
    // Cut in the middle (footer gone) and cut just before the end magic.
    for (name, len) in [
        ("half.parquet", bytes.len() / 2),
        ("tail.parquet", bytes.len() - 3),
    ] {
        let path = write(&tmp, name, &bytes[..len]);
        let err = load_generic(
            &path,
            "prompt",
            "reward_model.ground_truth",
            &LoadOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, DataError::File { .. }), "{err}");
        assert!(err.to_string().contains(name), "{err}");
    }
    // Data pages overwritten with garbage but the footer intact: an error for
    // the file or a row, never a panic.
    let mut corrupt = bytes.clone();
    for b in corrupt[4..bytes.len() / 2].iter_mut() {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    let path = write(&tmp, "corrupt.parquet", &corrupt);
    let result = load_generic(
        &path,
        "prompt",
        "reward_model.ground_truth",
        &LoadOptions::default(),
    );
    assert!(result.is_err(), "garbage pages loaded without error");
}

#[test]
fn fake_parquet_fixture_without_data() {
    // Runs without BARL_DATA_DIR: a file with the magic but no valid footer.
    let dir = temp_dir("fakeparquet");
    let path = write(&dir, "x.parquet", b"PAR1 not really PAR1");
    let err = load_generic(&path, "a", "b", &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::File { .. }), "{err}");
    // Same magic in a .jsonl file is still detected as parquet.
    let path = write(&dir, "y.jsonl", b"PAR1");
    assert!(matches!(
        load_generic(&path, "a", "b", &LoadOptions::default()),
        Err(DataError::File { .. })
    ));
}

// ---------------------------------------------------------------------------
// Eval output files

fn record(id: &str, bench: &str, rows: &[(&str, Option<&str>, bool, usize, bool)]) -> EvalRecord {
    EvalRecord {
        id: id.into(),
        benchmark: bench.into(),
        prompt: format!("prompt of {id}"),
        gold: "g".into(),
        responses: rows.iter().map(|r| r.0.to_string()).collect(),
        extracted: rows.iter().map(|r| r.1.map(str::to_string)).collect(),
        correct: rows.iter().map(|r| r.2).collect(),
        tokens: rows.iter().map(|r| r.3).collect(),
        truncated: rows.iter().map(|r| r.4).collect(),
    }
}

#[test]
fn metrics_by_hand() {
    let records = vec![
        // p1: answers 4,4,5 -> maj "4" (correct); 2 of 3 correct.
        record(
            "a/1",
            "a",
            &[
                ("wait, 4", Some("4"), true, 10, false),
                ("4", Some("4"), true, 20, false),
                ("5", Some("5"), false, 30, true),
            ],
        ),
        // p2: answers 7, none, 8 -> tie 7/8, first seen "7" (wrong); 1 of 3.
        record(
            "a/2",
            "a",
            &[
                ("7", Some("7"), false, 40, false),
                ("...", None, false, 50, true),
                ("let me check: 8", Some("8"), true, 60, false),
            ],
        ),
        record("b/1", "b", &[("x", Some("1"), true, 5, false)]),
    ];
    let m = compute_metrics(&records, &ReflectionCounter::default(), &exact_equal);
    assert_eq!(m.len(), 2);
    let a = &m[0];
    assert_eq!((a.benchmark.as_str(), a.problems, a.responses), ("a", 2, 6));
    // mean@3 = (2/3 + 1/3) / 2 = 0.5; maj@3 = (1 + 0) / 2 = 0.5.
    assert!((a.accuracy - 0.5).abs() < 1e-12);
    assert!((a.maj_at_n - 0.5).abs() < 1e-12);
    // tokens 10..60: mean 35, median (30 + 40) / 2 = 35;
    // correct ones 10, 20, 60: mean 30, median 20.
    assert_eq!((a.mean_tokens, a.median_tokens), (35.0, 35.0));
    assert_eq!(
        (a.mean_tokens_correct, a.median_tokens_correct),
        (Some(30.0), Some(20.0))
    );
    // 2 of 6 truncated.
    assert!((a.truncation_rate - 2.0 / 6.0).abs() < 1e-12);
    assert_eq!(a.counts, vec![(3, 2), (3, 1)]);
    // Reflection: "wait" in one correct response, "let me check" in one correct.
    assert_eq!((a.reflection.n_with, a.reflection.n_without), (2, 4));
    assert_eq!(a.reflection.acc_with, Some(1.0));
    // Without: 1 correct ("4") of 4.
    assert_eq!(a.reflection.acc_without, Some(0.25));
    assert_eq!(m[1].benchmark, "b");
    assert_eq!(m[1].maj_at_n, 1.0);
}

#[test]
fn eval_file_roundtrip_resume_and_errors() {
    let dir = temp_dir("evalfile");
    let path = dir.join("out.jsonl");
    let r1 = record("a/1", "a", &[("r", Some("1"), true, 3, false)]);
    let r2 = record("a/2", "a", &[("s\n\u{00e9}", None, false, 4, true)]);
    let mut w = EvalWriter::create(&path).unwrap();
    w.write(&r1).unwrap();
    w.write(&r2).unwrap();
    drop(w);
    let f = read_eval_file(&path).unwrap();
    assert_eq!(f.records, vec![r1.clone(), r2.clone()]);
    assert!(!f.partial_tail);

    // Simulate a crash mid-write: half a line, cut inside the two-byte "é".
    let full = std::fs::read(&path).unwrap();
    let mut bytes = full.clone();
    let line3 =
        serde_json::to_string(&record("a/3", "a", &[("\u{00e9}", None, false, 1, false)])).unwrap();
    let cut = line3.find('\u{00e9}').unwrap() + 1;
    bytes.extend_from_slice(&line3.as_bytes()[..cut]);
    std::fs::write(&path, &bytes).unwrap();
    let f = read_eval_file(&path).unwrap();
    assert_eq!(f.records.len(), 2);
    assert!(f.partial_tail);
    assert_eq!(f.complete_len, full.len() as u64);

    // Resume cuts the partial line and appends after the complete ones.
    let (mut w, done) = EvalWriter::resume(&path).unwrap();
    assert_eq!(done.len(), 2);
    let r3 = record("a/3", "a", &[("t", Some("3"), true, 5, false)]);
    w.write(&r3).unwrap();
    drop(w);
    assert_eq!(
        read_eval_file(&path).unwrap().records,
        vec![r1.clone(), r2, r3]
    );

    // A bad line in the middle is an error naming the line.
    std::fs::write(&path, [&full[..], b"{oops}\n", &full[..]].concat()).unwrap();
    let msg = read_eval_file(&path).unwrap_err().to_string();
    assert!(msg.contains("out.jsonl:3: not an eval record"), "{msg}");

    // Lists of different lengths are rejected with the field named.
    let mut bad = r1;
    bad.tokens.push(9);
    std::fs::write(&path, serde_json::to_string(&bad).unwrap() + "\n").unwrap();
    let msg = read_eval_file(&path).unwrap_err().to_string();
    assert!(
        msg.contains(":1: `tokens` has 2 entries but `responses` has 1"),
        "{msg}"
    );
}
