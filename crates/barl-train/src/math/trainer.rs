//! The math RL loop, top to bottom like the synthetic one: each step draws
//! prompts, samples and grades completions, turns rewards (and, for Progress and
//! BARL, answer probes) into token advantages, takes PPO-clip steps, logs a
//! [`StepRecord`], evaluates the held-out sets and saves a checkpoint when due.
//!
//! Run folder: `config.toml` (resolved), `metrics.jsonl` (one line per step),
//! `eval/step-NNNNNN/<set>.jsonl`, `checkpoints/step-NNNNNN/`. A resumed run
//! starts from the newest complete checkpoint, refuses a changed config, and
//! recomputes the steps after it, so it ends with the same metrics and weights
//! as a run never stopped.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use barl_math::data::Problem;
use barl_math::grader::{grader_with, Grader, GraderOptions};
use barl_math::prompt::{PromptBuilder, PromptStyle};
use barl_model::lora::init_adapter;
use barl_model::{CausalLm, LoraConfig, SampleConfig};
use candle_core::{Device, Tensor, Var};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::checkpoint::{
    latest_checkpoint, latest_verified_checkpoint, load_optimizer, load_state, save_checkpoint,
    TrainerState, ADAPTER,
};
use super::config::{PromptOverflow, RolloutBackend, TrainConfig};
use super::data::{load_problems, resolve_data_dir, source_name};
use super::engine::Engine;
use super::eval::{accuracy, eval_problems, EvalSetup};
use super::metrics::{collapse_warnings, keys, mean, StepRecord, StepStats};
use super::step::{advantages, clip_ratio, ppo_update, reference_logprobs, rollout, PromptItem};
use super::vllm_rollout::RolloutServers;
use crate::files::write_atomic;
use crate::optim::{AdamW, AdamWConfig};
use crate::TrainError;

/// A math RL run: the policy, its optimizer, the data and the run folder.
pub struct Trainer {
    cfg: TrainConfig,
    run_dir: PathBuf,
    engine: Engine,
    /// The frozen initial model, for the KL term (`kl_coef > 0`).
    reference: Option<Engine>,
    /// `rollout.backend = "vllm"`: the servers that sample.
    servers: Option<RolloutServers>,
    grader: Box<dyn Grader>,
    builder: PromptBuilder,
    prompts: Vec<PromptItem>,
    /// Training prompts cut to `max_prompt_len`, and left out.
    truncated: usize,
    skipped: usize,
    eval_sets: Vec<(String, Vec<Problem>)>,
    opt: AdamW,
    vars: Vec<Var>,
    names: Vec<String>,
    state: TrainerState,
    metrics: File,
    resumed_from: Option<PathBuf>,
    /// Newer checkpoints a resume passed over, with why.
    rejected: Vec<(PathBuf, TrainError)>,
    last_saved: usize,
    /// A pause before every update (a test kills a run inside a chosen step).
    pub step_delay: Option<Duration>,
    /// Set (by a Ctrl-C handler) to stop after the step in flight, saving it.
    pub stop: Option<Arc<AtomicBool>>,
}

impl Trainer {
    /// Sets up a run in `run_dir`: a new run (`resume` false) refuses a folder
    /// that already holds one; a resumed run loads its newest checkpoint and
    /// refuses a config that differs from the checkpoint's.
    pub fn new(cfg: TrainConfig, run_dir: &Path, resume: bool) -> Result<Self, TrainError> {
        cfg.validate()?;
        if !cfg.model.exists() {
            return Err(TrainError::Setting(format!(
                "model: {} does not exist",
                cfg.model.display()
            )));
        }
        let grader = grader_with(
            &cfg.grader,
            GraderOptions {
                gold: cfg.gold_extract,
                ..GraderOptions::default()
            },
        )
        .map_err(|e| TrainError::Setting(format!("grader: {e}")))?;
        let style: PromptStyle = cfg
            .prompt_style
            .parse()
            .map_err(|e| TrainError::Setting(format!("prompt_style: {e}")))?;
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

        // A damaged newest checkpoint is passed over for the one before it.
        let (ckpt, rejected) = if resume {
            latest_verified_checkpoint(run_dir)
        } else {
            (None, Vec::new())
        };
        let state = match &ckpt {
            Some(c) => {
                let st = load_state(c)?;
                if st.config_hash != cfg.hash() {
                    return Err(TrainError::Setting(format!(
                        "--resume {}: the config differs from the one the checkpoint was made \
                         with (hash {} vs {}); drop the overrides or start a new run",
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
                equal_reward_steps: 0,
                config_hash: cfg.hash(),
            },
        };
        if !resume {
            if run_dir.join("metrics.jsonl").exists() {
                return Err(TrainError::Setting(format!(
                    "--out {}: already holds a run; use --resume {} or another folder",
                    run_dir.display(),
                    run_dir.display()
                )));
            }
            std::fs::create_dir_all(run_dir)
                .map_err(|e| TrainError::Setting(format!("--out {}: {e}", run_dir.display())))?;
        }
        write_atomic(
            &run_dir.join("config.toml"),
            cfg.to_toml_string().as_bytes(),
        )?;
        remove_stale_temporaries(run_dir)?;

        let engine = load_policy(&cfg, ckpt.as_deref())?;
        // A LoRA run's reference is its own base (the model without the adapter).
        let reference = if cfg.kl_coef > 0.0 && cfg.lora.rank == 0 {
            Some(Engine::load(&cfg.model)?)
        } else {
            None
        };
        let (prompts, truncated, skipped) =
            encode_prompts(&engine, &builder, &train_problems, &cfg)?;
        if prompts.is_empty() {
            return Err(TrainError::Setting(format!(
                "train_data: all {} prompts are longer than max_prompt_len = {} \
                 (prompt_overflow = skip)",
                train_problems.len(),
                cfg.max_prompt_len
            )));
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
        }

        // The servers start from the trainer's weights (a resumed run's
        // checkpoint, or a model they were not started with).
        let servers = match cfg.rollout.backend {
            RolloutBackend::Local => None,
            RolloutBackend::Vllm => {
                let s = RolloutServers::connect(&cfg, run_dir)?;
                s.sync(&engine)?;
                Some(s)
            }
        };

        let metrics_path = run_dir.join("metrics.jsonl");
        // Lines after the checkpoint are recomputed; without a checkpoint that
        // includes the initial evaluation (its records are reused from eval/).
        keep_metrics_up_to(&metrics_path, ckpt.as_ref().map(|_| state.step))?;
        let metrics = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&metrics_path)
            .map_err(|source| TrainError::Io {
                path: metrics_path.clone(),
                source,
            })?;
        Ok(Self {
            last_saved: state.step,
            cfg,
            run_dir: run_dir.to_path_buf(),
            engine,
            reference,
            servers,
            grader,
            builder,
            prompts,
            truncated,
            skipped,
            eval_sets,
            opt,
            vars,
            names,
            state,
            metrics,
            resumed_from: ckpt,
            rejected,
            step_delay: None,
            stop: None,
        })
    }

    /// Steps until `num_steps`, calling `on_line` with every line written to
    /// `metrics.jsonl` (the initial evaluation's first, when there is one), and
    /// saves the last step. Stops with [`TrainError::Diverged`] after
    /// `max_skipped_steps` steps in a row had a non-finite loss or gradient.
    pub fn run(&mut self, on_line: &mut dyn FnMut(&StepRecord)) -> Result<(), TrainError> {
        self.run_until(self.cfg.num_steps, on_line)
    }

    /// [`run`](Self::run), stopping (and saving) once `last` steps are done.
    pub fn run_until(
        &mut self,
        last: usize,
        on_line: &mut dyn FnMut(&StepRecord),
    ) -> Result<(), TrainError> {
        if self.state.step == 0 && !self.eval_sets.is_empty() {
            let line = StepRecord {
                step: 0,
                val: self.evaluate(0)?,
                ..StepRecord::default()
            };
            self.write_line(&line)?;
            on_line(&line);
        }
        while self.state.step < last.min(self.cfg.num_steps) {
            let line = self.step()?;
            on_line(&line);
            if self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                return Err(TrainError::Interrupted {
                    step: self.state.step,
                    checkpoint: self.save_current()?,
                });
            }
            if self.cfg.stop_on_collapse && !line.warnings.is_empty() {
                let checkpoint = self.save_current()?;
                return Err(TrainError::Diverged(format!(
                    "stopping at step {} (stop_on_collapse = true): {}; checkpoint {}",
                    self.state.step,
                    line.warnings.join("; "),
                    checkpoint.display()
                )));
            }
            if self.state.skipped_in_a_row >= self.cfg.max_skipped_steps {
                let last_good = match latest_checkpoint(&self.run_dir) {
                    Some(c) => format!("the last good checkpoint is {}", c.display()),
                    None => format!(
                        "no checkpoint was written yet (save_every = {})",
                        self.cfg.save_every
                    ),
                };
                return Err(TrainError::Diverged(format!(
                    "stopping at step {}: {} steps in a row had a non-finite loss or gradient \
                     (max_skipped_steps = {}); {last_good}",
                    self.state.step, self.state.skipped_in_a_row, self.cfg.max_skipped_steps,
                )));
            }
        }
        self.save_current()?;
        Ok(())
    }

    /// One RL step: sample -> grade -> advantages -> update -> log -> eval -> save.
    pub fn step(&mut self) -> Result<StepRecord, TrainError> {
        let cfg = &self.cfg;
        let t_step = Instant::now();
        let step = self.state.step;
        let first = self.state.data_position;
        let batch: Vec<PromptItem> = (first..first + cfg.rollout_batch_size)
            .map(|g| self.prompts[data_index(g, self.prompts.len(), cfg.seed)].clone())
            .collect();
        self.opt.set_lr(cfg.lr_at(step));
        let grader = self.grader.as_ref();
        let equal = |a: &str, b: &str| grader.grade(a, b).correct;

        let t = Instant::now();
        let model = &self.engine.model;
        let tokenizer = &self.engine.tokenizer;
        let stops = self.engine.stop_tokens();
        let first_stream = self.state.next_sample_stream;
        let (r, diff) = match &self.servers {
            None => {
                let r = rollout(model, tokenizer, &batch, cfg, &stops, first_stream, &equal)?;
                (r, None)
            }
            Some(s) => s.rollout(&self.engine, &batch, cfg, first_stream, &equal)?,
        };
        let t_gen = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let sig = advantages(model, tokenizer, &batch, &r, cfg, &equal)?;
        let t_probe = t.elapsed().as_secs_f64();

        if let Some(d) = self.step_delay {
            std::thread::sleep(d);
        }
        let t = Instant::now();
        let refm: Option<&dyn CausalLm> = match &self.reference {
            Some(e) => Some(&e.model),
            None if cfg.kl_coef > 0.0 => model.base(),
            None => None,
        };
        let ref_logp = match refm {
            Some(m) => Some(reference_logprobs(m, &r, cfg.micro_batch_size)?),
            None => None,
        };
        // Dropout masks as a function of the step, so a resumed run repeats them.
        model.seek_dropout((step as u64) << 32);
        let st = ppo_update(
            model,
            &mut self.opt,
            &self.vars,
            &r,
            &sig.advantages,
            ref_logp.as_deref(),
            cfg,
        )?;
        if cfg.lora.merge_for_sampling && st.optimizer_steps > 0 {
            self.engine.merge_for_inference()?;
        }
        let t_update = t.elapsed().as_secs_f64();
        // The servers sample the next step from the updated weights.
        let t_sync = match &self.servers {
            Some(s) if st.optimizer_steps > 0 => {
                let t = Instant::now();
                s.sync(&self.engine)?;
                Some(t.elapsed().as_secs_f64())
            }
            _ => None,
        };

        let state = &mut self.state;
        state.step += 1;
        state.optimizer_step = self.opt.step_count();
        state.data_position += cfg.rollout_batch_size;
        state.next_sample_stream += r.len() as u64;
        state.skipped_total += st.skipped;
        if st.skipped > 0 && st.optimizer_steps == 0 {
            state.skipped_in_a_row += 1;
        } else {
            state.skipped_in_a_row = 0;
        }
        let all_equal = r.reward.windows(2).all(|w| w[0] == w[1]);
        state.equal_reward_steps = if all_equal {
            state.equal_reward_steps + 1
        } else {
            0
        };
        let vocab = self.engine.model.config().vocab_size.max(2) as f64;

        let flat: Vec<f32> = sig.advantages.iter().flatten().copied().collect();
        let lengths: Vec<f32> = r.response.iter().map(|x| x.len() as f32).collect();
        let hypotheses: Vec<f32> = sig.num_hypotheses.iter().map(|&n| n as f32).collect();
        // The step's time ends before the held-out evaluation (timed apart).
        let t_all = t_step.elapsed().as_secs_f64();
        let value = sig.mean_value();
        let mut line = StepRecord {
            step: state.step,
            train: Some(StepStats {
                score_mean: mean(&r.reward),
                advantages_mean: mean(&flat),
                // Finite bounds even for an empty batch (JSON has no infinity).
                advantages_max: flat.iter().copied().fold(-f32::MAX, f32::max),
                advantages_min: flat.iter().copied().fold(f32::MAX, f32::min),
                response_length_mean: mean(&lengths),
                response_length_clip_ratio: clip_ratio(&r),
                pg_loss: st.pg_loss,
                pg_clipfrac: st.pg_clipfrac,
                ppo_kl: st.ppo_kl,
                entropy: st.entropy,
                entropy_ratio: st.entropy / vocab.ln(),
                equal_reward_steps: state.equal_reward_steps,
                grad_norm: st.grad_norm,
                lr: cfg.lr_at(step),
                skipped_steps: state.skipped_total,
                kl: (cfg.kl_coef > 0.0).then_some(st.kl),
                bayes_value_mean: value,
                num_hypotheses_mean: value.map(|_| mean(&hypotheses)),
                prompts_truncated: self.truncated,
                prompts_skipped: self.skipped,
                logprob_diff_mean: diff.or(st.server_diff).map(|d| d.mean),
                logprob_diff_max: diff.or(st.server_diff).map(|d| d.max),
                tis_weight_mean: st.tis_weight,
                gen_seconds: t_gen,
                probe_seconds: t_probe,
                update_seconds: t_update,
                sync_seconds: t_sync,
                step_seconds: t_all,
                throughput: r.num_tokens() as f64 / t_all.max(1e-9),
            }),
            ..StepRecord::default()
        };
        if let Some(stats) = &line.train {
            line.warnings = collapse_warnings(
                stats,
                cfg.collapse_entropy_ratio,
                cfg.collapse_grad_norm,
                cfg.collapse_equal_reward_steps,
            );
        }
        let due = |every: usize| {
            (every > 0 && state.step.is_multiple_of(every)) || state.step == self.cfg.num_steps
        };
        let (eval_due, save_due) = (due(self.cfg.eval_every), due(self.cfg.save_every));
        if !self.eval_sets.is_empty() && eval_due {
            let t = Instant::now();
            line.val = self.evaluate(self.state.step)?;
            line.eval_seconds = Some(t.elapsed().as_secs_f64());
        }
        self.write_line(&line)?;
        if save_due {
            self.save()?;
        }
        Ok(line)
    }

    /// Greedy accuracy on every held-out set, records in `eval/step-NNNNNN/`
    /// (an evaluation cut short resumes from them).
    fn evaluate(&self, step: usize) -> Result<BTreeMap<String, f64>, TrainError> {
        let setup = EvalSetup {
            n: 1,
            sampling: SampleConfig {
                stop_tokens: self.engine.stop_tokens(),
                ..SampleConfig::greedy(self.cfg.eval_max_new_tokens)
            },
            batch_size: 16,
            grader: self.grader.as_ref(),
            builder: &self.builder,
            credit_truncated: self.cfg.credit_truncated,
        };
        let dir = self.run_dir.join("eval").join(format!("step-{step:06}"));
        std::fs::create_dir_all(&dir).map_err(|source| TrainError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut out = BTreeMap::new();
        for (name, problems) in &self.eval_sets {
            let path = dir.join(format!("{name}.jsonl"));
            let recs = eval_problems(&self.engine, &setup, name, problems, &path, &mut |_| {})?;
            out.insert(keys::val_acc(name), accuracy(&recs));
        }
        Ok(out)
    }

    /// The checkpoint of the current step, written now unless it already is.
    fn save_current(&mut self) -> Result<PathBuf, TrainError> {
        if self.last_saved == self.state.step {
            if let Some(c) = latest_checkpoint(&self.run_dir) {
                return Ok(c);
            }
        }
        self.save()
    }

    fn save(&mut self) -> Result<PathBuf, TrainError> {
        let dest = save_checkpoint(
            &self.run_dir,
            &self.engine,
            &self.opt,
            &self.names,
            &self.state,
            self.cfg.keep_checkpoints,
        )?;
        self.last_saved = self.state.step;
        Ok(dest)
    }

    fn write_line(&mut self, line: &StepRecord) -> Result<(), TrainError> {
        let path = self.run_dir.join("metrics.jsonl");
        let mut text = serde_json::to_string(line).map_err(|e| TrainError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        text.push('\n');
        self.metrics
            .write_all(text.as_bytes())
            .and_then(|_| self.metrics.flush())
            .map_err(|source| TrainError::Io { path, source })
    }

    /// Where the run stands (steps done, data and sampler positions).
    pub fn state(&self) -> &TrainerState {
        &self.state
    }

    /// The resolved config.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The checkpoint a resumed run started from.
    pub fn resumed_from(&self) -> Option<&Path> {
        self.resumed_from.as_deref()
    }

    /// Checkpoints newer than [`resumed_from`](Self::resumed_from) that failed
    /// verification, with why.
    pub fn rejected_checkpoints(&self) -> &[(PathBuf, TrainError)] {
        &self.rejected
    }

    /// Training prompts cut to `max_prompt_len`, and left out.
    pub fn prompts_cut(&self) -> (usize, usize) {
        (self.truncated, self.skipped)
    }

    /// Whether every step of the run is already done (a finished run resumed).
    pub fn finished(&self) -> bool {
        self.state.step >= self.cfg.num_steps
    }

    /// Whether `run` starts with an evaluation of the initial model.
    pub fn evaluates_first(&self) -> bool {
        self.state.step == 0 && !self.eval_sets.is_empty()
    }
}

/// Prompt ids of every problem; too long ones are cut to their last
/// `max_prompt_len` tokens or left out (`prompt_overflow`). Returns the prompts
/// and how many were truncated and skipped.
fn encode_prompts(
    engine: &Engine,
    builder: &PromptBuilder,
    problems: &[Problem],
    cfg: &TrainConfig,
) -> Result<(Vec<PromptItem>, usize, usize), TrainError> {
    let (mut truncated, mut skipped) = (0, 0);
    let mut out = Vec::with_capacity(problems.len());
    for p in problems {
        let (_, mut ids) = engine.prompt_ids(builder, &p.question)?;
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
fn keep_metrics_up_to(path: &Path, step: Option<usize>) -> Result<(), TrainError> {
    if !path.exists() {
        return Ok(());
    }
    let io = |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = File::open(path).map_err(io)?;
    let mut kept = String::new();
    for line in BufReader::new(f).lines() {
        let line = line.map_err(io)?;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let line_step = v.get("step").and_then(serde_json::Value::as_u64);
        if line_step
            .zip(step)
            .is_some_and(|(s, last)| s as usize <= last)
        {
            kept.push_str(&line);
            kept.push('\n');
        }
    }
    write_atomic(path, kept.as_bytes())
}

/// Removes the `.tmp-step-*` folders a killed run left half-written in
/// `run_dir/checkpoints` (a checkpoint is published by renaming its
/// temporary folder, so one still named `.tmp-` is never complete).
fn remove_stale_temporaries(run_dir: &Path) -> Result<(), TrainError> {
    let root = run_dir.join("checkpoints");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Ok(());
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(".tmp-") {
            let path = e.path();
            std::fs::remove_dir_all(&path).map_err(|source| TrainError::Io { path, source })?;
        }
    }
    Ok(())
}

/// The policy a run starts from: the checkpoint's model, or the config's; with
/// `lora.rank > 0` always the config's model, with the checkpoint's adapter or
/// a fresh one (B = 0) drawn from the seed.
fn load_policy(cfg: &TrainConfig, ckpt: Option<&Path>) -> Result<Engine, TrainError> {
    let Some(l) = cfg.lora.config() else {
        return match ckpt {
            Some(c) => Engine::load(&c.join("model")),
            None => Engine::load(&cfg.model),
        };
    };
    let engine = Engine::load(&cfg.model)?;
    let adapter =
        match ckpt {
            Some(c) => load_checkpoint_adapter(&c.join(ADAPTER), &l)?,
            None => init_adapter(engine.model.config(), &l, cfg.seed, &Device::Cpu).map_err(
                |source| TrainError::Load {
                    path: cfg.model.clone(),
                    source,
                },
            )?,
        };
    let mut engine = engine.with_adapter(&l, &adapter, cfg.seed)?;
    if cfg.lora.merge_for_sampling {
        engine.merge_for_inference()?;
    }
    Ok(engine)
}

/// The adapter of a LoRA checkpoint; its settings must be the run's.
fn load_checkpoint_adapter(
    dir: &Path,
    lora: &LoraConfig,
) -> Result<HashMap<String, Tensor>, TrainError> {
    let a = barl_model::load_adapter(dir, &Device::Cpu).map_err(|source| TrainError::Load {
        path: dir.to_path_buf(),
        source,
    })?;
    if !a.config.equivalent(lora) {
        return Err(TrainError::Checkpoint(format!(
            "{}: adapter settings {:?} differ from the run's lora table {:?}",
            dir.display(),
            a.config,
            lora
        )));
    }
    Ok(a.weights)
}
