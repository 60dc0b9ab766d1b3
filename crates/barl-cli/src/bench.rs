//! `barl bench engine`: the LLM engine's speed on this machine. Sampling
//! throughput at several batch sizes, prefill throughput, one training step
//! (forward + backward + AdamW) with its peak memory, and the BARL probe path
//! (prefix scoring) against re-encoding, measured by
//! [`barl_train::math::bench`]; each figure is the median of `--runs`.

use std::path::PathBuf;

use anyhow::Result;
use barl_train::math::bench::{engine_bench, EngineBench};
use barl_train::math::engine::Engine;
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Subcommand, Debug)]
pub enum BenchWhat {
    /// Sampling tokens/s at several batch sizes, prefill tokens/s, a training
    /// step's time and peak memory, and prefix scoring vs re-encoding.
    Engine(EngineBenchArgs),
}

#[derive(Args, Debug)]
pub struct EngineBenchArgs {
    /// Model: a GGUF file or a Hugging Face folder (weights are run in f32)
    #[arg(long)]
    pub model: PathBuf,
    /// Repetitions of each measurement; the median is reported
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Batch sizes for sampling, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub batches: Vec<usize>,
    /// New tokens per sequence when sampling (no stop token, so all run to the end)
    #[arg(long, default_value_t = 128)]
    pub new_tokens: usize,
    /// Prompt length of the prefill measurement
    #[arg(long, default_value_t = 512)]
    pub prefill_len: usize,
    /// Sequences in the training step
    #[arg(long, default_value_t = 4)]
    pub train_batch: usize,
    /// Tokens per sequence in the training step
    #[arg(long, default_value_t = 256)]
    pub train_len: usize,
    /// Skip the training step
    #[arg(long)]
    pub no_train: bool,
    /// Hypotheses scored per step in the prefix-scoring comparison
    #[arg(long, default_value_t = 5)]
    pub hypotheses: usize,
    /// Steps (chunks) in the prefix-scoring comparison
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    /// Tokens per chunk in the prefix-scoring comparison
    #[arg(long, default_value_t = 128)]
    pub chunk: usize,
    /// Also write the results as JSON here
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Sample greedily (temperature 0) instead of at temperature 1
    #[arg(long)]
    pub greedy: bool,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    match &args.what {
        BenchWhat::Engine(a) => engine(a),
    }
}

fn engine(a: &EngineBenchArgs) -> Result<()> {
    let settings = EngineBench {
        runs: a.runs,
        batches: a.batches.clone(),
        new_tokens: a.new_tokens,
        prefill_len: a.prefill_len,
        train: !a.no_train,
        train_batch: a.train_batch,
        train_len: a.train_len,
        hypotheses: a.hypotheses,
        steps: a.steps,
        chunk: a.chunk,
        greedy: a.greedy,
    };
    settings.validate()?;
    let engine = Engine::load(&a.model)?;
    println!("model {}", a.model.display());
    let mut report = engine_bench(&engine, &settings, &mut |line| println!("{line}"))?;
    report["model"] = a.model.display().to_string().into();
    if let Some(p) = &a.json {
        crate::runs::write_atomic(p, serde_json::to_string_pretty(&report)?.as_bytes())?;
    }
    Ok(())
}
