//! `barl convert IN OUT`: any model barl loads, as a Hugging Face folder
//! that transformers and vLLM load ([`barl_model::convert`]).

use std::path::PathBuf;

use anyhow::Result;
use candle_core::DType;
use clap::{Args, ValueEnum};

use crate::UsageError;

/// The weight type of the written `model.safetensors`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum WeightType {
    F32,
    Bf16,
}

impl WeightType {
    /// The tensor type it names.
    pub fn dtype(self) -> DType {
        match self {
            WeightType::F32 => DType::F32,
            WeightType::Bf16 => DType::BF16,
        }
    }
}

/// Options of `barl convert`.
#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Model to read: a GGUF file (any quantisation barl reads) or a Hugging Face folder
    pub input: PathBuf,
    /// Hugging Face folder to write: config.json, model.safetensors, tokenizer.json,
    /// tokenizer_config.json (with the chat template), generation_config.json
    pub out: PathBuf,
    /// Weight type of model.safetensors
    #[arg(long, value_enum, default_value_t = WeightType::F32)]
    pub dtype: WeightType,
    /// Replace OUT if it exists
    #[arg(long)]
    pub force: bool,
}

/// Runs `barl convert`: writes the folder and prints one line saying what it holds.
pub fn run(args: &ConvertArgs) -> Result<()> {
    if args.out.exists() && !args.force {
        return Err(UsageError(format!(
            "{} exists; pass --force to replace it",
            args.out.display()
        ))
        .into());
    }
    let c = barl_model::convert(&args.input, &args.out, args.dtype.dtype())?;
    println!(
        "{}: {} tensors, {:.1}M parameters, {:?}, chat template: {}",
        c.out.display(),
        c.tensors,
        c.parameters as f64 / 1e6,
        args.dtype,
        if c.chat_template { "yes" } else { "none" }
    );
    Ok(())
}
