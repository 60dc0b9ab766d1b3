//! `barl merge ADAPTER --base MODEL OUT`: a LoRA adapter (PEFT folder, as
//! `barl train` with `lora.rank > 0` writes in its checkpoints) merged into
//! its base model, written as a Hugging Face folder ([`barl_model::convert::merge`]).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::convert::WeightType;
use crate::UsageError;

/// Options of `barl merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The adapter: a folder with adapter_config.json and adapter_model.safetensors
    /// (RUN/checkpoints/step-N/adapter, or any PEFT LoRA folder)
    pub adapter: PathBuf,
    /// The base model the adapter was trained on: a GGUF file or a Hugging Face folder
    #[arg(long)]
    pub base: PathBuf,
    /// Hugging Face folder to write
    pub out: PathBuf,
    /// Weight type of model.safetensors
    #[arg(long, value_enum, default_value_t = WeightType::F32)]
    pub dtype: WeightType,
    /// Replace OUT if it exists
    #[arg(long)]
    pub force: bool,
}

/// Runs `barl merge` and prints one line saying what it wrote.
pub fn run(args: &MergeArgs) -> Result<()> {
    if args.out.exists() && !args.force {
        return Err(UsageError(format!(
            "{} exists; pass --force to replace it",
            args.out.display()
        ))
        .into());
    }
    let c = barl_model::convert::merge(&args.adapter, &args.base, &args.out, args.dtype.dtype())?;
    println!(
        "{}: {} merged into {}: {} tensors, {:.1}M parameters, {:?}",
        c.out.display(),
        args.adapter.display(),
        args.base.display(),
        c.tensors,
        c.parameters as f64 / 1e6,
        args.dtype,
    );
    Ok(())
}
