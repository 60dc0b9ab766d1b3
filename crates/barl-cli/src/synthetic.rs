//! `barl synthetic`: flags, run folder, progress, summary table and plots.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use barl_core::LossAggMode;
use barl_train::synthetic::task::hypotheses;
use barl_train::synthetic::{
    run_experiment, summarize, BarlBaseline, BranchWorld, Credence, Method, Prior, SyntheticConfig,
};
use barl_train::tomlconf::{from_toml_with, to_table};
use barl_train::TrainError;
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::runs::{first_free, write_atomic};
use crate::UsageError;
use barl_report::synthetic::{metrics_lines, plot_runs, summary_table};

/// Options of `barl synthetic`. The settings are the TOML keys of a run's
/// `config.toml` (`methods`, `seeds`, `run.*`), read as `barl train` reads
/// its config: the built-in defaults, then `--config`, then `KEY=VALUE`
/// overrides, then the flags below (shorthands for the common keys; each
/// shows its built-in default in brackets).
#[derive(Args, Debug, Default)]
pub struct SyntheticArgs {
    /// Overrides of config keys, key=value; dotted keys reach into tables
    /// (run.beta=10 run.task.alphabet_size=4 'seeds=[0,1,2]')
    overrides: Vec<String>,
    /// Methods to train, comma-separated: grpo (Markovian RL), barl (BARL over all
    /// V^L strings), barl-prior (BARL over the V repeated strings) [all three]
    #[arg(long, value_delimiter = ',')]
    methods: Option<Vec<String>>,
    /// Seeds, comma-separated; each seed fixes the initial weights and all sampling [0]
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Run folder to write (created; must not already hold a summary.json)
    /// [runs/synthetic-N, the first N not taken]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Start from the options in this TOML file (e.g. a run folder's config.toml);
    /// flags given on the command line override it
    #[arg(long)]
    config: Option<PathBuf>,
    /// Runs trained at the same time, one per thread [number of CPU cores]
    #[arg(long)]
    jobs: Option<usize>,
    /// Hide the progress bar
    #[arg(long)]
    quiet: bool,

    /// Alphabet size V [3]
    #[arg(long)]
    alphabet_size: Option<usize>,
    /// Symbols per attempt L [3]
    #[arg(long)]
    attempt_len: Option<usize>,
    /// Attempts per episode T [3]
    #[arg(long)]
    max_attempts: Option<usize>,
    /// Training prompt symbols, comma-separated [0,1]
    #[arg(long, value_delimiter = ',')]
    train_prompts: Option<Vec<u32>>,
    /// Test prompt symbols (never trained on), comma-separated; "none" for none [2]
    #[arg(long, value_delimiter = ',')]
    test_prompts: Option<Vec<String>>,

    /// RL steps per run [300]
    #[arg(long)]
    steps: Option<usize>,
    /// Rollouts per training prompt per step (the GRPO group size) [32]
    #[arg(long)]
    rollouts: Option<usize>,
    /// Sampling temperature of training rollouts [1.0]
    #[arg(long)]
    temperature: Option<f32>,
    /// AdamW learning rate [0.0003]
    #[arg(long)]
    lr: Option<f64>,
    /// AdamW betas, two comma-separated numbers [0.9,0.999]
    #[arg(long, value_delimiter = ',', num_args = 2)]
    adam_betas: Option<Vec<f64>>,
    /// AdamW decoupled weight decay [0]
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Clip the global gradient norm to this; 0 disables [1.0]
    #[arg(long)]
    grad_clip: Option<f64>,
    /// PPO clip range epsilon [0.2]
    #[arg(long)]
    clip_ratio: Option<f64>,
    /// Passes over each rollout batch [1]
    #[arg(long)]
    ppo_epochs: Option<usize>,
    /// Optimiser steps per pass over the rollout batch [1]
    #[arg(long)]
    mini_batches: Option<usize>,
    /// Loss aggregation: token-mean, seq-mean-token-mean or seq-mean-token-sum
    /// [seq-mean-token-mean]
    #[arg(long)]
    loss_agg_mode: Option<String>,
    /// Strength of BARL's belief update: L_i *= exp(-beta |r - r_i|) [1.0]
    #[arg(long)]
    beta: Option<f32>,
    /// BARL's credence c_i(k): policy (the current policy's probability that the
    /// next attempt is s_i), uniform (the training-data posterior p(M|D)) or
    /// initial (the same as policy, under the frozen initial policy) [policy]
    #[arg(long)]
    credence: Option<Credence>,
    /// Discount per attempt in BARL's Q_i: a match j - k attempts later counts
    /// gamma^(j-k); 1 counts later matches in full, 0 only the next attempt [1.0]
    #[arg(long)]
    q_discount: Option<f32>,
    /// Cost per attempt in BARL's Q_i (attempts the episode uses under the
    /// hypothesis) [0]
    #[arg(long)]
    attempt_cost: Option<f32>,
    /// What BARL's token returns are whitened against: batch (all tokens of the
    /// rollout batch, the reference) or prompt (the rollouts of the same prompt) [batch]
    #[arg(long)]
    barl_baseline: Option<BarlBaseline>,
    /// BARL only: per training prompt and step, continue this many successful
    /// rollouts in the world of a hypothesis they have not tried (the true
    /// answer's feedback turned into a failure); 0 trains on true rollouts alone [0]
    #[arg(long)]
    branches: Option<usize>,
    /// Where a branch's world comes from among the untried hypotheses: uniform,
    /// or belief (in proportion to the policy's credence before the attempt that
    /// succeeded) [uniform]
    #[arg(long)]
    branch_world: Option<BranchWorld>,
    /// Dr.GRPO: do not divide GRPO advantages by the group std
    #[arg(long)]
    dr_grpo: bool,
    /// Evaluate every this many steps [10]
    #[arg(long)]
    eval_every: Option<usize>,
    /// Sampled evaluation episodes per prompt [128]
    #[arg(long)]
    eval_episodes: Option<usize>,

    /// Policy width [64]
    #[arg(long)]
    d_model: Option<usize>,
    /// Policy transformer blocks [2]
    #[arg(long)]
    n_layers: Option<usize>,
    /// Policy attention heads; must divide --d-model [4]
    #[arg(long)]
    n_heads: Option<usize>,
    /// Policy MLP hidden width [128]
    #[arg(long)]
    d_ff: Option<usize>,
    /// Tie the policy's output head to the symbols' input embeddings (false: a
    /// separate output matrix, the earlier default) [true]
    #[arg(long)]
    tied_head: Option<bool>,
}

/// The run's `config.toml`: what to run and the full training configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RunFile {
    methods: Vec<Method>,
    seeds: Vec<u64>,
    run: SyntheticConfig,
}

impl Default for RunFile {
    fn default() -> Self {
        Self {
            methods: Method::ALL.to_vec(),
            seeds: vec![0],
            run: SyntheticConfig::default(),
        }
    }
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

impl SyntheticArgs {
    /// The resolved configuration: built-in defaults, then `--config`, then
    /// the `KEY=VALUE` overrides, then flags.
    fn resolve(&self) -> Result<RunFile> {
        let (text, origin) = match &self.config {
            Some(path) => (
                fs::read_to_string(path)
                    .map_err(|e| usage(format!("--config {}: {e}", path.display())))?,
                path.display().to_string(),
            ),
            None => (String::new(), "defaults".to_string()),
        };
        let schema = to_table(&RunFile::default());
        let mut file: RunFile = from_toml_with(&text, &origin, &self.overrides, &schema)
            .map_err(|e| usage(e.to_string()))?;
        if let Some(ms) = &self.methods {
            let mut methods = Vec::new();
            for m in ms {
                let m: Method = m
                    .trim()
                    .parse()
                    .map_err(|e| usage(format!("--methods: {e}")))?;
                if !methods.contains(&m) {
                    methods.push(m);
                }
            }
            file.methods = methods;
        }
        if file.methods.is_empty() {
            return Err(usage("--methods: name at least one method"));
        }
        if let Some(s) = &self.seeds {
            file.seeds = s.clone();
        }
        file.seeds.dedup();
        if file.seeds.is_empty() {
            return Err(usage("--seeds: name at least one seed"));
        }
        let c = &mut file.run;
        let set = |dst: &mut usize, v: Option<usize>| {
            if let Some(v) = v {
                *dst = v;
            }
        };
        set(&mut c.task.alphabet_size, self.alphabet_size);
        set(&mut c.task.attempt_len, self.attempt_len);
        set(&mut c.task.max_attempts, self.max_attempts);
        if let Some(p) = &self.train_prompts {
            c.task.train_prompts = p.clone();
        }
        if let Some(p) = &self.test_prompts {
            c.task.test_prompts = if p.len() == 1 && p[0] == "none" {
                vec![]
            } else {
                p.iter()
                    .map(|s| {
                        s.trim().parse::<u32>().map_err(|_| {
                            usage(format!("--test-prompts: '{s}' is not a symbol number"))
                        })
                    })
                    .collect::<Result<_>>()?
            };
        }
        set(&mut c.steps, self.steps);
        set(&mut c.n_samples_per_prompt, self.rollouts);
        set(&mut c.ppo_epochs, self.ppo_epochs);
        set(&mut c.mini_batches, self.mini_batches);
        set(&mut c.eval_every, self.eval_every);
        set(&mut c.eval_episodes, self.eval_episodes);
        set(&mut c.model.d_model, self.d_model);
        set(&mut c.model.n_layers, self.n_layers);
        set(&mut c.model.n_heads, self.n_heads);
        set(&mut c.model.d_ff, self.d_ff);
        if let Some(v) = self.temperature {
            c.temperature = v;
        }
        if let Some(v) = self.lr {
            c.optim.lr = v;
        }
        if let Some(b) = &self.adam_betas {
            c.optim.beta1 = b[0];
            c.optim.beta2 = b[1];
        }
        if let Some(v) = self.weight_decay {
            c.optim.weight_decay = v;
        }
        if let Some(v) = self.grad_clip {
            c.optim.grad_clip = v;
        }
        if let Some(v) = self.clip_ratio {
            c.clip_ratio = v;
        }
        if let Some(v) = &self.loss_agg_mode {
            c.loss_agg_mode = v
                .parse::<LossAggMode>()
                .map_err(|e| usage(format!("--loss-agg-mode: {e}")))?;
        }
        if let Some(v) = self.beta {
            c.beta = v;
        }
        if let Some(v) = self.credence {
            c.credence = v;
        }
        if let Some(v) = self.q_discount {
            c.q_discount = v;
        }
        if let Some(v) = self.attempt_cost {
            c.attempt_cost = v;
        }
        if let Some(v) = self.barl_baseline {
            c.barl_baseline = v;
        }
        if let Some(v) = self.branches {
            c.branches = v;
        }
        if let Some(v) = self.branch_world {
            c.branch_world = v;
        }
        if let Some(v) = self.tied_head {
            c.model.tied_head = v;
        }
        if self.dr_grpo {
            c.grpo_norm_by_std = false;
        }
        c.validate().map_err(|e| match e {
            TrainError::Task(t) => {
                usage(format!("invalid value for --{}: {}", t.option, t.message))
            }
            other => usage(other.to_string()),
        })?;
        if file.methods.contains(&Method::Barl) {
            hypotheses(&c.task, Prior::None).map_err(|t| {
                usage(format!(
                    "invalid value for --{}: {} (needed by method barl)",
                    t.option, t.message
                ))
            })?;
        }
        Ok(file)
    }
}

/// Creates the run folder and proves it writable before any training.
fn prepare_out(out: &Path) -> Result<()> {
    let fail =
        |e: std::io::Error| usage(format!("--out {}: cannot write there: {e}", out.display()));
    fs::create_dir_all(out).map_err(fail)?;
    if out.join("summary.json").exists() {
        return Err(usage(format!(
            "--out {}: already holds a finished run (summary.json); choose another folder",
            out.display()
        )));
    }
    let probe = out.join(".write-test");
    fs::write(&probe, b"").map_err(fail)?;
    fs::remove_file(&probe).map_err(fail)?;
    Ok(())
}

/// Runs the experiment.
pub fn run(args: SyntheticArgs) -> Result<()> {
    let file = args.resolve()?;
    let jobs = match args.jobs {
        Some(0) => return Err(usage("--jobs: must be at least 1")),
        Some(j) => j,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| first_free("runs/synthetic"));
    prepare_out(&out)?;
    let config_text = toml::to_string(&file).context("serialising the configuration")?;
    write_atomic(&out.join("config.toml"), config_text.as_bytes())?;

    let total = file.methods.len() * file.seeds.len() * file.run.steps;
    let bar = crate::progress::bar(args.quiet, "synthetic", total, "steps");
    let last = Mutex::new(String::new());
    let started = Instant::now();
    let runs = run_experiment(
        &file.run,
        &file.methods,
        &file.seeds,
        jobs,
        &|m, s, step| {
            bar.inc(1);
            if step.step % 10 == 0 {
                let mut l = last.lock().expect("progress lock");
                *l = format!(
                    "{m} seed {s}: step {} reward {:.2}",
                    step.step, step.score_mean
                );
                bar.set_message(l.clone());
            }
        },
    )?;
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();

    write_atomic(&out.join("metrics.jsonl"), metrics_lines(&runs).as_bytes())?;
    let plots = out.join("plots");
    fs::create_dir_all(&plots).with_context(|| format!("creating {}", plots.display()))?;
    plot_runs(&runs, &file.methods, &file.seeds, &plots.join("success"))?;
    let summary = summarize(&file.run, &runs);
    let json = serde_json::to_string_pretty(&summary).context("serialising the summary")?;
    write_atomic(&out.join("summary.json"), format!("{json}\n").as_bytes())?;

    println!(
        "synthetic: {} method(s) x {} seed(s) x {} steps in {elapsed:.1} s (sampled success at step {}, mean ± std over seeds)",
        file.methods.len(),
        file.seeds.len(),
        file.run.steps,
        file.run.steps
    );
    print!("{}", summary_table(&summary));
    println!("greedy episodes of the final policies (prompt: attempts, + rewarded):");
    for r in &runs {
        println!(
            "  {:<10} seed {:<3} {}",
            r.method.name(),
            r.seed,
            r.greedy_transcripts.join(" | ")
        );
    }
    println!("run folder: {}", out.display());
    Ok(())
}
