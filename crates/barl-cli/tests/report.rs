//! `barl report RUN_DIR` through the binary, on a hand-written run folder.

mod common;

use common::{assert_ok, barl, scratch};

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

fn barl_report(run_dir: &Path) -> Output {
    barl().arg("report").arg(run_dir).output().unwrap()
}

/// The text of the first `<td class=...>` after `data-key="KEY"` in the page.
fn cell<'a>(html: &'a str, key: &str) -> &'a str {
    let row = &html[html
        .find(&format!("data-key=\"{key}\""))
        .unwrap_or_else(|| panic!("no row {key}"))..];
    let td = row.find("<td class=\"").expect("a cell");
    let start = td + row[td..].find('>').expect("cell start") + 1;
    let len = row[start..].find("</td>").expect("cell end");
    &row[start..start + len]
}

/// Every `plots/NAME.png` the page shows.
fn images(html: &str) -> BTreeSet<String> {
    html.split("<img src=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect()
}

// Five lines; line 3 was cut off mid-write. Steps 1, 2, 4, 5 are readable.
const METRICS: &str = concat!(
    r#"{"step":1,"critic/score/mean":0.25,"val/arith/acc":0.3,"timing_s/gen":10.0,"timing_s/probe":2.0,"timing_s/update":8.0,"timing_s/step":20.5,"perf/throughput":150.0,"response_length/mean":80.5,"actor/grad_norm":0.5,"barl/bayes_value/mean":0.1,"time":"2025-06-01T10:00:00Z"}"#,
    "\n",
    r#"{"step":2,"critic/score/mean":0.75,"timing_s/gen":12.0,"timing_s/probe":2.0,"timing_s/update":8.0,"timing_s/step":22.5,"response_length/mean":90.0,"actor/grad_norm":0.4,"barl/bayes_value/mean":0.2,"time":"2025-06-01T10:00:22Z"}"#,
    "\n",
    r#"{"step":3,"critic/score/mean":0.9,"timing_s/gen":100.0,"timin"#,
    "\n",
    r#"{"step":4,"critic/score/mean":0.375,"timing_s/gen":14.0,"timing_s/probe":3.0,"timing_s/update":9.0,"timing_s/step":26.5,"response_length/mean":70.0,"actor/grad_norm":0.6,"barl/bayes_value/mean":0.3,"time":"2025-06-01T10:00:49Z"}"#,
    "\n",
    r#"{"step":5,"critic/score/mean":0.625,"val/arith/acc":0.45,"val/gsm8k/acc":0.1,"timing_s/gen":9.0,"timing_s/probe":1.0,"timing_s/update":7.0,"timing_s/step":17.5,"perf/throughput":130.0,"response_length/mean":60.0,"actor/grad_norm":0.3,"barl/bayes_value/mean":0.25,"time":"2025-06-01T10:01:07Z"}"#,
    "\n",
);

const CONFIG: &str = "# resolved config\nmodel = \"/m/smollm2 <q4>.gguf\"\nseed = 7\n\n\
                      [rl]\nadv_estimator = \"barl\"\nlearning_rate = 1e-6\nn_samples_per_prompt = 4\n";

#[test]
fn report_of_a_run_folder() {
    let dir = scratch("report-run").join("run-7");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("metrics.jsonl"), METRICS).unwrap();
    std::fs::write(dir.join("config.toml"), CONFIG).unwrap();

    let out = barl_report(&dir);
    assert_ok(&out);
    let html_path = dir.join("report.html");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        html_path.display().to_string()
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("<title>barl run: run-7</title>"), "{html}");

    // Rewards of the readable steps: 0.25, 0.75, 0.375, 0.625 (the cut-off line's 0.9 is not one).
    assert_eq!(cell(&html, "steps"), "4");
    assert_eq!(cell(&html, "last_step"), "5");
    assert_eq!(cell(&html, "reward_final"), "0.625");
    // (0.25 + 0.75 + 0.375 + 0.625) / 4 = 2.0 / 4.
    assert_eq!(cell(&html, "reward_last_mean"), "0.5");
    assert!(html.contains("Mean reward over the last 4 steps"));
    assert_eq!(cell(&html, "reward_best"), "0.75");
    assert!(html.contains("Best reward (step 2)"));
    // gen: (10 + 12 + 14 + 9) / 4 = 11.25; probe: (2 + 2 + 3 + 1) / 4 = 2;
    // update: (8 + 8 + 9 + 7) / 4 = 8; step: (20.5 + 22.5 + 26.5 + 17.5) / 4 = 87 / 4 = 21.75.
    assert_eq!(cell(&html, "mean:timing_s/gen"), "11.25");
    assert_eq!(cell(&html, "mean:timing_s/probe"), "2");
    assert_eq!(cell(&html, "mean:timing_s/update"), "8");
    assert_eq!(cell(&html, "mean:timing_s/step"), "21.75");
    assert_eq!(cell(&html, "total:timing_s/step"), "87");
    // Throughput on steps 1 and 5 only: (150 + 130) / 2.
    assert_eq!(cell(&html, "mean:perf/throughput"), "140");
    assert!(html.contains("Mean perf/throughput (2 steps)"));

    // Evaluations: first step, first, last step, last, best.
    let arith = &html[html.find("data-key=\"val/arith/acc\"").unwrap()..];
    let arith = &arith[..arith.find("</tr>").unwrap()];
    let cells: Vec<&str> = arith
        .split("<td class=\"num\">")
        .skip(1)
        .map(|c| &c[..c.find("</td>").unwrap()])
        .collect();
    assert_eq!(cells, ["1", "0.3", "5", "0.45", "0.45"]);
    assert_eq!(cell(&html, "val/gsm8k/acc"), "5");

    // The cut-off line is counted and named.
    assert!(html.contains("data-bad-lines=\"1\""), "{html}");
    assert!(
        html.contains("5 lines, 1 unreadable line skipped (line 3)"),
        "{html}"
    );

    // Settings found at any depth, and the config verbatim, escaped.
    assert_eq!(cell(&html, "config:rl.adv_estimator"), "barl");
    assert_eq!(cell(&html, "config:seed"), "7");
    assert_eq!(cell(&html, "config:model"), "/m/smollm2 &lt;q4&gt;.gguf");
    assert!(html.contains(
        "<pre># resolved config\nmodel = &quot;/m/smollm2 &lt;q4&gt;.gguf&quot;\nseed = 7\n"
    ));

    // Plots: one per group with data; entropy (no actor/entropy key) is skipped.
    let shown = images(&html);
    let expected: BTreeSet<String> = [
        "reward",
        "val_acc",
        "response_length",
        "optimizer",
        "timing",
        "barl",
    ]
    .iter()
    .map(|n| format!("plots/{n}.png"))
    .collect();
    assert_eq!(shown, expected);
    assert!(!dir.join("plots/entropy.png").exists());
    assert!(html.contains("entropy (actor/entropy)"), "{html}");
    for rel in &shown {
        let path = dir.join(rel);
        let img = image::open(&path)
            .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()))
            .to_rgb8();
        // One panel each here (e.g. no pg_clipfrac beside grad_norm): 500 x 420 px.
        assert_eq!(img.dimensions(), (500, 420), "{}", path.display());
        // Something was drawn: many pixels are neither white nor grey.
        let coloured = img
            .pixels()
            .filter(|p| {
                let [r, g, b] = p.0;
                r.max(g).max(b) - r.min(g).min(b) > 60
            })
            .count();
        assert!(
            coloured > 200,
            "{}: {coloured} coloured pixels",
            path.display()
        );
    }

    // Running again overwrites the report.
    let again = barl_report(&dir);
    assert!(again.status.success());
    assert_eq!(std::fs::read_to_string(&html_path).unwrap(), html);
}

#[test]
fn report_without_metrics_lines_has_no_plots() {
    let dir = scratch("report-empty");
    std::fs::write(dir.join("metrics.jsonl"), "\n{oops\n").unwrap();
    let out = barl_report(&dir);
    assert_ok(&out);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(cell(&html, "steps"), "0");
    assert!(images(&html).is_empty());
    assert!(
        html.contains("1 line, 1 unreadable line skipped (line 2)"),
        "{html}"
    );
    assert!(html.contains("No config.toml"));
}

#[test]
fn missing_run_folder_or_metrics_is_a_usage_error() {
    let dir = scratch("report-missing");
    let missing = dir.join("no-such-run");
    let out = barl_report(&missing);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // A folder without metrics.jsonl.
    let out = barl_report(&dir);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&dir.join("metrics.jsonl").display().to_string()),
        "{err}"
    );
    assert!(!dir.join("report.html").exists());
}
