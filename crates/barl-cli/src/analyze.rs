//! `barl analyze`: tables computed from `barl eval` output files.
//!
//! `barl analyze reflections FILE...` prints the reflection statistics
//! (`barl_math::reflect`) of each file side by side, one column per file, to
//! compare e.g. a base model with its GRPO- and BARL-trained versions.
//!
//! `barl analyze value --model PATH FILE...` probes each response with a model
//! and reports the Bayesian value `V(k)` along it ([`value`]).
//!
//! `barl analyze efficiency FILE...` tabulates (and plots) pass@k against the
//! total tokens generated for k = 1..n ([`efficiency`]).

mod efficiency;
mod value;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use barl_math::evalfile::{read_eval_file, EvalFile};
use barl_math::reflect::{ReflectionCounter, DEFAULT_PHRASES};
use barl_report::reflections::{render_table, FileColumn, ReflectionsReport};
use clap::{Args, Subcommand};

use crate::UsageError;

/// Options of `barl analyze`.
#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    #[command(subcommand)]
    pub command: AnalyzeCommand,
}

#[derive(Subcommand, Debug)]
pub enum AnalyzeCommand {
    /// Reflection-phrase statistics of eval output files, side by side: mean
    /// phrase count per response, share of responses with any, accuracy with
    /// vs without, and the share of each phrase.
    Reflections(ReflectionsArgs),
    /// Bayesian value V(k) along the responses of eval output files, probed with
    /// a model: mean V overall, at the start, near the end and by relative
    /// position, and the truth's probability, for correct and incorrect
    /// responses apart.
    Value(Box<value::ValueArgs>),
    /// Token efficiency: pass@k against total generated tokens for k = 1..n,
    /// as a table and optionally a plot (.svg or .png).
    Efficiency(efficiency::EfficiencyArgs),
}

/// Options of `barl analyze reflections`.
#[derive(Args, Debug)]
pub struct ReflectionsArgs {
    /// Eval output files (JSONL, one line per problem), one column each
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Phrases to count, comma-separated; case-insensitive, whole words
    /// [wait,let me check,alternatively,verify,mistake,double-check,re-check,let me reconsider]
    #[arg(long, value_delimiter = ',')]
    pub phrases: Option<Vec<String>>,
    /// Only records of this benchmark (e.g. gsm8k) [all records]
    #[arg(long)]
    pub benchmark: Option<String>,
    /// Print JSON instead of the table
    #[arg(long)]
    pub json: bool,
}

/// Runs `barl analyze`, printing to stdout.
pub fn run(args: AnalyzeArgs) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.command {
        AnalyzeCommand::Reflections(a) => reflections(&a, &mut out),
        AnalyzeCommand::Value(a) => value::value(&a, &mut out),
        AnalyzeCommand::Efficiency(a) => efficiency::efficiency(&a, &mut out),
    }
}

/// Reads an eval output file; a partial last line (an interrupted run) is
/// dropped with a note.
pub(crate) fn read_noting_partial(path: &std::path::Path) -> Result<EvalFile> {
    let parsed = read_eval_file(path)?;
    if parsed.partial_tail {
        eprintln!(
            "note: {}: ignored a partial last line (interrupted run)",
            path.display()
        );
    }
    Ok(parsed)
}

fn reflections(args: &ReflectionsArgs, out: &mut dyn Write) -> Result<()> {
    let counter = match &args.phrases {
        Some(list) => {
            let c = ReflectionCounter::new(list);
            if c.phrases().is_empty() {
                return Err(
                    UsageError("--phrases: no phrase with a letter or digit".into()).into(),
                );
            }
            c
        }
        None => ReflectionCounter::new(DEFAULT_PHRASES),
    };
    let mut files = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let parsed = read_noting_partial(path)?;
        let records: Vec<_> = parsed
            .records
            .iter()
            .filter(|r| args.benchmark.as_ref().is_none_or(|b| &r.benchmark == b))
            .collect();
        files.push(FileColumn::of(path, &records, &counter));
    }
    let report = ReflectionsReport {
        phrases: counter.phrases().to_vec(),
        benchmark: args.benchmark.clone(),
        files,
    };
    if args.json {
        let text = serde_json::to_string_pretty(&report).context("serialising the report")?;
        writeln!(out, "{text}")?;
    } else {
        out.write_all(render_table(&report).as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use barl_math::evalfile::{EvalRecord, EvalWriter};
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: AnalyzeCommand,
    }

    fn record(id: &str, bench: &str, rows: &[(&str, bool)]) -> EvalRecord {
        EvalRecord {
            id: id.into(),
            benchmark: bench.into(),
            prompt: "p".into(),
            gold: "1".into(),
            responses: rows.iter().map(|r| r.0.to_string()).collect(),
            extracted: rows.iter().map(|_| Some("1".to_string())).collect(),
            correct: rows.iter().map(|r| r.1).collect(),
            tokens: rows.iter().map(|_| 7).collect(),
            truncated: rows.iter().map(|_| false).collect(),
        }
    }

    fn fixture(name: &str, records: &[EvalRecord]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("barl-analyze-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let mut w = EvalWriter::create(&path).unwrap();
        for r in records {
            w.write(r).unwrap();
        }
        path
    }

    fn run_cli(argv: &[&str]) -> Result<String> {
        let cli = Cli::try_parse_from(argv)?;
        let AnalyzeCommand::Reflections(a) = cli.command else {
            panic!("not a reflections command");
        };
        let mut out = Vec::new();
        reflections(&a, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    #[test]
    fn table_side_by_side_by_hand() {
        // base: 4 responses, none reflects, 1 correct.
        let base = fixture(
            "base.jsonl",
            &[
                record("g/0", "gsm8k", &[("1", true), ("2", false)]),
                record("g/1", "gsm8k", &[("3", false), ("4", false)]),
            ],
        );
        // barl: "Wait" (1, correct), "wait... let me check" (2, correct),
        // none (wrong), "verify" (1, wrong).
        let barl = fixture(
            "barl.jsonl",
            &[
                record(
                    "g/0",
                    "gsm8k",
                    &[("Wait, 1", true), ("wait... let me check: 1", true)],
                ),
                record("g/1", "gsm8k", &[("2", false), ("verify: 3", false)]),
            ],
        );
        let text = run_cli(&[
            "x",
            "reflections",
            base.to_str().unwrap(),
            barl.to_str().unwrap(),
        ])
        .unwrap();
        let line = |label: &str| -> Vec<String> {
            let l = text
                .lines()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("no row {label}:\n{text}"));
            l[label.len()..]
                .split("  ")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        assert_eq!(line("responses"), ["4", "4"]);
        assert_eq!(line("accuracy "), ["25.0%", "50.0%"]);
        // barl: counts 1 + 2 + 0 + 1 = 4 over 4 responses -> 1.000.
        assert_eq!(line("mean phrase count"), ["0.000", "1.000"]);
        assert_eq!(line("share with any"), ["0.0%", "75.0%"]);
        // barl with: 2 correct of 3; without: 0 of 1.
        assert_eq!(line("accuracy with"), ["- (n=0)", "66.7% (n=3)"]);
        assert_eq!(line("accuracy without"), ["25.0% (n=4)", "0.0% (n=1)"]);
        assert_eq!(line("share \"wait\""), ["0.0%", "50.0%"]);
        assert!(text.lines().next().unwrap().contains("base.jsonl"));

        // JSON, custom phrases, benchmark filter that matches nothing.
        let json = run_cli(&[
            "x",
            "reflections",
            "--json",
            "--phrases",
            "verify,check",
            barl.to_str().unwrap(),
        ])
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["phrases"], serde_json::json!(["verify", "check"]));
        // "let me check" (1) and "verify" (1): 2 responses with any.
        assert_eq!(v["files"][0]["stats"]["n_with"], 2);
        let none = run_cli(&[
            "x",
            "reflections",
            "--benchmark",
            "math500",
            barl.to_str().unwrap(),
        ])
        .unwrap();
        assert!(none.contains("responses") && none.contains("benchmark: math500"));
    }

    #[test]
    fn bad_file_names_file_and_line() {
        let path = fixture("bad.jsonl", &[record("g/0", "gsm8k", &[("1", true)])]);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"not json\n");
        std::fs::write(&path, bytes).unwrap();
        let err = run_cli(&["x", "reflections", path.to_str().unwrap()]).unwrap_err();
        assert!(format!("{err:#}").contains("bad.jsonl:2:"), "{err:#}");
        let err = run_cli(&["x", "reflections", "/nonexistent/x.jsonl"]).unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/x.jsonl"),
            "{err:#}"
        );
        assert!(run_cli(&["x", "reflections"]).is_err());
    }
}
