//! Reflection-phrase statistics of evaluation files side by side (`barl
//! analyze reflections`): one column per file, one row per statistic of
//! [`barl_math::reflect`].

use std::path::Path;

use barl_math::evalfile::EvalRecord;
use barl_math::reflect::{ReflectionCounter, ReflectionStats};
use serde::Serialize;

/// One file's column.
#[derive(Debug, Serialize)]
pub struct FileColumn {
    pub file: String,
    pub problems: usize,
    /// Fraction of all responses judged correct.
    pub accuracy: Option<f64>,
    pub stats: ReflectionStats,
}

/// Every file's column, with the phrases counted and the benchmark kept.
#[derive(Debug, Serialize)]
pub struct ReflectionsReport {
    pub phrases: Vec<String>,
    pub benchmark: Option<String>,
    pub files: Vec<FileColumn>,
}

impl FileColumn {
    /// The column of `records` (read from `path`), phrases counted by `counter`.
    pub fn of(path: &Path, records: &[&EvalRecord], counter: &ReflectionCounter) -> Self {
        let pairs = records.iter().flat_map(|r| {
            r.responses
                .iter()
                .zip(&r.correct)
                .map(|(text, &ok)| (text.as_str(), ok))
        });
        let stats = counter.stats(pairs);
        let correct: usize = records.iter().map(|r| r.counts().1).sum();
        FileColumn {
            file: path.display().to_string(),
            problems: records.len(),
            accuracy: (stats.responses > 0).then(|| correct as f64 / stats.responses as f64),
            stats,
        }
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{:.1}%", 100.0 * v))
}

/// The text table: one row per statistic, one column per file.
pub fn render_table(report: &ReflectionsReport) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |label: &str, f: &dyn Fn(&FileColumn) -> String| {
        rows.push((label.to_string(), report.files.iter().map(f).collect()));
    };
    row("problems", &|c| c.problems.to_string());
    row("responses", &|c| c.stats.responses.to_string());
    row("accuracy", &|c| pct(c.accuracy));
    row("mean phrase count", &|c| {
        format!("{:.3}", c.stats.mean_count)
    });
    row("share with any", &|c| {
        pct((c.stats.responses > 0).then_some(c.stats.share_with_any))
    });
    row("accuracy with", &|c| {
        format!("{} (n={})", pct(c.stats.acc_with), c.stats.n_with)
    });
    row("accuracy without", &|c| {
        format!("{} (n={})", pct(c.stats.acc_without), c.stats.n_without)
    });
    for (i, phrase) in report.phrases.iter().enumerate() {
        let label = format!("share \"{phrase}\"");
        row(&label, &|c| {
            let p = &c.stats.per_phrase[i];
            pct((c.stats.responses > 0).then_some(p.share))
        });
    }

    let label_w = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = report
        .files
        .iter()
        .enumerate()
        .map(|(j, c)| {
            rows.iter()
                .map(|(_, cells)| cells[j].chars().count())
                .chain([c.file.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    if let Some(b) = &report.benchmark {
        text.push_str(&format!("benchmark: {b}\n"));
    }
    text.push_str(&format!("{:label_w$}", ""));
    for (c, w) in report.files.iter().zip(&widths) {
        text.push_str(&format!("  {:>w$}", c.file));
    }
    text.push('\n');
    for (label, cells) in &rows {
        text.push_str(&format!("{label:label_w$}"));
        for (cell, w) in cells.iter().zip(&widths) {
            text.push_str(&format!("  {cell:>w$}"));
        }
        text.push('\n');
    }
    text
}
