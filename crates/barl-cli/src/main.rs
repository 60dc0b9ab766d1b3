//! `barl`: Bayes-Adaptive RL for language-model reasoning.
//!
//! The binary only parses flags and wires the library crates together.

mod analyze;
mod bench;
mod convert;
mod data;
mod eval;
mod generate;
mod grade;
mod merge;
mod progress;
mod report;
mod runs;
mod synthetic;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Bayes-Adaptive RL (BARL) for LLM reasoning, and its baselines.
///
/// Run without a subcommand to reproduce the paper's synthetic experiment
/// (the same as `barl synthetic`).
#[derive(Parser, Debug)]
#[command(name = "barl", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Markovian RL vs BARL on the repeat-a-symbol task (the paper's didactic
    /// experiment): trains each method over the given seeds, evaluates on the
    /// training prompts and on an unseen test prompt, prints a summary table and
    /// writes a run folder (config.toml, metrics.jsonl, summary.json, plots).
    Synthetic(Box<synthetic::SyntheticArgs>),
    /// Completions from a model (GGUF file or Hugging Face folder): one
    /// `--prompt`, or a JSONL file of prompts; `--chat` applies the model's chat
    /// template. What to run first to see that a model loaded right.
    Generate(Box<generate::GenerateArgs>),
    /// Write any model barl loads (GGUF, quantised or not, or a Hugging Face
    /// folder) as a Hugging Face folder that transformers and vLLM load
    /// (`barl convert IN OUT [--dtype bf16]`).
    Convert(convert::ConvertArgs),
    /// Merge a LoRA adapter (PEFT folder; a LoRA run's checkpoints/step-N/adapter)
    /// into its base model and write a Hugging Face folder
    /// (`barl merge ADAPTER --base MODEL OUT`).
    Merge(merge::MergeArgs),
    /// Evaluate a model on math benchmarks: n samples per problem, answers
    /// extracted and graded; accuracy, pass@k, maj@n, tokens, truncation and
    /// reflection statistics. Re-running on the same --out folder resumes.
    Eval(Box<eval::EvalArgs>),
    /// Grade a JSONL file of answers: each line has a gold answer and either a
    /// prediction or a full response (the answer is extracted first); writes each
    /// line back with `extracted`, `correct` and `reason`, and a summary to stderr.
    Grade(grade::GradeArgs),
    /// RL fine-tuning on math problems: GRPO, Progress, length-constrained GRPO
    /// (a preset) or BARL. One TOML config (`--config run.toml` or
    /// `--config preset:NAME`) plus key=value overrides; writes a run folder with
    /// metrics.jsonl, checkpoints (`--resume RUN_DIR` continues), held-out
    /// evaluations and report.html.
    Train(Box<train::TrainArgs>),
    /// Speed of the LLM engine on this machine (`barl bench engine --model PATH`).
    Bench(bench::BenchArgs),
    /// Tables from `barl eval` output files: reflection phrases, Bayesian value
    /// along responses, token efficiency (`barl analyze reflections|value|efficiency`).
    Analyze(analyze::AnalyzeArgs),
    /// One HTML page summarising a training run folder (`barl report RUN_DIR`):
    /// summary table, learning-curve plots (written to RUN_DIR/plots) and the
    /// config; prints the path of RUN_DIR/report.html.
    Report(report::ReportArgs),
    /// The named benchmarks and training sets: `barl data list`, `barl data
    /// verify`, `barl data download NAME|all [--to DIR] [--endpoint URL]`.
    Data(data::DataArgs),
}

/// A user error: printed as one line, exit code 2 (as is a
/// [`barl_train::TrainError`] that [`is_usage`](barl_train::TrainError::is_usage)).
#[derive(Debug)]
pub struct UsageError(pub String);

fn main() -> ExitCode {
    let user_threads = std::env::var_os("RAYON_NUM_THREADS").is_some();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // clap's first line names the option and the problem; the rest is a hint.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("{first}");
            return ExitCode::from(2);
        }
        Err(e) => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // The synthetic policy is tiny: candle's threaded matmul only costs time
    // there, so runs go in parallel instead (see docs/architecture.md). The LLM
    // commands keep rayon's default (all cores). Set before any thread exists;
    // a user's own setting wins.
    let synthetic = matches!(cli.command, None | Some(Command::Synthetic(_)));
    if synthetic && !user_threads {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    if !synthetic {
        // Fewer page faults on the large short-lived buffers of LLM passes.
        barl_model::tune_allocator();
    }
    let result = match cli.command {
        Some(Command::Synthetic(args)) => synthetic::run(*args),
        Some(Command::Generate(args)) => generate::run(&args),
        Some(Command::Convert(args)) => convert::run(&args),
        Some(Command::Merge(args)) => merge::run(&args),
        Some(Command::Eval(args)) => eval::run(&args),
        Some(Command::Grade(args)) => grade::run(&args),
        Some(Command::Bench(args)) => bench::run(&args),
        Some(Command::Analyze(args)) => analyze::run(args),
        Some(Command::Report(args)) => report::run(&args),
        Some(Command::Train(args)) => train::run(&args),
        Some(Command::Data(args)) => data::run(&args),
        None => synthetic::run(synthetic::SyntheticArgs::default()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(UsageError(msg)) = e.downcast_ref::<UsageError>() {
                eprintln!("error: {msg}");
                return ExitCode::from(2);
            }
            eprintln!("error: {e:#}");
            let usage = e
                .downcast_ref::<barl_train::TrainError>()
                .is_some_and(barl_train::TrainError::is_usage)
                || e.downcast_ref::<barl_report::ReportError>()
                    .is_some_and(barl_report::ReportError::is_usage);
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
