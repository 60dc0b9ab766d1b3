//! The report of a training run (`barl report RUN_DIR`): one self-contained HTML page.
//!
//! Reads `RUN_DIR/metrics.jsonl` (one flat JSON object per RL step) and `RUN_DIR/config.toml`,
//! draws learning curves into `RUN_DIR/plots/` (PNG and SVG, via [`crate::plot`]) and writes
//! `RUN_DIR/report.html`: a summary table, the evaluation accuracies, the plots and the config.
//!
//! Metrics lines are read leniently, since a run may have been cut off mid-write: a line that is not
//! a JSON object is skipped and counted (the report names it); non-numeric values are ignored; a key
//! missing from a line is a missing measurement at that step. The x value of a line is its `step`
//! (or the previous line's step + 1 when it has none); when a resumed run repeats a step, the later
//! line wins.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use barl_train::files::write_atomic;
use barl_train::math::metrics::keys;

use crate::plot::{plot_panels, Panel, Series};
use crate::ReportError;

/// Reward points averaged by the moving-average line of the reward plot.
const MOVING_AVERAGE_WINDOW: usize = 10;
/// The summary's "recent reward" is the mean over this many last steps.
const LAST_STEPS: usize = 5;
/// Config keys shown in the summary (searched at any depth of the TOML).
const CONFIG_KEYS: [&str; 8] = [
    "model",
    "adv_estimator",
    "n_samples_per_prompt",
    "rollout_batch_size",
    "learning_rate",
    "num_steps",
    "max_response_len",
    "seed",
];
/// Timing keys and their labels in the timing plot.
const TIMING_PARTS: [(&str, &str); 3] = [
    (keys::TIME_GEN, "gen"),
    (keys::TIME_PROBE, "probe"),
    (keys::TIME_UPDATE, "update"),
];
const REWARD: &str = keys::SCORE_MEAN;

/// Writes `run_dir/plots/*.{png,svg}` and `run_dir/report.html`; returns the HTML path.
///
/// A missing `run_dir` or `metrics.jsonl` is a [`ReportError::Input`] naming the path. A plot that fails
/// to draw is reported on the page instead of failing the whole report.
pub fn write_report(run_dir: &Path) -> Result<PathBuf, ReportError> {
    if !run_dir.is_dir() {
        let why = if run_dir.exists() {
            "is not a folder"
        } else {
            "does not exist"
        };
        return Err(ReportError::Input(format!(
            "run folder {} {why}",
            run_dir.display()
        )));
    }
    let metrics_path = run_dir.join("metrics.jsonl");
    if !metrics_path.is_file() {
        return Err(ReportError::Input(format!(
            "{} not found (is {} a run folder?)",
            metrics_path.display(),
            run_dir.display()
        )));
    }
    let bytes = std::fs::read(&metrics_path).map_err(|source| ReportError::Io {
        path: metrics_path.clone(),
        source,
    })?;
    let metrics = Metrics::parse(&bytes);

    let config_path = run_dir.join("config.toml");
    let config = match std::fs::read(&config_path) {
        Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(ReportError::Io {
                path: config_path,
                source,
            })
        }
    };

    let plots_dir = run_dir.join("plots");
    let mut plots = Vec::new();
    for spec in plot_specs(&metrics) {
        let outcome = if spec.panels.is_empty() {
            PlotOutcome::Skipped
        } else {
            match plot_panels(&spec.panels, &plots_dir.join(spec.name)) {
                Ok(_) => PlotOutcome::Drawn,
                Err(e) => {
                    tracing::warn!("report: {e}");
                    PlotOutcome::Failed(e.to_string())
                }
            }
        };
        plots.push((spec, outcome));
    }

    let name = run_dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| run_dir.display().to_string());
    let html = render_html(&name, run_dir, &metrics, config.as_deref(), &plots);
    let html_path = run_dir.join("report.html");
    write_atomic(&html_path, html.as_bytes())?;
    Ok(html_path)
}

/// One parsed metrics line: its step and its numeric values.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    step: f64,
    values: BTreeMap<String, f64>,
}

/// The readable lines of `metrics.jsonl`, sorted by step, one row per step.
#[derive(Debug, Default)]
struct Metrics {
    rows: Vec<Row>,
    /// Non-blank lines read.
    lines: usize,
    /// 1-based numbers of the lines that were not a JSON object.
    bad_lines: Vec<usize>,
    /// Lines whose step an earlier line already had (the later line was kept).
    repeated_steps: usize,
}

impl Metrics {
    fn parse(bytes: &[u8]) -> Metrics {
        let mut m = Metrics::default();
        let mut rows: Vec<Row> = Vec::new();
        // Step (as bits, steps being finite) -> index in `rows`.
        let mut index: BTreeMap<u64, usize> = BTreeMap::new();
        // Step of the last readable line.
        let mut previous = 0.0;
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let Ok(line) = std::str::from_utf8(raw) else {
                m.lines += 1;
                m.bad_lines.push(i + 1);
                continue;
            };
            if line.trim().is_empty() {
                continue;
            }
            m.lines += 1;
            let Ok(serde_json::Value::Object(obj)) = serde_json::from_str(line) else {
                m.bad_lines.push(i + 1);
                continue;
            };
            let values: BTreeMap<String, f64> = obj
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64().filter(|x| x.is_finite())?)))
                .collect();
            let step = values.get("step").copied().unwrap_or(previous + 1.0);
            previous = step;
            let row = Row { step, values };
            // `+ 0.0` maps -0.0 to 0.0 so both find the same entry.
            match index.get(&(step + 0.0).to_bits()) {
                Some(&j) => {
                    rows[j] = row;
                    m.repeated_steps += 1;
                }
                None => {
                    index.insert((step + 0.0).to_bits(), rows.len());
                    rows.push(row);
                }
            }
        }
        rows.sort_by(|a, b| a.step.total_cmp(&b.step));
        m.rows = rows;
        m
    }

    /// `(step, value)` of every row that has `key`, in step order.
    fn points(&self, key: &str) -> Vec<(f64, f64)> {
        self.rows
            .iter()
            .filter_map(|r| Some((r.step, *r.values.get(key)?)))
            .collect()
    }

    fn keys(&self) -> BTreeSet<&str> {
        self.rows
            .iter()
            .flat_map(|r| r.values.keys().map(String::as_str))
            .collect()
    }

    /// Keys of evaluation accuracies: `val/<dataset>/acc`.
    fn val_acc_keys(&self) -> Vec<String> {
        self.keys()
            .into_iter()
            .filter(|k| keys::val_set(k).is_some())
            .map(str::to_string)
            .collect()
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Trailing moving average: `out[i] = mean(y[max(0, i + 1 - w) ..= i])`.
fn moving_average(y: &[f64], w: usize) -> Vec<f64> {
    (0..y.len())
        .map(|i| {
            let lo = (i + 1).saturating_sub(w);
            y[lo..=i].iter().sum::<f64>() / (i + 1 - lo) as f64
        })
        .collect()
}

/// A number for the page: up to 4 decimals without trailing zeros (`0.25`, `20.5`, `3`), or
/// scientific notation for very small or large magnitudes (`1e-6`).
fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if (1e-3..1e7).contains(&a) {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".into()
        } else {
            s.to_string()
        }
    } else {
        let s = format!("{v:.3e}");
        match s.split_once('e') {
            Some((mantissa, exp)) if mantissa.contains('.') => format!(
                "{}e{exp}",
                mantissa.trim_end_matches('0').trim_end_matches('.')
            ),
            _ => s,
        }
    }
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One plot file: `plots/<name>.png`, its panels (empty when none of `keys` is in the metrics).
struct PlotSpec {
    name: &'static str,
    caption: &'static str,
    keys: Vec<String>,
    panels: Vec<Panel>,
}

enum PlotOutcome {
    Drawn,
    Skipped,
    Failed(String),
}

fn series(label: &str, points: &[(f64, f64)]) -> Series {
    Series {
        label: label.to_string(),
        x: points.iter().map(|p| p.0).collect(),
        y_per_seed: vec![points.iter().map(|p| p.1).collect()],
    }
}

/// A panel with one line per `(key, label)` present in the metrics; `None` if none is.
fn panel(
    metrics: &Metrics,
    title: &str,
    y_label: &str,
    y_range: Option<(f64, f64)>,
    lines: &[(&str, &str)],
) -> Option<Panel> {
    let series: Vec<Series> = lines
        .iter()
        .map(|(key, label)| (label, metrics.points(key)))
        .filter(|(_, pts)| !pts.is_empty())
        .map(|(label, pts)| series(label, &pts))
        .collect();
    (!series.is_empty()).then(|| Panel {
        title: title.to_string(),
        x_label: "step".into(),
        y_label: y_label.to_string(),
        y_range,
        series,
    })
}

fn plot_specs(metrics: &Metrics) -> Vec<PlotSpec> {
    let reward = {
        let pts = metrics.points(REWARD);
        let panels = if pts.is_empty() {
            Vec::new()
        } else {
            let y: Vec<f64> = pts.iter().map(|p| p.1).collect();
            let ma: Vec<(f64, f64)> = pts
                .iter()
                .zip(moving_average(&y, MOVING_AVERAGE_WINDOW))
                .map(|(p, m)| (p.0, m))
                .collect();
            vec![Panel {
                title: "Training reward".into(),
                x_label: "step".into(),
                y_label: REWARD.into(),
                y_range: None,
                series: vec![
                    series("reward", &pts),
                    series(
                        &format!("moving average ({MOVING_AVERAGE_WINDOW} steps)"),
                        &ma,
                    ),
                ],
            }]
        };
        PlotSpec {
            name: "reward",
            caption:
                "Mean reward of the training rollouts per step, with a trailing moving average.",
            keys: vec![REWARD.into()],
            panels,
        }
    };

    let val_keys = metrics.val_acc_keys();
    let val_labels: Vec<(&str, &str)> = val_keys
        .iter()
        .map(|k| {
            let label = keys::val_set(k).unwrap_or(k);
            (k.as_str(), label)
        })
        .collect();
    let val = PlotSpec {
        name: "val_acc",
        caption: "Evaluation accuracy per dataset (val/<dataset>/acc) at the evaluation steps.",
        keys: vec!["val/*/acc".into()],
        panels: panel(
            metrics,
            "Evaluation accuracy",
            "accuracy",
            Some((0.0, 1.0)),
            &val_labels,
        )
        .into_iter()
        .collect(),
    };

    let length = PlotSpec {
        name: "response_length",
        caption:
            "Mean response length in tokens, and the share of responses cut at the length limit.",
        keys: vec![
            keys::RESPONSE_LENGTH_MEAN.into(),
            keys::RESPONSE_LENGTH_CLIP_RATIO.into(),
        ],
        panels: [
            panel(
                metrics,
                "Response length",
                "tokens",
                None,
                &[(keys::RESPONSE_LENGTH_MEAN, "mean")],
            ),
            panel(
                metrics,
                "Responses cut at the limit",
                "share",
                None,
                &[(keys::RESPONSE_LENGTH_CLIP_RATIO, "clip ratio")],
            ),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };

    let entropy = PlotSpec {
        name: "entropy",
        caption: "Mean token entropy of the policy on its own responses.",
        keys: vec![keys::ENTROPY.into()],
        panels: panel(
            metrics,
            "Policy entropy",
            "nats per token",
            None,
            &[(keys::ENTROPY, "entropy")],
        )
        .into_iter()
        .collect(),
    };

    let optimizer = PlotSpec {
        name: "optimizer",
        caption: "Gradient norm (before clipping) and the share of tokens whose ratio was clipped.",
        keys: vec![keys::GRAD_NORM.into(), keys::PG_CLIPFRAC.into()],
        panels: [
            panel(
                metrics,
                "Gradient norm",
                keys::GRAD_NORM,
                None,
                &[(keys::GRAD_NORM, "grad norm")],
            ),
            panel(
                metrics,
                "Clipped fraction",
                keys::PG_CLIPFRAC,
                None,
                &[(keys::PG_CLIPFRAC, "clip fraction")],
            ),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };

    let timing = PlotSpec {
        name: "timing",
        caption: "Seconds per step spent generating, probing (BARL) and updating the policy.",
        keys: TIMING_PARTS.iter().map(|(k, _)| k.to_string()).collect(),
        panels: panel(metrics, "Time per step", "seconds", None, &TIMING_PARTS)
            .into_iter()
            .collect(),
    };

    let barl = PlotSpec {
        name: "barl",
        caption: "BARL: mean Bayes-adaptive value and mean number of plausible hypotheses.",
        keys: vec![
            keys::BAYES_VALUE_MEAN.into(),
            keys::NUM_HYPOTHESES_MEAN.into(),
        ],
        panels: [
            panel(
                metrics,
                "Bayes-adaptive value",
                keys::BAYES_VALUE_MEAN,
                None,
                &[(keys::BAYES_VALUE_MEAN, "mean")],
            ),
            panel(
                metrics,
                "Plausible hypotheses",
                keys::NUM_HYPOTHESES_MEAN,
                None,
                &[(keys::NUM_HYPOTHESES_MEAN, "mean")],
            ),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };

    vec![reward, val, length, entropy, optimizer, timing, barl]
}

/// `(dotted path, value)` of the first key named `name` in a depth-first walk of the table.
fn find_config_key(table: &toml::Table, name: &str, prefix: &str) -> Option<(String, String)> {
    if let Some(v) = table.get(name) {
        let shown = match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return Some((format!("{prefix}{name}"), shown));
    }
    table.iter().find_map(|(k, v)| match v {
        toml::Value::Table(t) => find_config_key(t, name, &format!("{prefix}{k}.")),
        _ => None,
    })
}

const STYLE: &str =
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:0.5em 0}\
th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:left}\
th{background:#f4f4f4;font-weight:normal}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:1.5em 0}img{max-width:100%;border:1px solid #eee}\
pre{background:#f7f7f7;padding:1em;overflow-x:auto}.note{color:#666}";

/// A summary row: `<tr data-key=KEY><th>LABEL</th><td class="num">VALUE</td></tr>`.
fn summary_row(out: &mut String, key: &str, label: &str, value: &str) {
    let _ = writeln!(
        out,
        "<tr data-key=\"{}\"><th>{}</th><td class=\"num\">{}</td></tr>",
        escape(key),
        escape(label),
        escape(value)
    );
}

fn render_html(
    name: &str,
    run_dir: &Path,
    metrics: &Metrics,
    config: Option<&str>,
    plots: &[(PlotSpec, PlotOutcome)],
) -> String {
    let mut h = String::new();
    let title = format!("barl run: {name}");
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p class=\"note\">{}</p>",
        escape(&title),
        escape(&title),
        escape(&run_dir.display().to_string())
    );

    // Summary.
    h.push_str("<h2>Summary</h2>\n<table>\n");
    let steps = metrics.rows.len();
    summary_row(&mut h, "steps", "Steps logged", &steps.to_string());
    if let Some(last) = metrics.rows.last() {
        summary_row(&mut h, "last_step", "Last step", &fmt_num(last.step));
    }
    let reward = metrics.points(REWARD);
    if let Some(&(step, value)) = reward.last() {
        summary_row(
            &mut h,
            "reward_final",
            &format!("Final reward ({REWARD}, step {})", fmt_num(step)),
            &fmt_num(value),
        );
        let tail: Vec<f64> = reward.iter().rev().take(LAST_STEPS).map(|p| p.1).collect();
        if let Some(m) = mean(&tail) {
            summary_row(
                &mut h,
                "reward_last_mean",
                &format!("Mean reward over the last {} steps", tail.len()),
                &fmt_num(m),
            );
        }
        // First of the maxima, so ties report the earliest step.
        let best = reward
            .iter()
            .fold(None, |acc: Option<(f64, f64)>, &(s, v)| match acc {
                Some((_, bv)) if bv >= v => acc,
                _ => Some((s, v)),
            });
        if let Some((s, v)) = best {
            summary_row(
                &mut h,
                "reward_best",
                &format!("Best reward (step {})", fmt_num(s)),
                &fmt_num(v),
            );
        }
    }
    for key in [
        keys::TIME_GEN,
        keys::TIME_PROBE,
        keys::TIME_UPDATE,
        keys::TIME_STEP,
        keys::THROUGHPUT,
    ] {
        let values: Vec<f64> = metrics.points(key).iter().map(|p| p.1).collect();
        if let Some(m) = mean(&values) {
            summary_row(
                &mut h,
                &format!("mean:{key}"),
                &format!("Mean {key} ({} steps)", values.len()),
                &fmt_num(m),
            );
        }
    }
    let step_times: Vec<f64> = metrics
        .points(keys::TIME_STEP)
        .iter()
        .map(|p| p.1)
        .collect();
    if !step_times.is_empty() {
        summary_row(
            &mut h,
            "total:timing_s/step",
            "Total step time (s)",
            &fmt_num(step_times.iter().sum()),
        );
    }
    h.push_str("</table>\n");

    // metrics.jsonl health.
    let mut note = format!(
        "metrics.jsonl: {} line{}, {} unreadable line{} skipped",
        metrics.lines,
        if metrics.lines == 1 { "" } else { "s" },
        metrics.bad_lines.len(),
        if metrics.bad_lines.len() == 1 {
            ""
        } else {
            "s"
        }
    );
    if !metrics.bad_lines.is_empty() {
        const SHOWN: usize = 20;
        let listed: Vec<String> = metrics
            .bad_lines
            .iter()
            .take(SHOWN)
            .map(|n| n.to_string())
            .collect();
        let more = if metrics.bad_lines.len() > SHOWN {
            ", ..."
        } else {
            ""
        };
        let _ = write!(note, " (line {}{more})", listed.join(", "));
    }
    if metrics.repeated_steps > 0 {
        let _ = write!(
            note,
            "; {} line(s) repeated an earlier step and replaced it",
            metrics.repeated_steps
        );
    }
    let _ = writeln!(
        h,
        "<p class=\"note\" id=\"metrics-lines\" data-bad-lines=\"{}\">{}.</p>",
        metrics.bad_lines.len(),
        escape(&note)
    );

    // Evaluations.
    let val_keys = metrics.val_acc_keys();
    if !val_keys.is_empty() {
        h.push_str(
            "<h2>Evaluation</h2>\n<table>\n<tr><th>metric</th><th>first step</th><th>first</th>\
             <th>last step</th><th>last</th><th>best</th></tr>\n",
        );
        for key in &val_keys {
            let pts = metrics.points(key);
            let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
                continue;
            };
            let best = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            let _ = writeln!(
                h,
                "<tr data-key=\"{k}\"><th>{k}</th><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                fmt_num(first.0),
                fmt_num(first.1),
                fmt_num(last.0),
                fmt_num(last.1),
                fmt_num(best),
                k = escape(key)
            );
        }
        h.push_str("</table>\n");
    }

    // Config keys.
    let table = config.map(|text| text.parse::<toml::Table>());
    if let Some(Ok(table)) = &table {
        let found: Vec<(String, String)> = CONFIG_KEYS
            .iter()
            .filter_map(|k| find_config_key(table, k, ""))
            .collect();
        if !found.is_empty() {
            h.push_str("<h2>Settings</h2>\n<table>\n");
            for (path, value) in found {
                let _ = writeln!(
                    h,
                    "<tr data-key=\"config:{p}\"><th>{p}</th><td class=\"text\">{}</td></tr>",
                    escape(&value),
                    p = escape(&path)
                );
            }
            h.push_str("</table>\n");
        }
    }

    // Plots.
    h.push_str("<h2>Plots</h2>\n");
    let mut skipped = Vec::new();
    for (spec, outcome) in plots {
        match outcome {
            PlotOutcome::Drawn => {
                let _ = writeln!(
                    h,
                    "<figure><img src=\"plots/{n}.png\" alt=\"{n}\"><figcaption>{}</figcaption></figure>",
                    escape(spec.caption),
                    n = spec.name
                );
            }
            PlotOutcome::Failed(why) => {
                let _ = writeln!(
                    h,
                    "<p class=\"note\">Plot {} could not be drawn: {}</p>",
                    spec.name,
                    escape(why)
                );
            }
            PlotOutcome::Skipped => {
                skipped.push(format!("{} ({})", spec.name, spec.keys.join(", ")))
            }
        }
    }
    if !skipped.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"note\">Not plotted, no data: {}.</p>",
            escape(&skipped.join("; "))
        );
    }

    // Config verbatim.
    h.push_str("<h2>config.toml</h2>\n");
    match (config, &table) {
        (None, _) => h.push_str("<p class=\"note\">No config.toml in the run folder.</p>\n"),
        (Some(text), parsed) => {
            if let Some(Err(e)) = parsed {
                let _ = writeln!(
                    h,
                    "<p class=\"note\">config.toml does not parse as TOML: {}</p>",
                    escape(&e.to_string())
                );
            }
            let _ = writeln!(h, "<pre>{}</pre>", escape(text));
        }
    }
    h.push_str("</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests;
