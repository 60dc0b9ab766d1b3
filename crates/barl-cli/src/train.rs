//! `barl train`: RL fine-tuning of a language model on math problems with GRPO,
//! Progress or BARL (`barl_train::math`), checkpoints that resume exactly,
//! held-out evaluation through `barl eval`'s code, and a report at the end.
//!
//! Run folder: `config.toml` (resolved), `metrics.jsonl` (one line per step),
//! `eval/step-NNNNNN/<set>.jsonl`, `checkpoints/step-NNNNNN/`, `plots/`,
//! `report.html`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use barl_math::data::Problem;
use barl_math::grader::grader_by_name;
use barl_math::prompt::{PromptBuilder, PromptStyle};
use barl_model::{CausalLm, SampleConfig};
use barl_train::math::checkpoint::{
    latest_checkpoint, load_optimizer, load_state, save_checkpoint, TrainerState,
};
use barl_train::math::config::{PromptOverflow, TrainConfig, PRESETS};
use barl_train::math::data::{load_problems, resolve_data_dir, source_name};
use barl_train::math::step::{
    advantages, clip_ratio, ppo_update, reference_logprobs, rollout, PromptItem,
};
use barl_train::optim::{AdamW, AdamWConfig};
use candle_core::Var;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Map, Value};

use crate::engine::Engine;
use crate::eval::{eval_problems, prompt_ids, EvalSetup};
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
        for (name, about) in PRESETS {
            println!("preset:{name:<28} {about}");
        }
        return Ok(());
    }
    let (cfg, run_dir, resuming) = match &args.resume {
        Some(dir) => {
            let path = dir.join("config.toml");
            if !path.is_file() {
                return Err(usage(format!(
                    "--resume {}: no config.toml there (not a run folder)",
                    dir.display()
                )));
            }
            let cfg = TrainConfig::load(Some(&path), &args.overrides)
                .map_err(|e| usage(e.to_string()))?;
            (cfg, dir.clone(), true)
        }
        None => {
            let cfg = TrainConfig::load(args.config.as_deref(), &args.overrides)
                .map_err(|e| usage(e.to_string()))?;
            let dir = args
                .out
                .clone()
                .unwrap_or_else(|| crate::runs::first_free("runs/train"));
            (cfg, dir, false)
        }
    };
    cfg.validate().map_err(|e| usage(e.to_string()))?;
    if !cfg.model.exists() {
        return Err(usage(format!(
            "model: {} does not exist",
            cfg.model.display()
        )));
    }
    let grader = grader_by_name(&cfg.grader).map_err(|e| usage(format!("grader: {e}")))?;
    let style: PromptStyle = cfg
        .prompt_style
        .parse()
        .map_err(|e| usage(format!("prompt_style: {e}")))?;
    let mut builder = PromptBuilder::new(style);
    if !cfg.instruction.is_empty() {
        builder = builder.with_instruction(cfg.instruction.clone());
    }
    let data_dir = resolve_data_dir(&cfg.data_dir);
    let train_problems = load_problems(&cfg.train_data, &data_dir, "train_data")?;
    let mut eval_sets = Vec::new();
    for (i, spec) in cfg.eval_data.iter().enumerate() {
        let problems = load_problems(spec, &data_dir, &format!("eval_data[{i}]"))?;
        eval_sets.push((source_name(spec), problems));
    }

    // The run folder and its config: a new run refuses a used folder, a
    // resumed one refuses a changed config.
    let ckpt = if resuming {
        latest_checkpoint(&run_dir)
    } else {
        None
    };
    let mut state = match &ckpt {
        Some(c) => {
            let st = load_state(c)?;
            if st.config_hash != cfg.hash() {
                return Err(usage(format!(
                    "--resume {}: the config differs from the one the checkpoint was made with \
                     (hash {} vs {}); drop the overrides or start a new run",
                    run_dir.display(),
                    cfg.hash(),
                    st.config_hash
                )));
            }
            st
        }
        None => TrainerState {
            step: 0,
            optimizer_step: 0,
            data_position: 0,
            next_sample_stream: 0,
            skipped_total: 0,
            skipped_in_a_row: 0,
            config_hash: cfg.hash(),
        },
    };
    if !resuming {
        if run_dir.join("metrics.jsonl").exists() {
            return Err(usage(format!(
                "--out {}: already holds a run; use --resume {} or another folder",
                run_dir.display(),
                run_dir.display()
            )));
        }
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| usage(format!("--out {}: {e}", run_dir.display())))?;
    }
    crate::runs::write_atomic(
        &run_dir.join("config.toml"),
        cfg.to_toml_string().as_bytes(),
    )?;

    let model_path = match &ckpt {
        Some(c) => c.join("model"),
        None => cfg.model.clone(),
    };
    let engine = Engine::load(&model_path)?;
    let reference = if cfg.kl_coef > 0.0 {
        Some(Engine::load(&cfg.model)?)
    } else {
        None
    };
    let stop_tokens = engine.stop_tokens();

    let (prompts, truncated, skipped) = encode_prompts(&engine, &builder, &train_problems, &cfg)?;
    if prompts.is_empty() {
        return Err(usage(format!(
            "train_data: all {} prompts are longer than max_prompt_len = {} (prompt_overflow = skip)",
            train_problems.len(),
            cfg.max_prompt_len
        )));
    }
    if truncated + skipped > 0 {
        eprintln!(
            "train_data: {truncated} prompt(s) truncated and {skipped} skipped (longer than max_prompt_len = {})",
            cfg.max_prompt_len
        );
    }

    let named: Vec<(String, Var)> = engine.model.named_vars().to_vec();
    let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
    let vars: Vec<Var> = named.iter().map(|(_, v)| v.clone()).collect();
    let mut opt = AdamW::new(
        vars.clone(),
        AdamWConfig {
            lr: cfg.learning_rate,
            beta1: cfg.adam_betas[0],
            beta2: cfg.adam_betas[1],
            eps: cfg.adam_eps,
            weight_decay: cfg.weight_decay,
            grad_clip: cfg.grad_clip,
        },
    )?;
    if let Some(c) = &ckpt {
        load_optimizer(c, &mut opt, &names, &state)?;
        eprintln!("resuming {} from {}", run_dir.display(), c.display());
    }

    let metrics_path = run_dir.join("metrics.jsonl");
    // Lines after the checkpoint are recomputed; without a checkpoint that
    // includes the initial evaluation (its records are reused from eval/).
    keep_metrics_up_to(&metrics_path, ckpt.as_ref().map(|_| state.step))?;
    let mut metrics = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .with_context(|| format!("opening {}", metrics_path.display()))?;

    let eval_setup = EvalSetup {
        n: 1,
        sampling: SampleConfig {
            stop_tokens: stop_tokens.clone(),
            ..SampleConfig::greedy(cfg.eval_max_new_tokens)
        },
        batch_size: 16,
        grader: grader.as_ref(),
        builder: &builder,
        quiet: true,
    };
    let evaluate = |step: usize| -> Result<Map<String, Value>> {
        let mut out = Map::new();
        for (name, problems) in &eval_sets {
            let dir = run_dir.join("eval").join(format!("step-{step:06}"));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let recs = eval_problems(
                &engine,
                &eval_setup,
                name,
                problems,
                &dir.join(format!("{name}.jsonl")),
            )?;
            let hits: usize = recs.iter().map(|r| r.counts().1).sum();
            let total: usize = recs.iter().map(|r| r.counts().0).sum();
            let acc = hits as f64 / total.max(1) as f64;
            out.insert(format!("val/{name}/acc"), json!(acc));
        }
        Ok(out)
    };

    if state.step == 0 && !eval_sets.is_empty() {
        eprintln!(
            "evaluating the initial model on {} held-out set(s)",
            eval_sets.len()
        );
        let mut line = Map::new();
        line.insert("step".into(), json!(0));
        line.extend(evaluate(0)?);
        write_line(&mut metrics, &line)?;
    }

    let bar = progress(args.quiet, cfg.num_steps, state.step);
    let equal = |a: &str, b: &str| grader.grade(a, b).correct;
    let per_step = cfg.rollout_batch_size;
    let mut last_saved = state.step;
    while state.step < cfg.num_steps {
        let step = state.step;
        let t_step = Instant::now();
        let first = state.data_position;
        let batch: Vec<PromptItem> = (first..first + per_step)
            .map(|g| prompts[data_index(g, prompts.len(), cfg.seed)].clone())
            .collect();
        opt.set_lr(cfg.lr_at(step));

        let t = Instant::now();
        let first_stream = state.next_sample_stream;
        let r = rollout(
            &engine.model,
            &engine.tokenizer,
            &batch,
            &cfg,
            &stop_tokens,
            first_stream,
            &equal,
        )?;
        let t_gen = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let sig = advantages(&engine.model, &engine.tokenizer, &batch, &r, &cfg, &equal)?;
        let t_probe = t.elapsed().as_secs_f64();

        if let Some(ms) = step_delay_ms() {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let t = Instant::now();
        let ref_logp = match &reference {
            Some(refm) => Some(reference_logprobs(&refm.model, &r, cfg.micro_batch_size)?),
            None => None,
        };
        let st = ppo_update(
            &engine.model,
            &mut opt,
            &vars,
            &r,
            &sig.advantages,
            ref_logp.as_deref(),
            &cfg,
        )?;
        let t_update = t.elapsed().as_secs_f64();

        state.step += 1;
        state.optimizer_step = opt.step_count();
        state.data_position += per_step;
        state.next_sample_stream += r.len() as u64;
        state.skipped_total += st.skipped;
        if st.skipped > 0 && st.optimizer_steps == 0 {
            state.skipped_in_a_row += 1;
        } else {
            state.skipped_in_a_row = 0;
        }

        let flat: Vec<f32> = sig.advantages.iter().flatten().copied().collect();
        let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
        let lengths: Vec<f32> = r.response.iter().map(|x| x.len() as f32).collect();
        let mut line = Map::new();
        line.insert("step".into(), json!(state.step));
        line.insert("critic/score/mean".into(), json!(mean(&r.reward)));
        line.insert("critic/advantages/mean".into(), json!(mean(&flat)));
        line.insert(
            "critic/advantages/max".into(),
            json!(flat
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max)
                .max(-f32::MAX)),
        );
        line.insert(
            "critic/advantages/min".into(),
            json!(flat
                .iter()
                .copied()
                .fold(f32::INFINITY, f32::min)
                .min(f32::MAX)),
        );
        line.insert("response_length/mean".into(), json!(mean(&lengths)));
        line.insert("response_length/clip_ratio".into(), json!(clip_ratio(&r)));
        line.insert("actor/pg_loss".into(), json!(st.pg_loss));
        line.insert("actor/pg_clipfrac".into(), json!(st.pg_clipfrac));
        line.insert("actor/ppo_kl".into(), json!(st.ppo_kl));
        line.insert("actor/entropy".into(), json!(st.entropy));
        line.insert("actor/grad_norm".into(), json!(st.grad_norm));
        line.insert("actor/lr".into(), json!(cfg.lr_at(step)));
        line.insert("actor/skipped_steps".into(), json!(state.skipped_total));
        if cfg.kl_coef > 0.0 {
            line.insert("actor/kl".into(), json!(st.kl));
        }
        if let Some(v) = sig.mean_value() {
            line.insert("barl/bayes_value/mean".into(), json!(v));
            let h: Vec<f32> = sig.num_hypotheses.iter().map(|&n| n as f32).collect();
            line.insert("barl/num_hypotheses/mean".into(), json!(mean(&h)));
        }
        line.insert("data/prompts_truncated".into(), json!(truncated));
        line.insert("data/prompts_skipped".into(), json!(skipped));
        let due =
            |every: usize| (every > 0 && state.step % every == 0) || state.step == cfg.num_steps;
        // The step's time ends before the held-out evaluation (timed apart).
        let t_all = t_step.elapsed().as_secs_f64();
        if !eval_sets.is_empty() && due(cfg.eval_every) {
            let t = Instant::now();
            line.extend(evaluate(state.step)?);
            line.insert("timing_s/eval".into(), json!(t.elapsed().as_secs_f64()));
        }
        line.insert("timing_s/gen".into(), json!(t_gen));
        line.insert("timing_s/probe".into(), json!(t_probe));
        line.insert("timing_s/update".into(), json!(t_update));
        line.insert("timing_s/step".into(), json!(t_all));
        line.insert(
            "perf/throughput".into(),
            json!(r.num_tokens() as f64 / t_all.max(1e-9)),
        );
        write_line(&mut metrics, &line)?;

        bar.inc(1);
        bar.set_message(format!(
            "reward {:.3} | {:.1} s/step (gen {:.1}, probe {:.1}, update {:.1})",
            mean(&r.reward),
            t_all,
            t_gen,
            t_probe,
            t_update
        ));
        if due(cfg.save_every) {
            save(&run_dir, &engine, &opt, &names, &state, &cfg)?;
            last_saved = state.step;
        }
        if state.skipped_in_a_row >= cfg.max_skipped_steps {
            bar.finish_and_clear();
            bail!(
                "stopping at step {}: {} steps in a row had a non-finite loss or gradient \
                 (max_skipped_steps = {}); the last good checkpoint is in {}",
                state.step,
                state.skipped_in_a_row,
                cfg.max_skipped_steps,
                run_dir.join("checkpoints").display()
            );
        }
    }
    bar.finish_and_clear();
    if last_saved != state.step {
        save(&run_dir, &engine, &opt, &names, &state, &cfg)?;
    }
    println!(
        "train: {} steps done; run folder {}",
        state.step,
        run_dir.display()
    );
    // The run is complete whatever happens to the report (`barl report` redoes it).
    match crate::report::write_report(&run_dir) {
        Ok(path) => println!("report: {}", path.display()),
        Err(e) => eprintln!("warning: the report could not be written: {e:#}"),
    }
    Ok(())
}

fn save(
    run_dir: &Path,
    engine: &Engine,
    opt: &AdamW,
    names: &[String],
    state: &TrainerState,
    cfg: &TrainConfig,
) -> Result<()> {
    save_checkpoint(
        run_dir,
        &engine.model,
        &engine.tokenizer,
        engine.chat_template.as_deref(),
        opt,
        names,
        state,
        cfg.keep_checkpoints,
    )?;
    Ok(())
}

/// Prompt ids of every problem; too long ones are cut to their last
/// `max_prompt_len` tokens or left out (`prompt_overflow`). Returns the prompts
/// and how many were truncated and skipped.
fn encode_prompts(
    engine: &Engine,
    builder: &PromptBuilder,
    problems: &[Problem],
    cfg: &TrainConfig,
) -> Result<(Vec<PromptItem>, usize, usize)> {
    let (mut truncated, mut skipped) = (0, 0);
    let mut out = Vec::with_capacity(problems.len());
    for p in problems {
        let (_, mut ids) = prompt_ids(engine, builder, &p.question)?;
        if ids.len() > cfg.max_prompt_len {
            match cfg.prompt_overflow {
                PromptOverflow::Skip => {
                    skipped += 1;
                    continue;
                }
                PromptOverflow::Truncate => {
                    ids.drain(..ids.len() - cfg.max_prompt_len);
                    truncated += 1;
                }
            }
        }
        out.push(PromptItem {
            id: p.id.clone(),
            ids,
            gold: p.gold.clone(),
        });
    }
    Ok((out, truncated, skipped))
}

/// Which prompt the `g`-th draw of the run takes: epochs over the data, each in
/// its own seeded order, so the order is a function of (seed, g) alone.
fn data_index(g: usize, len: usize, seed: u64) -> usize {
    let epoch = (g / len) as u64;
    let mut order: Vec<usize> = (0..len).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
        seed ^ (epoch + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    order.shuffle(&mut rng);
    order[g % len]
}

/// Drops the lines of steps after `step` (written after the checkpoint a
/// resumed run starts from), all lines if `step` is None; a torn last line is
/// dropped too.
fn keep_metrics_up_to(path: &Path, step: Option<usize>) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let f = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut kept = String::new();
    for line in BufReader::new(f).lines() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let line_step = v.get("step").and_then(Value::as_u64);
        if line_step
            .zip(step)
            .is_some_and(|(s, last)| s as usize <= last)
        {
            kept.push_str(&line);
            kept.push('\n');
        }
    }
    crate::runs::write_atomic(path, kept.as_bytes())
}

fn write_line(f: &mut File, line: &Map<String, Value>) -> Result<()> {
    let mut text = serde_json::to_string(line)?;
    text.push('\n');
    f.write_all(text.as_bytes())?;
    f.flush()?;
    Ok(())
}

fn progress(quiet: bool, total: usize, done: usize) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    let style = ProgressStyle::with_template(
        "train [{bar:30}] {pos}/{len} steps, {msg}, {elapsed} (eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_position(done as u64);
    bar
}

/// Test hook: `BARL_TRAIN_STEP_DELAY_MS` pauses every step before its update, so
/// a test can kill a run in the middle of a chosen step.
fn step_delay_ms() -> Option<u64> {
    std::env::var("BARL_TRAIN_STEP_DELAY_MS").ok()?.parse().ok()
}
