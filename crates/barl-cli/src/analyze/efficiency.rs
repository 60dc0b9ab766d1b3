//! `barl analyze efficiency`: pass@k against the tokens spent to get it, for
//! k = 1..n, as a table (and a plot); the computation is
//! [`barl_report::efficiency`].

use std::io::Write;
use std::path::PathBuf;

use super::read_noting_partial;
use anyhow::{Context, Result};
use barl_report::efficiency::{
    default_labels, efficiency_curve, plot_efficiency, plot_kind, EfficiencyCurve,
};
use clap::Args;

use crate::UsageError;

/// Options of `barl analyze efficiency`.
#[derive(Args, Debug)]
pub struct EfficiencyArgs {
    /// Eval output files (JSONL, one line per problem), one curve each
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write a plot of pass@k against total tokens (.svg or .png)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Curve labels, comma-separated, one per file [file stem, or the parent
    /// folder's name when the stem is a benchmark name or not unique]
    #[arg(long, value_delimiter = ',')]
    pub labels: Option<Vec<String>>,
    /// Also write the table as JSON to this file
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs `barl analyze efficiency`.
pub fn efficiency(args: &EfficiencyArgs, out: &mut dyn Write) -> Result<()> {
    let labels = match &args.labels {
        Some(l) if l.len() != args.files.len() => {
            return Err(UsageError(format!(
                "--labels: {} label(s) for {} file(s)",
                l.len(),
                args.files.len()
            ))
            .into())
        }
        Some(l) => l.clone(),
        None => default_labels(&args.files),
    };
    if let Some(p) = &args.out {
        plot_kind(p)?;
    }
    let mut curves = Vec::with_capacity(args.files.len());
    for (path, label) in args.files.iter().zip(labels) {
        let parsed = read_noting_partial(path)?;
        let points = efficiency_curve(path, &parsed.records)?;
        let sizes = parsed.records.iter().map(|r| r.responses.len());
        let (n_min, n_max) = (sizes.clone().min().unwrap_or(0), sizes.max().unwrap_or(0));
        if n_min != n_max {
            eprintln!(
                "note: {}: problems have {n_min} to {n_max} responses; pass@k up to k = {n_min}",
                path.display()
            );
        }
        curves.push(EfficiencyCurve {
            file: path.display().to_string(),
            label,
            problems: parsed.records.len(),
            n_min,
            n_max,
            points,
        });
    }

    let file_w = curves
        .iter()
        .map(|c| c.file.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let label_w = curves
        .iter()
        .map(|c| c.label.len())
        .max()
        .unwrap_or(0)
        .max(5);
    writeln!(
        out,
        "{:file_w$}  {:label_w$}  {:>4}  {:>8}  {:>12}",
        "file", "label", "k", "pass@k", "tokens"
    )?;
    for c in &curves {
        for p in &c.points {
            writeln!(
                out,
                "{:file_w$}  {:label_w$}  {:>4}  {:>8.4}  {:>12.1}",
                c.file, c.label, p.k, p.pass_at_k, p.tokens
            )?;
        }
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "files": curves }))
            .context("serialising the table")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.out {
        plot_efficiency(&curves, path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
