//! `barl eval`: a model on math benchmarks. Samples `n` responses per problem,
//! extracts and grades the answers, and reports accuracy (mean@n), pass@k,
//! maj@n, tokens, truncation and reflection statistics.
//!
//! Output folder: `<benchmark>.jsonl` (one [`EvalRecord`] per problem, flushed
//! as it goes) and `metrics.json`. Re-running on the same folder resumes: the
//! problems already in a benchmark's file are not sampled again.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use barl_math::data::{find_data_dir, Problem, BENCHMARKS};
use barl_math::evalfile::{compute_metrics, EvalRecord};
use barl_math::grader::{grader_with, GoldExtract, Grader, GraderOptions};
use barl_math::prompt::{PromptBuilder, PromptStyle};
use barl_math::reflect::ReflectionCounter;
use barl_model::SampleConfig;
use barl_report::eval_table::{render_table, BenchmarkReport};
use barl_train::math::config::{DataSpec, TrainConfig};
use barl_train::math::data::{load_problems, source_name};
use clap::Args;

use crate::UsageError;
use barl_train::math::engine::Engine;
use barl_train::math::eval::{eval_problems, EvalSetup};
use barl_train::math::eval_settings::{check_resume, model_identity, RowSettings};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model: a GGUF file or a Hugging Face folder
    #[arg(long)]
    pub model: PathBuf,
    /// A LoRA adapter (PEFT folder) applied to --model without merging
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Benchmarks, comma-separated: gsm8k, math500, aime24, aime25, amc23, minerva_math, olympiadbench, college_math (and the training sets gsm8k_train, math_train), or
    /// JSONL/parquet files read with --input-key and --label-key
    /// [default: gsm8k, unless --from-config is given]
    #[arg(long, value_delimiter = ',')]
    pub benchmarks: Vec<String>,
    /// Field of the question in a --benchmarks file (a dotted path reaches into objects; a chat message list gives its last user message)
    #[arg(long, default_value = "input")]
    pub input_key: String,
    /// Field of the gold answer in a --benchmarks file
    #[arg(long, default_value = "label")]
    pub label_key: String,
    /// Folder holding benchmarks/ and train/ [$BARL_DATA_DIR, else the checkout's
    /// data/, else ~/.cache/barl/data]
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
    /// Extract the gold answer like a response first: auto (when it holds a
    /// \boxed{}, a $..$ span or a whole solution), always or never
    #[arg(long, default_value = "auto")]
    pub gold_extract: GoldExtract,
    /// Let a response cut off at --max-new-tokens earn the last-number credit
    /// (default: it has no final answer, so a number that happens to come last
    /// does not count)
    #[arg(long)]
    pub credit_truncated: bool,
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
    /// Discard the records already in --out (made with other settings) instead of resuming
    #[arg(long)]
    pub overwrite: bool,
    /// Hide the progress bar
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let usage = |m: String| anyhow::Error::from(UsageError(m));
    if args.n == 0 {
        return Err(usage("--n must be at least 1".into()));
    }
    if args.limit == Some(0) {
        return Err(usage(
            "--limit must be at least 1 (0 would evaluate nothing)".into(),
        ));
    }
    if args.max_new_tokens == 0 {
        return Err(usage(
            "--max-new-tokens must be at least 1 (0 gives empty responses)".into(),
        ));
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
    // A name or a file, read the way `train_data` reads its `source`.
    let mut specs = Vec::new();
    for b in &benchmarks {
        if !BENCHMARKS.contains(&b.as_str()) && !Path::new(b).is_file() {
            return Err(usage(format!(
                "--benchmarks: `{b}` is neither a known benchmark ({}) nor a file",
                BENCHMARKS.join(", ")
            )));
        }
        specs.push(DataSpec {
            source: b.clone(),
            input_key: args.input_key.clone(),
            label_key: args.label_key.clone(),
            ..DataSpec::default()
        });
    }
    let train_cfg = match &args.from_config {
        Some(path) => Some(
            TrainConfig::load(Some(path.as_path()), &[])
                .map_err(|e| usage(format!("--from-config: {e}")))?,
        ),
        None => None,
    };
    let grader = grader_with(
        &args.grader,
        GraderOptions {
            gold: args.gold_extract,
            ..GraderOptions::default()
        },
    )
    .map_err(|e| usage(format!("--grader: {e}")))?;
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
    let data_dir = match find_data_dir(args.data_dir.as_deref()) {
        Ok(d) => d,
        Err(_) if !benchmarks.iter().any(|b| BENCHMARKS.contains(&b.as_str())) => PathBuf::new(),
        Err(e) => return Err(usage(e.to_string())),
    };
    let out = match &args.out {
        Some(o) => o.clone(),
        None => crate::runs::first_free("runs/eval"),
    };
    std::fs::create_dir_all(&out).map_err(|e| usage(format!("--out {}: {e}", out.display())))?;
    let settings = RowSettings {
        model: match &args.adapter {
            Some(a) => format!(
                "{} + adapter {}",
                model_identity(&args.model),
                model_identity(a)
            ),
            None => model_identity(&args.model),
        },
        n: args.n,
        temperature: args.temperature,
        top_p: args.top_p,
        max_new_tokens: args.max_new_tokens,
        seed: args.seed,
        grader: args.grader.clone(),
        prompt_style: style_text.clone(),
        instruction: builder.instruction.clone(),
        config_eval_data: train_cfg
            .as_ref()
            .map(|tc| format!("{:?}", tc.eval_data))
            .unwrap_or_default(),
        file_keys: if specs
            .iter()
            .all(|s| BENCHMARKS.contains(&s.source.as_str()))
        {
            String::new()
        } else {
            format!("{}/{}", args.input_key, args.label_key)
        },
        gold_extract: args.gold_extract,
        credit_truncated: args.credit_truncated,
    };
    check_resume(&out, &settings, args.overwrite)?;

    let engine = match &args.adapter {
        Some(a) => Engine::load_with_adapter(&args.model, a)?,
        None => Engine::load(&args.model)?,
    };
    sampling.stop_tokens = engine.stop_tokens();
    let mut all_records = Vec::new();
    let started = Instant::now();
    let shared = EvalSetup {
        n: args.n,
        sampling,
        batch_size: args.batch_size,
        grader: grader.as_ref(),
        builder: &builder,
        credit_truncated: args.credit_truncated,
    };
    let mut sets: Vec<(String, Vec<Problem>)> = Vec::new();
    let config_sets = train_cfg.iter().flat_map(|tc| tc.eval_data.iter());
    for (i, spec) in specs.iter().chain(config_sets).enumerate() {
        let what = match i.checked_sub(specs.len()) {
            None => format!("--benchmarks {}", spec.source),
            Some(j) => format!("eval_data[{j}]"),
        };
        let problems = load_problems(spec, &data_dir, &what)?;
        sets.push((source_name(spec), problems));
    }
    for (bench, mut problems) in sets {
        problems.retain(|p| p.has_gold());
        if let Some(limit) = args.limit {
            problems.truncate(limit);
        }
        let path = out.join(format!("{bench}.jsonl"));
        all_records.extend(eval_set(
            &engine, &shared, args.quiet, &bench, &problems, &path,
        )?);
    }
    let wall = started.elapsed().as_secs_f64();

    let g: &dyn Grader = grader.as_ref();
    let equal = |a: &str, b: &str| g.grade(a, b).correct;
    let metrics = compute_metrics(&all_records, &counter, &equal);
    let reports = metrics
        .into_iter()
        .map(|m| BenchmarkReport::new(m, args.n))
        .collect::<Result<Vec<_>, _>>()?;
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
    print!("{}", render_table(&reports));
    println!("eval: {:.1} s; results in {}", wall, out.display());
    Ok(())
}

/// Evaluates one set with a progress bar (see [`eval_problems`]).
fn eval_set(
    engine: &Engine,
    setup: &EvalSetup,
    quiet: bool,
    bench: &str,
    problems: &[Problem],
    path: &Path,
) -> Result<Vec<EvalRecord>> {
    let bar = crate::progress::bar(quiet, bench, problems.len(), "problems");
    let mut records = eval_problems(engine, setup, bench, problems, path, &mut |p| {
        if p.done == 0 && p.resumed > 0 {
            eprintln!(
                "{bench}: resuming, {} problem(s) already in {}",
                p.resumed,
                path.display()
            );
        }
        bar.set_length(p.todo as u64);
        bar.set_position(p.done as u64);
        bar.set_message(format!("acc {:.3}", p.accuracy));
    })?;
    bar.finish_and_clear();
    // Rows of problems outside this slice (a larger --limit before) are kept
    // in the file but not counted.
    let wanted: std::collections::HashSet<&str> = problems.iter().map(|p| p.id.as_str()).collect();
    records.retain(|r| wanted.contains(r.id.as_str()));
    Ok(records)
}
