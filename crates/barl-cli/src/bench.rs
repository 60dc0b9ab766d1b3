//! `barl bench engine`: the LLM engine's speed on this machine. Sampling
//! throughput at several batch sizes, prefill throughput, one training step
//! (forward + backward + AdamW) with its peak memory, and the BARL probe path
//! (prefix scoring) against re-encoding, measured by
//! [`barl_train::math::bench`]; each figure is the median of `--runs`.

use std::path::PathBuf;

use anyhow::Result;
use barl_model::CausalLm;
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
    /// Time only the training step (no sampling, prefill or prefix scoring)
    #[arg(long, conflicts_with = "no_train")]
    pub train_only: bool,
    /// Train a fresh LoRA adapter of this rank (alpha = 2 x rank, all-linear)
    /// instead of all weights [0: all weights]
    #[arg(long, default_value_t = 0)]
    pub lora_rank: usize,
    /// With --lora-rank: sample from merged copies of the adapted weights
    /// (lora.merge_for_sampling) instead of applying the adapter on the fly
    #[arg(long, requires = "lora_rank")]
    pub merge_lora: bool,
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
        train_only: a.train_only,
    };
    settings.validate()?;
    let mut engine = Engine::load(&a.model)?;
    if a.lora_rank > 0 {
        let lora = barl_model::LoraConfig {
            rank: a.lora_rank,
            alpha: 2.0 * a.lora_rank as f64,
            dropout: 0.0,
            target_modules: vec!["all-linear".into()],
            use_rslora: false,
        };
        let adapter = barl_model::lora::init_adapter(
            engine.model.config(),
            &lora,
            0,
            &candle_core::Device::Cpu,
        )?;
        engine = engine.with_adapter(&lora, &adapter, 0)?;
        if a.merge_lora {
            engine.merge_for_inference()?;
        }
    }
    println!("model {}", a.model.display());
    let mut report = engine_bench(&engine, &settings, &mut |line| println!("{line}"))?;
    report["model"] = a.model.display().to_string().into();
    if let Some(p) = &a.json {
        crate::runs::write_atomic(p, serde_json::to_string_pretty(&report)?.as_bytes())?;
    }
    Ok(())
}
