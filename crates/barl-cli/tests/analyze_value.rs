//! `barl analyze efficiency` and `barl analyze value` through the binary, on
//! hand-made eval files. The value test runs the real SmolLM2-135M-Instruct
//! (path in `BARL_SMOLLM2`); without it, it skips with a note unless
//! `BARL_REQUIRE_DATA=1`, where a missing model fails.

mod common;

use common::{assert_ok, barl, env_path, scratch, stderr};

use std::path::Path;

/// One eval record line with the given verdicts and token counts.
fn record(id: &str, prompt: &str, gold: &str, rows: &[(&str, bool, usize)]) -> String {
    serde_json::json!({
        "id": id,
        "benchmark": "gsm8k",
        "prompt": prompt,
        "gold": gold,
        "responses": rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "extracted": rows.iter().map(|_| None::<String>).collect::<Vec<_>>(),
        "correct": rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        "tokens": rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        "truncated": rows.iter().map(|_| false).collect::<Vec<_>>(),
    })
    .to_string()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn close(a: &serde_json::Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn efficiency_table_plot_and_json_by_hand() {
    let dir = scratch("analyze-efficiency");
    // Run a: two problems, n = 4.
    //   p1: 1 of 4 correct, tokens 10, 20, 30, 40 (mean 25); p2: 0 of 4, tokens 5 (mean 5).
    //   pass@k(p1) = 1 - C(3,k)/C(4,k): k=1 1/4, k=2 1 - 3/6 = 1/2, k=3 1 - 1/4 = 3/4, k=4 1.
    //   mean over problems: 0.125, 0.25, 0.375, 0.5; tokens k * (25 + 5) = 30, 60, 90, 120.
    let a = dir.join("a/gsm8k.jsonl");
    write_lines(
        &a,
        &[
            record(
                "p1",
                "q",
                "1",
                &[
                    ("x", true, 10),
                    ("x", false, 20),
                    ("x", false, 30),
                    ("x", false, 40),
                ],
            ),
            record(
                "p2",
                "q",
                "1",
                &[
                    ("x", false, 5),
                    ("x", false, 5),
                    ("x", false, 5),
                    ("x", false, 5),
                ],
            ),
        ],
    );
    // Run b: p1 n = 4, 2 correct, tokens 100..400 (mean 250); p2 n = 2, 1 correct,
    //   tokens 50, 150 (mean 100). k stops at min n = 2.
    //   k=1: (2/4 + 1/2) / 2 = 0.5, tokens 350.
    //   k=2: p1 1 - C(2,2)/C(4,2) = 5/6, p2 1 (n - c = 1 < 2): (5/6 + 1) / 2 = 11/12; tokens 700.
    let b = dir.join("b/gsm8k.jsonl");
    write_lines(
        &b,
        &[
            record(
                "p1",
                "q",
                "1",
                &[
                    ("x", true, 100),
                    ("x", true, 200),
                    ("x", false, 300),
                    ("x", false, 400),
                ],
            ),
            record("p2", "q", "1", &[("x", true, 50), ("x", false, 150)]),
        ],
    );
    let json = dir.join("eff.json");
    let svg = dir.join("plots/eff.svg");
    let out = barl()
        .args(["analyze", "efficiency"])
        .args([&a, &b])
        .arg("--json")
        .arg(&json)
        .arg("--out")
        .arg(&svg)
        .output()
        .unwrap();
    let table = assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 to 4 responses"), "{stderr}");

    // Table rows: file, label, k, pass@k, tokens.
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().skip(1).collect())
        .collect();
    let want = [
        ["a", "1", "0.1250", "30.0"],
        ["a", "2", "0.2500", "60.0"],
        ["a", "3", "0.3750", "90.0"],
        ["a", "4", "0.5000", "120.0"],
        ["b", "1", "0.5000", "350.0"],
        ["b", "2", "0.9167", "700.0"],
    ];
    assert_eq!(rows, want, "{table}");

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let fb = &v["files"][1];
    assert_eq!(fb["label"], "b");
    assert_eq!(
        (fb["n_min"].as_u64(), fb["n_max"].as_u64()),
        (Some(2), Some(4))
    );
    assert!(close(&fb["points"][1]["pass_at_k"], 11.0 / 12.0));
    assert!(close(&fb["points"][1]["tokens"], 700.0));

    // The SVG: both legend labels, and a log axis (30..700 spans more than 10x).
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..80.min(text.len())]);
    // plotters writes each text element's content on its own line.
    assert!(text.contains(">\na\n</text>") && text.contains(">\nb\n</text>"));
    assert!(text.contains("log scale"));

    // Run a alone spans 30..120 tokens (4x): a linear axis.
    let out = barl()
        .args(["analyze", "efficiency"])
        .arg(&a)
        .arg("--out")
        .arg(&svg)
        .output()
        .unwrap();
    assert_ok(&out);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("total generated tokens") && !text.contains("log scale"));

    // PNG with explicit labels.
    let png = dir.join("eff.png");
    let out = barl()
        .args(["analyze", "efficiency", "--labels", "GRPO,BARL"])
        .args([&a, &b])
        .arg("--out")
        .arg(&png)
        .output()
        .unwrap();
    let table = assert_ok(&out);
    assert!(table.contains("GRPO") && table.contains("BARL"), "{table}");
    let img = image::open(&png).unwrap();
    assert_eq!((img.width(), img.height()), (640, 480));
}

#[test]
fn efficiency_errors_are_clear() {
    let dir = scratch("analyze-efficiency-errors");
    let run = |args: &[&str]| {
        barl()
            .args(["analyze", "efficiency"])
            .args(args)
            .output()
            .unwrap()
    };

    let missing = dir.join("missing.jsonl");
    let out = run(&[missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.jsonl"), "{}", stderr(&out));

    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let out = run(&[empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("empty.jsonl: no records"),
        "{}",
        stderr(&out)
    );

    let good = dir.join("good.jsonl");
    write_lines(&good, &[record("p", "q", "1", &[("x", true, 3)])]);
    let out = run(&["--labels", "a,b", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--labels: 2 label(s) for 1 file(s)"),
        "{}",
        stderr(&out)
    );
    let out = run(&["--out", "plot.pdf", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(".svg or .png"), "{}", stderr(&out));
    // A record with no responses.
    let none = dir.join("none.jsonl");
    write_lines(&none, &[record("p9", "q", "1", &[])]);
    let out = run(&[none.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("problem p9 has no responses"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn value_errors_before_loading_the_model() {
    let dir = scratch("analyze-value-errors");
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    // The files are read first: an empty one fails even with a bogus model.
    let out = barl()
        .args(["analyze", "value", "--model", "/nonexistent/model.gguf"])
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("empty.jsonl: no records"), "{err}");
    let out = barl()
        .args(["analyze", "value", "--step-size", "0", "--model", "m"])
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--step-size"));
}

#[test]
fn value_on_smollm2_favours_the_correct_response() {
    let Some(model) = env_path("BARL_SMOLLM2") else {
        return;
    };
    let dir = scratch("analyze-value");
    let file = dir.join("eval.jsonl");
    let prompt = "<|im_start|>user\nWhat is 2 + 3? Put the final answer in \\boxed{}.<|im_end|>\n<|im_start|>assistant\n";
    write_lines(
        &file,
        &[record(
            "t/0",
            prompt,
            "5",
            &[
                (
                    "We add 2 and 3 to get 5. The answer is \\boxed{5}.",
                    true,
                    18,
                ),
                (
                    "We add 2 and 3 to get 7. The answer is \\boxed{7}.",
                    false,
                    18,
                ),
            ],
        )],
    );
    let json = dir.join("value.json");
    let out = barl()
        .args(["analyze", "value", "--quiet", "--step-size", "4", "--model"])
        .arg(&model)
        .arg("--out")
        .arg(&json)
        .arg(&file)
        .output()
        .unwrap();
    let table = assert_ok(&out);
    assert!(
        table.contains("p*(K)") && table.contains("incorrect"),
        "{table}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let f = &v["files"][0];
    // Hypotheses "5" (the truth) and "7".
    assert_eq!(f["all"]["mean_hypotheses"], 2.0);
    let end = |g: &str| f[g]["mean_p_truth_end"].as_f64().unwrap();
    // Measured: p*(K) = 0.82 after "... get 5 ... \boxed{5}." and 0.014 after
    // "... get 7 ... \boxed{7}." (Q4_1 SmolLM2, step size 4).
    assert!(end("correct") > 0.3, "{}", end("correct"));
    assert!(end("correct") > 10.0 * end("incorrect"), "{f}");
    let rows = f["responses"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        let values = r["values"].as_array().unwrap();
        let truth = r["truth"].as_array().unwrap();
        assert_eq!(values.len(), truth.len());
        assert!(values.len() >= 4, "{r}");
        // V(K) = 0: no progress remains after the last step.
        assert_eq!(values.last().unwrap().as_f64(), Some(0.0));
    }
    // Step 0 is the bare prompt, the same for both responses.
    assert_eq!(rows[0]["truth"][0], rows[1]["truth"][0]);
}
