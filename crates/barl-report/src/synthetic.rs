//! What a synthetic experiment leaves in its run folder besides the config:
//! `metrics.jsonl` lines, the success plots and the summary table printed at
//! the end.

use std::collections::BTreeMap;
use std::path::Path;

use barl_train::synthetic::{EvalMetrics, Method, MetricStats, RunResult, StepMetrics, Summary};

use crate::plot::{plot_panels, Panel, PlotError, Series};
use crate::ReportError;

/// One `metrics.jsonl` line per step of each run (training metrics), with the
/// evaluation metrics on the steps where the policy was evaluated (step 0
/// carries only those).
pub fn metrics_lines(runs: &[RunResult]) -> String {
    let mut out = String::new();
    for r in runs {
        let mut evals = r.evals.iter().peekable();
        for step in 0..=r.steps.len() {
            let mut obj = serde_json::Map::new();
            obj.insert("method".into(), r.method.name().into());
            obj.insert("seed".into(), r.seed.into());
            obj.insert("step".into(), step.into());
            if step > 0 {
                let m: &StepMetrics = &r.steps[step - 1];
                for (k, v) in [
                    ("critic/score/mean", Some(m.score_mean)),
                    ("critic/advantages/mean", Some(m.adv_mean)),
                    ("critic/advantages/max", Some(m.adv_max)),
                    ("critic/advantages/min", Some(m.adv_min)),
                    ("response_length/mean", Some(m.attempts_mean)),
                    ("actor/pg_loss", Some(m.pg_loss)),
                    ("actor/pg_clipfrac", Some(m.pg_clipfrac)),
                    ("actor/ppo_kl", Some(m.ppo_kl)),
                    ("actor/entropy", Some(m.entropy)),
                    ("actor/grad_norm", Some(m.grad_norm)),
                    ("barl/bayes_value/mean", m.bayes_value_mean),
                    ("barl/branch/count", Some(m.branch_count as f64)),
                    ("barl/branch/score", m.branch_score_mean),
                    ("timing_s/gen", Some(m.time_gen)),
                    ("timing_s/probe", Some(m.time_probe)),
                    ("timing_s/update", Some(m.time_update)),
                ] {
                    if let Some(v) = v {
                        obj.insert(k.into(), v.into());
                    }
                }
            }
            if let Some(e) = evals.next_if(|e| e.step == step) {
                for (k, v) in [
                    ("val/train/success", Some(e.train_success)),
                    ("val/train/success_greedy", Some(e.train_success_greedy)),
                    ("val/train/attempts", Some(e.train_attempts)),
                    ("val/test/success", e.test_success),
                    ("val/test/success_greedy", e.test_success_greedy),
                    ("val/test/attempts", e.test_attempts),
                    ("val/test/switch_rate", e.test_switch_rate),
                    (
                        "val/train/first_attempt_dependence",
                        e.first_attempt_dependence,
                    ),
                ] {
                    if let Some(v) = v {
                        obj.insert(k.into(), v.into());
                    }
                }
            }
            out.push_str(&serde_json::Value::Object(obj).to_string());
            out.push('\n');
        }
    }
    out
}

/// `<stem>.png` and `<stem>.svg`: sampled success on the training prompts and
/// on the unseen test prompt over steps, mean and std over seeds per method.
pub fn plot_runs(
    runs: &[RunResult],
    methods: &[Method],
    seeds: &[u64],
    stem: &Path,
) -> Result<(), ReportError> {
    let panel = |title: &str, pick: &dyn Fn(&EvalMetrics) -> Option<f64>| {
        let series = methods
            .iter()
            .filter_map(|&m| {
                let mine: Vec<&RunResult> = seeds
                    .iter()
                    .filter_map(|&s| runs.iter().find(|r| r.method == m && r.seed == s))
                    .collect();
                let x: Vec<f64> = mine.first()?.evals.iter().map(|e| e.step as f64).collect();
                let y_per_seed: Option<Vec<Vec<f64>>> = mine
                    .iter()
                    .map(|r| r.evals.iter().map(pick).collect::<Option<Vec<f64>>>())
                    .collect();
                Some(Series {
                    label: m.name().to_string(),
                    x,
                    y_per_seed: y_per_seed?,
                })
            })
            .collect::<Vec<_>>();
        Panel {
            title: title.to_string(),
            x_label: "step".into(),
            y_label: "success rate (sampled)".into(),
            y_range: Some((0.0, 1.0)),
            series,
        }
    };
    let mut panels = vec![panel("Train success", &|e| Some(e.train_success))];
    let test = panel("Test success (unseen symbol)", &|e| e.test_success);
    if !test.series.is_empty() {
        panels.push(test);
    }
    plot_panels(&panels, stem)
        .map_err(|e| PlotError(format!("plotting {}: {e}", stem.display())))?;
    Ok(())
}

/// The table printed at the end: sampled success rates, test greedy success,
/// attempts, switch rate and first-attempt prompt dependence, mean ± sample std
/// over seeds; then the step each method first reached the test target.
pub fn summary_table(summary: &Summary) -> String {
    let cell = |m: &BTreeMap<String, MetricStats>, k: &str| {
        m.get(k)
            .map_or("-".to_string(), |s| format!("{:.2} ± {:.2}", s.mean, s.std))
    };
    let cols = [
        ("train success", "train_success"),
        ("test success", "test_success"),
        ("test greedy", "test_success_greedy"),
        ("test attempts", "test_attempts"),
        ("test switch", "test_switch_rate"),
        ("1st-att. dep.", "first_attempt_dependence"),
    ];
    let mut t = format!("{:<12}", "method");
    for (title, _) in cols {
        t.push_str(&format!(" {title:>13}"));
    }
    t.push_str(&format!(
        " {:>12}\n",
        format!("step@{:.1}", summary.test_target)
    ));
    for m in Method::ALL {
        if let Some(ms) = summary.methods.get(m.name()) {
            t.push_str(&format!("{:<12}", m.name()));
            for (_, key) in cols {
                t.push_str(&format!(" {:>13}", cell(ms, key)));
            }
            let reach = summary
                .steps_to_test_target
                .get(m.name())
                .map_or("never".to_string(), |s| s.to_string());
            t.push_str(&format!(" {reach:>12}\n"));
        }
    }
    t
}
