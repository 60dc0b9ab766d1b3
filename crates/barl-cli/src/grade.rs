//! `barl grade`: grade a JSONL file of (gold, prediction or response) pairs.
//!
//! Each input line is a JSON object with the gold answer and either an already
//! extracted answer or a full response (the answer is then extracted first). Each
//! output line is the input object plus `extracted`, `correct` and `reason`. A
//! summary goes to stderr: count, correct, accuracy and pairs per second.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use barl_math::extract::{ExtractOptions, Rule};
use barl_math::gradefile::{grade_lines, FileError, GradeSummary, LineKeys};
use barl_math::grader::{grader_with, GoldExtract, GraderOptions, TIMED_OUT};
use clap::Args;

use crate::UsageError;

/// Options of `barl grade`.
#[derive(Args, Debug, Clone)]
pub struct GradeArgs {
    /// Input JSONL file, or `-` for standard input
    pub input: PathBuf,
    /// Output JSONL file [standard output]
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Grader: standard (Qwen2.5-Math toolkit / Math-Verify conventions) or
    /// reference (Hendrycks MATH normalisation and exact match)
    #[arg(long, default_value = "standard")]
    pub grader: String,
    /// Extract the gold answer like a response first: auto (when it holds a
    /// \boxed{}, a $..$ span or a whole solution), always or never
    #[arg(long, default_value = "auto")]
    pub gold_extract: GoldExtract,
    /// Seconds a verdict may take; one that runs longer is "not equal, timed out"
    /// (counted in the summary)
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
    /// Field holding the gold answer (a string or a number)
    #[arg(long, default_value = "gold")]
    pub gold_key: String,
    /// Field holding an already extracted answer (used when the response field is absent)
    #[arg(long, default_value = "pred")]
    pub pred_key: String,
    /// Field holding a full model response; when present, the answer is extracted from it
    #[arg(long, default_value = "response")]
    pub response_key: String,
    /// Extraction rules to switch off, comma-separated: boxed, answer-is, hashes,
    /// minerva, latex, last-number
    #[arg(long, value_delimiter = ',')]
    pub no_extract: Vec<String>,
    /// Extraction rules to try first, in this order, comma-separated (the others
    /// follow in the default order: minerva, boxed, hashes, answer-is, latex,
    /// last-number); `--extract-first latex` prefers the last math span to a box
    #[arg(long, value_delimiter = ',')]
    pub extract_first: Vec<String>,
    /// Field holding an optional boolean: the response was cut off at the length
    /// limit (as `barl eval` writes `truncated`), so it gets no last-number credit
    #[arg(long, default_value = "truncated")]
    pub truncated_key: String,
    /// Give responses marked truncated the last-number credit too
    #[arg(long)]
    pub credit_truncated: bool,
    /// Stop at the first line that cannot be graded (default: write an error row
    /// for it and go on)
    #[arg(long)]
    pub strict: bool,
    /// Do not print the summary
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `barl grade`.
pub fn run(args: &GradeArgs) -> Result<()> {
    let start = Instant::now();
    let summary = grade_file(args)?;
    let seconds = start.elapsed().as_secs_f64();
    if !args.quiet {
        let accuracy = summary.correct as f64 / summary.count.max(1) as f64;
        let rate = summary.count as f64 / seconds.max(1e-9);
        eprintln!(
            "graded {} pairs with '{}': {} correct, accuracy {accuracy:.4}, {rate:.0} pairs/s",
            summary.count, args.grader, summary.correct
        );
        if summary.timed_out > 0 {
            eprintln!(
                "{} verdict(s) ran past --timeout {} s and count as not equal (reason \"{TIMED_OUT}\")",
                summary.timed_out, args.timeout
            );
        }
        if summary.errors > 0 {
            eprintln!(
                "{} line(s) could not be graded: their output rows hold `error` (--strict stops at the first)",
                summary.errors
            );
        }
    }
    Ok(())
}

fn usage(msg: String) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg))
}

fn extract_options(disabled: &[String], first: &[String]) -> Result<ExtractOptions> {
    let rule = |flag: &str, name: &str| {
        Rule::from_name(name.trim()).ok_or_else(|| {
            let names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
            usage(format!(
                "{flag}: unknown rule '{}' (expected {})",
                name.trim(),
                names.join(", ")
            ))
        })
    };
    let mut opts = ExtractOptions::default();
    for name in disabled {
        opts.disable(rule("--no-extract", name)?);
    }
    let first: Vec<Rule> = first
        .iter()
        .map(|n| rule("--extract-first", n))
        .collect::<Result<_>>()?;
    Ok(opts.with_priority(&first))
}

/// Grades every line of the input and writes the output; the summary is returned.
pub fn grade_file(args: &GradeArgs) -> Result<GradeSummary> {
    if !(args.timeout.is_finite() && args.timeout >= 0.0) {
        return Err(usage(format!(
            "--timeout: must be a number of seconds >= 0, got {}",
            args.timeout
        )));
    }
    let options = GraderOptions {
        gold: args.gold_extract,
        time_limit: Duration::from_secs_f64(args.timeout),
    };
    let grader = grader_with(&args.grader, options).map_err(|e| usage(format!("--grader: {e}")))?;
    let opts = extract_options(&args.no_extract, &args.extract_first)?;
    let name = args.input.display().to_string();
    let reader: Box<dyn Read> = if name == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(
            File::open(&args.input).map_err(|e| usage(format!("cannot open input {name}: {e}")))?,
        )
    };
    let writer: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            File::create(path).map_err(|e| usage(format!("--output {}: {e}", path.display())))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let mut out = BufWriter::new(writer);
    let keys = LineKeys {
        gold: args.gold_key.clone(),
        pred: args.pred_key.clone(),
        response: args.response_key.clone(),
        truncated: (!args.credit_truncated).then(|| args.truncated_key.clone()),
    };
    grade_lines(
        BufReader::new(reader),
        &name,
        &mut out,
        &keys,
        grader.as_ref(),
        &opts,
        args.strict,
    )
    .map_err(|e| match e {
        FileError::Line { .. } => usage(e.to_string()),
        other => anyhow::Error::new(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(input: PathBuf, output: PathBuf) -> GradeArgs {
        GradeArgs {
            input,
            output: Some(output),
            grader: "standard".into(),
            gold_extract: GoldExtract::Auto,
            timeout: 5.0,
            gold_key: "gold".into(),
            pred_key: "pred".into(),
            response_key: "response".into(),
            truncated_key: "truncated".into(),
            credit_truncated: false,
            no_extract: vec![],
            extract_first: vec![],
            strict: true,
            quiet: true,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("barl-grade-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    fn usage_message(err: anyhow::Error) -> String {
        match err.downcast_ref::<UsageError>() {
            Some(UsageError(msg)) => msg.clone(),
            None => panic!("not a usage error: {err:#}"),
        }
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let dir = scratch("utf8");
        let input = dir.join("bad.jsonl");
        let mut bytes = br#"{"gold": "1", "pred": "1"}"#.to_vec();
        bytes.extend_from_slice(b"\n{\"gold\": \"1\", \"pred\": \"\xff\xfe\"}\n");
        std::fs::write(&input, bytes).expect("write input");
        let err = grade_file(&args(input.clone(), dir.join("out.jsonl"))).unwrap_err();
        let msg = usage_message(err);
        assert!(
            msg.contains(&format!("{}:2", input.display())) && msg.contains("UTF-8"),
            "{msg}"
        );
    }

    #[test]
    fn bad_lines_name_file_line_and_key() {
        let dir = scratch("bad");
        let cases = [
            ("{\"gold\": \"1\"", "invalid JSON"),
            ("[1, 2]", "expected a JSON object"),
            ("{\"pred\": \"1\"}", "missing key 'gold'"),
            ("{\"gold\": \"1\"}", "missing key 'pred' (or 'response')"),
            ("{\"gold\": [1], \"pred\": \"1\"}", "key 'gold' must be"),
        ];
        for (k, (line, want)) in cases.iter().enumerate() {
            let input = dir.join(format!("case{k}.jsonl"));
            std::fs::write(
                &input,
                format!("{{\"gold\": \"1\", \"pred\": \"1\"}}\n{line}\n"),
            )
            .expect("write input");
            let msg =
                usage_message(grade_file(&args(input.clone(), dir.join("o.jsonl"))).unwrap_err());
            assert!(
                msg.starts_with(&format!("{}:2: ", input.display())),
                "{msg}"
            );
            assert!(msg.contains(want), "{msg} lacks {want}");
        }
        let mut a = args(dir.join("case0.jsonl"), dir.join("o.jsonl"));
        a.grader = "sympy".into();
        assert!(usage_message(grade_file(&a).unwrap_err()).contains("--grader"));
        let mut a = args(dir.join("missing.jsonl"), dir.join("o.jsonl"));
        assert!(usage_message(grade_file(&a).unwrap_err()).contains("missing.jsonl"));
        a.input = dir.join("case0.jsonl");
        a.no_extract = vec!["boxes".into()];
        assert!(usage_message(grade_file(&a).unwrap_err()).contains("--no-extract"));
    }

    #[test]
    fn timeouts_are_counted_and_gold_extraction_follows_the_flag() {
        let dir = scratch("timeout");
        let input = dir.join("in.jsonl");
        std::fs::write(
            &input,
            concat!(
                "{\"gold\": \"$\\\\frac{1}{2}$\", \"response\": \"so \\\\boxed{0.5}\"}\n",
                "{\"gold\": \"7\", \"pred\": \"7\"}\n",
            ),
        )
        .expect("write input");
        let mut a = args(input, dir.join("out.jsonl"));
        let s = grade_file(&a).expect("grades");
        assert_eq!((s.correct, s.timed_out), (2, 0));
        a.timeout = 0.0;
        let s = grade_file(&a).expect("grades");
        // Identical strings need no comparison; the other verdict times out.
        assert_eq!((s.correct, s.timed_out), (1, 1));
        let out = std::fs::read_to_string(dir.join("out.jsonl")).expect("output");
        assert!(out.contains("not equal, timed out"), "{out}");
        a.timeout = -1.0;
        assert!(usage_message(grade_file(&a).unwrap_err()).contains("--timeout"));
        a.timeout = 5.0;
        a.gold_extract = GoldExtract::Never;
        // `$\frac{1}{2}$` as written still loses its dollars in normalisation.
        assert_eq!(grade_file(&a).expect("grades").correct, 2);
    }

    #[test]
    fn disabled_extraction_rule() {
        let dir = scratch("noextract");
        let input = dir.join("in.jsonl");
        std::fs::write(
            &input,
            "{\"gold\": \"5\", \"response\": \"\\\\boxed{4} but 5\"}\n",
        )
        .expect("write input");
        let mut a = args(input, dir.join("out.jsonl"));
        assert_eq!(grade_file(&a).expect("grades").correct, 0);
        a.no_extract = vec!["boxed".into()];
        assert_eq!(grade_file(&a).expect("grades").correct, 1);
        // The same answer by changing the priority instead.
        a.no_extract = vec![];
        a.extract_first = vec!["last-number".into()];
        assert_eq!(grade_file(&a).expect("grades").correct, 1);
        a.extract_first = vec!["sympy".into()];
        let msg = usage_message(grade_file(&a).unwrap_err());
        assert!(
            msg.contains("--extract-first: unknown rule 'sympy'"),
            "{msg}"
        );
    }
}
