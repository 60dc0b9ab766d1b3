//! `barl train`: RL fine-tuning of a language model on math problems with GRPO,
//! Progress or BARL. The loop is `barl_train::math::trainer::Trainer`; this
//! file parses the flags, picks the run folder, shows progress and writes the
//! report at the end.
//!
//! Run folder: `config.toml` (resolved), `metrics.jsonl` (one line per step),
//! `eval/step-NNNNNN/<set>.jsonl`, `checkpoints/step-NNNNNN/`, `plots/`,
//! `report.html`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use barl_train::math::config::{TrainConfig, PRESETS};
use barl_train::math::trainer::Trainer;
use clap::Args;

use crate::UsageError;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Run config: a TOML file, or preset:NAME (see --list-presets)
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Overrides of config keys, key=value; dotted keys reach into tables
    /// (model=PATH adv_estimator=barl train_data.arith.max_operand=20)
    pub overrides: Vec<String>,
    /// Continue the run in this folder from its newest complete checkpoint
    #[arg(long, conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// Run folder [runs/train-N, the first N not taken]
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// List the built-in presets and exit
    #[arg(long)]
    pub list_presets: bool,
    /// Hide the progress bar
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let usage = |m: String| anyhow::Error::from(UsageError(m));
    if args.list_presets {
        for p in PRESETS {
            println!("preset:{:<28} {}", p.name, p.about);
        }
        return Ok(());
    }
    let (config_path, run_dir) = match &args.resume {
        Some(dir) => {
            let path = dir.join("config.toml");
            if !path.is_file() {
                return Err(usage(format!(
                    "--resume {}: no config.toml there (not a run folder)",
                    dir.display()
                )));
            }
            (Some(path), dir.clone())
        }
        None => (
            args.config.clone(),
            args.out
                .clone()
                .unwrap_or_else(|| crate::runs::first_free("runs/train")),
        ),
    };
    let cfg = TrainConfig::load(config_path.as_deref(), &args.overrides)
        .map_err(|e| usage(e.to_string()))?;
    let mut trainer = Trainer::new(cfg, &run_dir, args.resume.is_some())?;
    trainer.step_delay = step_delay();
    trainer.stop = Some(stop_on_ctrl_c());
    for (c, why) in trainer.rejected_checkpoints() {
        eprintln!("warning: passing over checkpoint {}: {why}", c.display());
    }
    if let Some(c) = trainer.resumed_from() {
        eprintln!("resuming {} from {}", run_dir.display(), c.display());
    }
    let (truncated, skipped) = trainer.prompts_cut();
    if truncated + skipped > 0 {
        eprintln!(
            "train_data: {truncated} prompt(s) truncated and {skipped} skipped (longer than max_prompt_len = {})",
            trainer.config().max_prompt_len
        );
    }
    if trainer.finished() {
        eprintln!(
            "{} has already finished its {} steps; nothing to train (the report is rewritten)",
            run_dir.display(),
            trainer.state().step
        );
    }
    if trainer.evaluates_first() {
        eprintln!("evaluating the initial model on the held-out set(s)");
    }

    let bar = crate::progress::bar(args.quiet, "train", trainer.config().num_steps, "steps");
    bar.set_position(trainer.state().step as u64);
    let result = trainer.run(&mut |line| {
        for w in &line.warnings {
            bar.suspend(|| eprintln!("warning: step {}: {w}", line.step));
        }
        let Some(s) = &line.train else { return };
        bar.set_position(line.step as u64);
        bar.set_message(format!(
            "reward {:.3} | {:.1} s/step (gen {:.1}, probe {:.1}, update {:.1})",
            s.score_mean, s.step_seconds, s.gen_seconds, s.probe_seconds, s.update_seconds
        ));
    });
    bar.finish_and_clear();
    if let Err(barl_train::TrainError::Interrupted { step, checkpoint }) = &result {
        eprintln!(
            "stopped after step {step} of {}; saved {}; continue with: barl train --resume {}",
            trainer.config().num_steps,
            checkpoint.display(),
            run_dir.display()
        );
        std::process::exit(130);
    }
    result?;
    println!(
        "train: {} steps done; run folder {}",
        trainer.state().step,
        run_dir.display()
    );
    // The run is complete whatever happens to the report (`barl report` redoes it).
    match barl_report::report::write_report(&run_dir) {
        Ok(path) => println!("report: {}", path.display()),
        Err(e) => eprintln!("warning: the report could not be written: {e:#}"),
    }
    Ok(())
}

/// A flag the first Ctrl-C sets (the trainer then saves the step in flight and
/// stops); a second Ctrl-C abandons the step at once (exit code 130).
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let seen = flag.clone();
    let installed = ctrlc::set_handler(move || {
        if seen.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: abandoning the step in flight");
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupted: finishing and saving the current step (Ctrl-C again to abandon it)"
        );
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C will stop the run without saving: {e}");
    }
    flag
}

/// Test hook: `BARL_TRAIN_STEP_DELAY_MS` pauses every step before its update, so
/// a test can kill a run in the middle of a chosen step.
fn step_delay() -> Option<Duration> {
    let ms = std::env::var("BARL_TRAIN_STEP_DELAY_MS")
        .ok()?
        .parse()
        .ok()?;
    Some(Duration::from_millis(ms))
}
