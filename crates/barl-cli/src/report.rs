//! `barl report RUN_DIR`: the HTML page of a training run
//! ([`barl_report::report::write_report`]).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

/// Options of `barl report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Run folder written by `barl train` (holds metrics.jsonl and config.toml)
    pub run_dir: PathBuf,
}

/// Runs `barl report`: writes the report and prints the path of `report.html`.
pub fn run(args: &ReportArgs) -> Result<()> {
    let html = barl_report::report::write_report(&args.run_dir)?;
    println!("{}", html.display());
    Ok(())
}
