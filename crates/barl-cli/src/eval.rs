//! `barl eval`: a model on math benchmarks. Samples `n` responses per problem,
//! extracts and grades the answers, and reports accuracy (mean@n), pass@k,
//! maj@n, tokens, truncation and reflection statistics.
//!
//! Output folder: `<benchmark>.jsonl` (one [`EvalRecord`] per problem, flushed
//! as it goes) and `metrics.json`. Re-running on the same folder resumes: the
//! problems already in a benchmark's file are not sampled again.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use barl_math::data::{load_benchmark_with, LoadOptions, Problem, BENCHMARKS};
use barl_math::evalfile::{compute_metrics, BenchmarkMetrics, EvalRecord, EvalWriter};
use barl_math::extract::{extract_answer, ExtractOptions};
use barl_math::grader::{grader_by_name, Grader};
use barl_math::prompt::{Prompt, PromptBuilder, PromptStyle};
use barl_math::reflect::ReflectionCounter;
use barl_model::{sample, FinishReason, SampleConfig};
use barl_train::math::config::TrainConfig;
use barl_train::math::data::{load_problems, source_name};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::engine::Engine;
use crate::UsageError;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model: a GGUF file or a Hugging Face folder
    #[arg(long)]
    pub model: PathBuf,
    /// Benchmarks, comma-separated: gsm8k, math500, aime24, aime25, amc23, minerva_math, olympiadbench, college_math (and the training sets gsm8k_train, math_train)
    /// [default: gsm8k, unless --from-config is given]
    #[arg(long, value_delimiter = ',')]
    pub benchmarks: Vec<String>,
    /// Folder holding benchmarks/ and train/ [$BARL_DATA_DIR]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Output folder; re-running on it resumes [runs/eval-N, the first N not taken]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also evaluate the held-out sets (`eval_data`) of a training config: a TOML file or preset:NAME
    #[arg(long)]
    pub from_config: Option<PathBuf>,
    /// Only the first N problems of each benchmark
    #[arg(long)]
    pub limit: Option<usize>,
    /// Samples per problem (pass@k is reported for k = 1..n)
    #[arg(long, default_value_t = 1)]
    pub n: usize,
    /// Sampling temperature; 0 is greedy (then --n must be 1)
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Nucleus sampling mass in (0, 1]
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Most new tokens per response; a response that reaches it counts as truncated
    #[arg(long, default_value_t = 1024)]
    pub max_new_tokens: usize,
    /// Sequences decoded together in one batch
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Answer checker: standard or reference
    #[arg(long, default_value = "standard")]
    pub grader: String,
    /// How the question is given: chat-user, chat-system or raw:TEMPLATE (with {question}); with --from-config, the config's (and its instruction)
    #[arg(long, default_value = "chat-user")]
    pub prompt_style: String,
    /// The answer-format instruction added to each question
    #[arg(long)]
    pub instruction: Option<String>,
    /// Reflection phrases, comma-separated [wait, let me check, alternatively, verify, mistake, ...]
    #[arg(long, value_delimiter = ',')]
    pub phrases: Option<Vec<String>>,
    /// Seed of the sampler
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Hide the progress bar
    #[arg(long)]
    pub quiet: bool,
}

/// One benchmark's line in metrics.json.
#[derive(Serialize)]
struct Report {
    #[serde(flatten)]
    metrics: BenchmarkMetrics,
    /// pass@k for k = 1..n (unbiased estimator, mean over problems).
    pass_at_k: Vec<f64>,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let usage = |m: String| anyhow::Error::from(UsageError(m));
    if args.n == 0 {
        return Err(usage("--n must be at least 1".into()));
    }
    if args.n > 1 && args.temperature == 0.0 {
        return Err(usage(
            "--n > 1 needs --temperature > 0 (greedy samples are identical)".into(),
        ));
    }
    let mut sampling = SampleConfig {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
        ..SampleConfig::default()
    };
    sampling
        .validate()
        .map_err(|e| usage(format!("sampling options: {e}")))?;
    if args.batch_size == 0 {
        return Err(usage("--batch-size must be at least 1".into()));
    }
    let benchmarks: Vec<String> = if args.benchmarks.is_empty() && args.from_config.is_none() {
        vec!["gsm8k".to_string()]
    } else {
        args.benchmarks.clone()
    };
    for b in &benchmarks {
        if !BENCHMARKS.contains(&b.as_str()) {
            return Err(usage(format!(
                "--benchmarks: unknown benchmark `{b}` (known: {})",
                BENCHMARKS.join(", ")
            )));
        }
    }
    let train_cfg = match &args.from_config {
        Some(path) => Some(
            TrainConfig::load(Some(path.as_path()), &[])
                .map_err(|e| usage(format!("--from-config: {e}")))?,
        ),
        None => None,
    };
    let grader = grader_by_name(&args.grader).map_err(|e| usage(format!("--grader: {e}")))?;
    // A training config's held-out sets are asked the way training asks.
    let (style_text, instruction) = match &train_cfg {
        Some(tc) => (
            tc.prompt_style.clone(),
            Some(tc.instruction.clone()).filter(|i| !i.is_empty()),
        ),
        None => (args.prompt_style.clone(), args.instruction.clone()),
    };
    let style: PromptStyle = style_text
        .parse()
        .map_err(|e| usage(format!("--prompt-style: {e}")))?;
    let mut builder = PromptBuilder::new(style);
    if let Some(i) = instruction {
        builder = builder.with_instruction(i);
    }
    let counter = match &args.phrases {
        Some(p) => ReflectionCounter::new(p),
        None => ReflectionCounter::default(),
    };
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => match std::env::var_os("BARL_DATA_DIR") {
            Some(d) => PathBuf::from(d),
            None if benchmarks.is_empty() => PathBuf::new(),
            None => {
                return Err(usage(
                    "--data-dir not given and BARL_DATA_DIR not set".into(),
                ))
            }
        },
    };
    let out = match &args.out {
        Some(o) => o.clone(),
        None => crate::runs::first_free("runs/eval"),
    };
    std::fs::create_dir_all(&out).map_err(|e| usage(format!("--out {}: {e}", out.display())))?;

    let engine = Engine::load(&args.model)?;
    sampling.stop_tokens = engine.stop_tokens();
    let mut all_records = Vec::new();
    let started = Instant::now();
    let shared = EvalSetup {
        n: args.n,
        sampling,
        batch_size: args.batch_size,
        grader: grader.as_ref(),
        builder: &builder,
        quiet: args.quiet,
    };
    let mut sets: Vec<(String, Vec<Problem>)> = Vec::new();
    for bench in &benchmarks {
        let loaded = load_benchmark_with(bench, &data_dir, &LoadOptions::default())?;
        sets.push((bench.clone(), loaded.problems));
    }
    if let Some(tc) = &train_cfg {
        for (i, spec) in tc.eval_data.iter().enumerate() {
            let problems = load_problems(spec, &data_dir, &format!("eval_data[{i}]"))?;
            sets.push((source_name(spec), problems));
        }
    }
    for (bench, mut problems) in sets {
        problems.retain(|p| p.has_gold());
        if let Some(limit) = args.limit {
            problems.truncate(limit);
        }
        let path = out.join(format!("{bench}.jsonl"));
        all_records.extend(eval_problems(&engine, &shared, &bench, &problems, &path)?);
    }
    let wall = started.elapsed().as_secs_f64();

    let g: &dyn Grader = grader.as_ref();
    let equal = |a: &str, b: &str| g.grade(a, b).correct;
    let metrics = compute_metrics(&all_records, &counter, &equal);
    let mut reports = Vec::new();
    for m in metrics {
        let pass_at_k = pass_at_k_curve(&m.counts, args.n)?;
        reports.push(Report {
            metrics: m,
            pass_at_k,
        });
    }
    let json = serde_json::json!({
        "model": args.model.display().to_string(),
        "n": args.n,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "max_new_tokens": args.max_new_tokens,
        "grader": args.grader,
        "wall_s": wall,
        "benchmarks": reports,
    });
    crate::runs::write_atomic(
        &out.join("metrics.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    print_table(&reports, args.n);
    println!("eval: {:.1} s; results in {}", wall, out.display());
    Ok(())
}

/// What every evaluated set shares.
pub struct EvalSetup<'a> {
    /// Samples per problem.
    pub n: usize,
    /// Sampling settings (stop tokens included).
    pub sampling: SampleConfig,
    /// Sequences per batch.
    pub batch_size: usize,
    pub grader: &'a dyn Grader,
    pub builder: &'a PromptBuilder,
    pub quiet: bool,
}

/// Evaluates `problems` (named `bench`), appending one record per problem to
/// `path` as it goes; problems already in `path` are not sampled again. Returns
/// all records of `bench` in the file.
pub fn eval_problems(
    engine: &Engine,
    setup: &EvalSetup,
    bench: &str,
    problems: &[Problem],
    path: &Path,
) -> Result<Vec<EvalRecord>> {
    let n = setup.n;
    let (mut writer, done) = EvalWriter::resume(path)?;
    let done_ids: HashSet<String> = done.iter().map(|r| r.id.clone()).collect();
    let mut records: Vec<EvalRecord> = done.into_iter().filter(|r| r.benchmark == bench).collect();
    // (position in the benchmark, problem): the position fixes the sampler streams.
    let todo: Vec<(usize, &Problem)> = problems
        .iter()
        .enumerate()
        .filter(|(_, p)| !done_ids.contains(&p.id))
        .collect();
    if !done_ids.is_empty() {
        eprintln!(
            "{bench}: resuming, {} problem(s) already in {}",
            done_ids.len(),
            path.display()
        );
    }
    let bar = progress(setup.quiet, todo.len(), bench);
    let (mut hits, mut seen) = count_correct(&records);
    // Whole problems per batch, so each record is written complete.
    let per_batch = (setup.batch_size / n).max(1);
    for chunk in todo.chunks(per_batch) {
        let mut prompts_text = Vec::new();
        let mut ids = Vec::new();
        for (_, p) in chunk {
            let (text, tokens) = prompt_ids(engine, setup.builder, &p.question)?;
            for _ in 0..n {
                ids.push(tokens.clone());
            }
            prompts_text.push(text);
        }
        // Sample s of the problem at position i draws from stream i * n + s,
        // so results depend neither on --batch-size nor on resuming (records
        // are written in order, so the unfinished problems are contiguous).
        let cfg = SampleConfig {
            first_stream: (chunk[0].0 * n) as u64,
            ..setup.sampling.clone()
        };
        let completions = sample(&engine.model, &ids, &cfg)
            .with_context(|| format!("sampling {bench} problem {}", chunk[0].1.id))?;
        for (j, (_, p)) in chunk.iter().enumerate() {
            let mine = &completions[j * n..(j + 1) * n];
            let mut rec = EvalRecord {
                id: p.id.clone(),
                benchmark: bench.to_string(),
                prompt: prompts_text[j].clone(),
                gold: p.gold.clone(),
                responses: Vec::new(),
                extracted: Vec::new(),
                correct: Vec::new(),
                tokens: Vec::new(),
                truncated: Vec::new(),
            };
            for c in mine {
                let text = engine.decode(&c.tokens)?;
                let answer = extract_answer(&text, &ExtractOptions::default());
                let ok = answer
                    .as_deref()
                    .map(|a| setup.grader.grade(a, &p.gold).correct)
                    .unwrap_or(false);
                rec.responses.push(text);
                rec.extracted.push(answer);
                rec.correct.push(ok);
                rec.tokens.push(c.tokens.len());
                rec.truncated.push(c.finish == FinishReason::Length);
                hits += ok as usize;
                seen += 1;
            }
            writer.write(&rec)?;
            records.push(rec);
        }
        bar.inc(chunk.len() as u64);
        bar.set_message(format!("acc {:.3}", hits as f64 / seen.max(1) as f64));
    }
    bar.finish_and_clear();
    Ok(records)
}

/// The prompt text of `question` (chat template applied for chat styles) and
/// its token ids.
pub fn prompt_ids(
    engine: &Engine,
    builder: &PromptBuilder,
    question: &str,
) -> Result<(String, Vec<u32>)> {
    let chat = matches!(
        builder.style,
        PromptStyle::ChatUser | PromptStyle::ChatSystem
    );
    let text = match builder.render(question) {
        Prompt::Chat(msgs) => {
            let msgs: Vec<(String, String)> =
                msgs.into_iter().map(|m| (m.role, m.content)).collect();
            engine.render_chat(&msgs)?
        }
        Prompt::Raw(t) => t,
    };
    let ids = engine.encode(&text, chat)?;
    Ok((text, ids))
}

/// Mean over problems of the unbiased pass@k, for k = 1..n.
fn pass_at_k_curve(counts: &[(usize, usize)], n: usize) -> Result<Vec<f64>> {
    let scored: Vec<_> = counts.iter().filter(|(m, _)| *m >= n).collect();
    let mut curve = Vec::with_capacity(n);
    for k in 1..=n {
        let mut sum = 0.0;
        for &&(m, c) in &scored {
            sum += barl_core::pass_at_k(m, c, k)?;
        }
        curve.push(if scored.is_empty() {
            0.0
        } else {
            sum / scored.len() as f64
        });
    }
    Ok(curve)
}

fn count_correct(records: &[EvalRecord]) -> (usize, usize) {
    records.iter().fold((0, 0), |(h, s), r| {
        let (n, c) = r.counts();
        (h + c, s + n)
    })
}

fn progress(quiet: bool, len: usize, bench: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {pos}/{len} problems, {msg}, {elapsed} (eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(bench.to_string());
    bar
}

fn print_table(reports: &[Report], n: usize) {
    println!(
        "{:<14} {:>8} {:>9} {:>8} {:>10} {:>11} {:>10} {:>11}",
        "benchmark", "problems", "acc", "maj@n", "pass@n", "mean tok", "trunc", "reflect/resp"
    );
    for r in reports {
        let m = &r.metrics;
        println!(
            "{:<14} {:>8} {:>9.3} {:>8.3} {:>10.3} {:>11.1} {:>10.3} {:>11.2}",
            m.benchmark,
            m.problems,
            m.accuracy,
            m.maj_at_n,
            r.pass_at_k.get(n - 1).copied().unwrap_or(0.0),
            m.mean_tokens,
            m.truncation_rate,
            m.reflection.mean_count
        );
    }
}
