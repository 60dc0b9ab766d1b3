//! The standard grader on `tests/data/grader_families.jsonl`: (gold, model output)
//! pairs written here for each family of answers that real outputs take (unboxed
//! LaTeX, gold written as LaTeX or a whole solution, relations, intervals and sets,
//! tuples, matrices, equations, LaTeX forms, number formats, symbolic forms, long
//! outputs, false positives), each with its verdict decided by hand (`equal`) and
//! Math-Verify 0.9.0's verdict on the same pair (`math_verify`: `verify(parse(gold),
//! parse(response))` with the gold inside `$..$` when it has no delimiters, the
//! reading `bench/grade_mathverify.py verify-cases` uses, which recomputes it on
//! every bench run). It is kept for reference, not asserted: on the 45 pairs where
//! it differs from `equal`, Math-Verify misses a form the issue counts as equal
//! (`x \le 3` against `(-\infty,3]`, `2 000`, a `<think>` block, ...).
//!
//! Family `real_smollm2` holds real outputs: SmolLM2-135M-Instruct's greedy
//! responses to MATH-500 (`barl eval --benchmarks math500 --max-new-tokens 384`),
//! some cut off at the limit (`truncated`), none of them right; on the two
//! truncated ones that Math-Verify credits, its last-number fallback found the
//! gold inside an unfinished expression.
//!
//! Every pair goes through `grade_line` as `barl grade` does: the answer is
//! extracted from `response` (one marked `truncated` without the last-number and
//! bare LaTeX fallbacks, as `barl eval` and training do), the gold read as written.

use std::collections::BTreeMap;

use barl_math::extract::ExtractOptions;
use barl_math::gradefile::{grade_line, LineKeys};
use barl_math::grader::{GoldExtract, GraderOptions, StandardGrader};
use serde_json::Value;

fn cases() -> Vec<Value> {
    let text = include_str!("data/grader_families.jsonl");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn keys() -> LineKeys {
    LineKeys::default()
}

#[test]
fn every_family_case_gets_its_verdict() {
    let grader = StandardGrader::default();
    let mut wrong = Vec::new();
    // family -> (equal pairs, unequal pairs)
    let mut seen: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let cases = cases();
    for case in &cases {
        let opts = ExtractOptions::default();
        let (row, verdict) =
            grade_line(&case.to_string(), &keys(), &grader, &opts).expect("a valid line");
        let want = case["equal"].as_bool().expect("equal is a bool");
        let family = case["family"].as_str().expect("family").to_string();
        let counts = seen.entry(family).or_default();
        if want {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
        if verdict.correct != want {
            wrong.push(format!("{} (want {want})", row.get()));
        }
    }
    assert!(cases.len() >= 250, "{} cases", cases.len());
    for (family, (eq, ne)) in &seen {
        // The small model answered none of its problems right.
        let real = family == "real_smollm2";
        assert!(
            (*eq > 0 || real) && *ne > 0,
            "{family}: {eq} equal and {ne} unequal pairs"
        );
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn gold_extraction_can_be_switched_off() {
    let line = r#"{"gold": "$\\frac{2}{7}$", "response": "\\boxed{\\frac{4}{14}}"}"#;
    let run = |gold| {
        let grader = StandardGrader {
            options: GraderOptions {
                gold,
                ..GraderOptions::default()
            },
        };
        grade_line(line, &keys(), &grader, &ExtractOptions::default())
            .unwrap()
            .1
            .correct
    };
    assert!(run(GoldExtract::Auto));
    assert!(run(GoldExtract::Always));
    // Read as written, `$\frac{2}{7}$` loses its dollars in normalisation only.
    assert!(run(GoldExtract::Never));
    let solution = r#"{"gold": "We have $3+4=7$, so the answer is $\\boxed{7}$.", "pred": "7"}"#;
    let never = StandardGrader {
        options: GraderOptions {
            gold: GoldExtract::Never,
            ..GraderOptions::default()
        },
    };
    let auto = StandardGrader::default();
    let opts = ExtractOptions::default();
    assert!(
        grade_line(solution, &keys(), &auto, &opts)
            .unwrap()
            .1
            .correct
    );
    assert!(
        !grade_line(solution, &keys(), &never, &opts)
            .unwrap()
            .1
            .correct
    );
}
