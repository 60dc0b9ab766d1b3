//! The whole configuration of a `barl train` run (one TOML file, spec section 9
//! for the paper's values).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use barl_core::{AdvEstimator, KlEstimator, LossAggMode};
use barl_math::arith::ArithConfig;
use barl_math::prompt::PromptStyle;
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

/// Where problems come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSpec {
    /// `"arith"` (generated, see `arith`), a benchmark name (`gsm8k`, `math500`,
    /// `gsm8k_train`, ...) read from `data_dir`, or a path to a JSONL/parquet file.
    pub source: String,
    /// Field of the question in a file (dotted paths allowed).
    pub input_key: String,
    /// Field of the gold answer in a file.
    pub label_key: String,
    /// Use only the first N problems (0: all).
    pub limit: usize,
    /// Generated problems: how many (`arith` only).
    pub count: usize,
    /// First problem index of the generator (`arith` only): held-out sets use a
    /// range disjoint from the training range.
    pub offset: usize,
    /// Generator settings (`arith` only).
    pub arith: ArithConfig,
}

impl Default for DataSpec {
    fn default() -> Self {
        Self {
            source: "arith".into(),
            input_key: "input".into(),
            label_key: "label".into(),
            limit: 0,
            count: 1000,
            offset: 0,
            arith: ArithConfig::default(),
        }
    }
}

/// What to do with a prompt longer than `max_prompt_len` tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptOverflow {
    /// Keep its last `max_prompt_len` tokens.
    Truncate,
    /// Leave the problem out.
    Skip,
}

/// One training run. Field names follow the usual RL-for-LLM trainers (OpenRLHF, verl).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Model: a Hugging Face folder or a GGUF file.
    pub model: PathBuf,
    /// Folder with benchmarks/ and train/ (named benchmarks); empty: $BARL_DATA_DIR.
    pub data_dir: PathBuf,
    /// Training problems.
    pub train_data: DataSpec,
    /// Held-out sets, evaluated every `eval_every` steps (greedy).
    pub eval_data: Vec<DataSpec>,
    /// `chat-user`, `chat-system` or `raw:TEMPLATE` (with `{question}`).
    pub prompt_style: String,
    /// Answer-format instruction appended to each question (empty: the default one).
    pub instruction: String,
    /// Answer checker: `standard` or `reference`.
    pub grader: String,

    /// `grpo`, `progress` or `barl`.
    pub adv_estimator: AdvEstimator,
    /// Completions sampled per prompt (`n`).
    pub n_samples_per_prompt: usize,
    /// Prompts per RL step.
    pub rollout_batch_size: usize,
    /// Completions per optimizer step (a multiple of `micro_batch_size`).
    pub train_batch_size: usize,
    /// Completions per forward/backward pass (gradient accumulation inside).
    pub micro_batch_size: usize,
    /// Longest prompt in tokens.
    pub max_prompt_len: usize,
    /// `truncate` or `skip` prompts longer than `max_prompt_len`.
    pub prompt_overflow: PromptOverflow,
    /// Longest response in tokens.
    pub max_response_len: usize,
    pub temperature: f32,
    pub top_p: f32,
    /// RL steps in the run.
    pub num_steps: usize,

    /// Peak learning rate.
    pub learning_rate: f64,
    /// Fraction of `num_steps` with linear warm-up.
    pub lr_warmup_ratio: f64,
    /// The cosine decays to `lr_min_ratio * learning_rate`.
    pub lr_min_ratio: f64,
    pub adam_betas: [f64; 2],
    pub adam_eps: f64,
    pub weight_decay: f64,
    /// Global gradient-norm clip (0: off).
    pub grad_clip: f64,
    /// PPO clip range below 1.
    pub clip_ratio_low: f64,
    /// PPO clip range above 1.
    pub clip_ratio_high: f64,
    /// KL penalty to the frozen initial model (0: off, no reference model kept).
    pub kl_coef: f64,
    /// `k1`, `k2` or `k3`.
    pub kl_estimator: KlEstimator,
    /// How per-token losses become one number.
    pub loss_agg_mode: LossAggMode,
    /// Passes over each rollout batch.
    pub ppo_epochs: usize,
    /// Added to the std in advantage normalisation.
    pub adv_eps: f32,

    /// Response tokens per reasoning step (answer probes run after each).
    pub step_size: usize,
    /// Strength of the belief update.
    pub beta: f32,
    /// Most hypotheses per prompt (the truth is always kept).
    pub max_hypotheses: usize,
    /// Longest hypothesis in characters.
    pub max_hypothesis_len: usize,
    /// Appended after a prefix to force an answer; `{` + hypothesis follow it.
    pub probe_suffix: String,

    /// Evaluate every N steps (0: only before and after).
    pub eval_every: usize,
    /// Most new tokens in evaluation.
    pub eval_max_new_tokens: usize,
    /// Checkpoint every N steps (0: only at the end).
    pub save_every: usize,
    /// Checkpoints kept (the newest).
    pub keep_checkpoints: usize,
    /// Stop after this many skipped steps (NaN/inf loss) in a row.
    pub max_skipped_steps: usize,
    pub seed: u64,
}

impl Default for TrainConfig {
    /// A small CPU run: GRPO on generated arithmetic.
    fn default() -> Self {
        Self {
            model: PathBuf::new(),
            data_dir: PathBuf::new(),
            train_data: DataSpec::default(),
            eval_data: Vec::new(),
            prompt_style: "chat-user".into(),
            instruction: String::new(),
            grader: "standard".into(),
            adv_estimator: AdvEstimator::Grpo,
            n_samples_per_prompt: 4,
            rollout_batch_size: 4,
            train_batch_size: 16,
            micro_batch_size: 4,
            max_prompt_len: 256,
            prompt_overflow: PromptOverflow::Truncate,
            max_response_len: 128,
            temperature: 1.0,
            top_p: 1.0,
            num_steps: 30,
            learning_rate: 1e-6,
            lr_warmup_ratio: 0.03,
            lr_min_ratio: 0.1,
            adam_betas: [0.9, 0.95],
            adam_eps: 1e-8,
            weight_decay: 0.0,
            grad_clip: 1.0,
            clip_ratio_low: 0.2,
            clip_ratio_high: 0.2,
            kl_coef: 0.0,
            kl_estimator: KlEstimator::K3,
            loss_agg_mode: LossAggMode::SeqMeanTokenMean,
            ppo_epochs: 1,
            adv_eps: 1e-6,
            step_size: 128,
            beta: 1.0,
            max_hypotheses: 8,
            max_hypothesis_len: 20,
            probe_suffix: "\nBased on the above reasoning, the final answer is \\boxed".into(),
            eval_every: 0,
            eval_max_new_tokens: 256,
            save_every: 0,
            keep_checkpoints: 2,
            max_skipped_steps: 3,
            seed: 0,
        }
    }
}

/// Built-in presets, name and what it is for. Load one with the path
/// `preset:NAME`; the files are in `crates/barl-train/presets/`.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "paper",
        "BARL with the paper's math settings (spec section 9) on MATH train; set model=PATH",
    ),
    (
        "paper-grpo",
        "`paper` with the GRPO (Markovian RL) baseline",
    ),
    ("paper-progress", "`paper` with the Progress baseline"),
    (
        "paper-length-constrained",
        "`paper-grpo` with responses capped at 32 tokens",
    ),
    (
        "cpu-arith-grpo",
        "GRPO on generated arithmetic: a small CPU run for SmolLM2-135M-Instruct",
    ),
    (
        "cpu-arith-progress",
        "Progress on generated arithmetic: a small CPU run for SmolLM2-135M-Instruct",
    ),
    (
        "cpu-arith-barl",
        "BARL on generated arithmetic: a small CPU run for SmolLM2-135M-Instruct",
    ),
    (
        "tiny-test",
        "six tiny steps, for tests with a randomly initialised model",
    ),
];

/// The TOML text of a built-in preset (see [`PRESETS`]).
pub fn preset_text(name: &str) -> Option<&'static str> {
    Some(match name {
        "paper" => include_str!("../../presets/paper.toml"),
        "paper-grpo" => include_str!("../../presets/paper-grpo.toml"),
        "paper-progress" => include_str!("../../presets/paper-progress.toml"),
        "paper-length-constrained" => include_str!("../../presets/paper-length-constrained.toml"),
        "cpu-arith-grpo" => include_str!("../../presets/cpu-arith-grpo.toml"),
        "cpu-arith-progress" => include_str!("../../presets/cpu-arith-progress.toml"),
        "cpu-arith-barl" => include_str!("../../presets/cpu-arith-barl.toml"),
        "tiny-test" => include_str!("../../presets/tiny-test.toml"),
        _ => return None,
    })
}

/// How errors name the `KEY=VALUE` overrides.
const COMMAND_LINE: &str = "command line";

/// Why a configuration was refused. Each message is one line naming the file
/// (or `command line`) and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: TOML syntax error at line {line}, column {column}: {message}")]
    Syntax {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{origin}: unknown key `{key}`{hint}")]
    UnknownKey {
        origin: String,
        key: String,
        /// `"; did you mean `...`?"` or empty.
        hint: String,
    },
    #[error("{origin}: bad value for `{key}`: {message}")]
    BadValue {
        origin: String,
        key: String,
        message: String,
    },
    #[error("bad override `{arg}`: {reason}")]
    BadOverride { arg: String, reason: String },
    #[error("unknown preset `{name}`; known presets: {known}")]
    UnknownPreset { name: String, known: String },
    /// A value that has the right type but breaks a constraint ([`TrainConfig::validate`]).
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl TrainConfig {
    /// Reads a configuration: `path` is a TOML file or `preset:NAME` (see
    /// [`PRESETS`]), `None` for the defaults; then applies each `KEY=VALUE`
    /// override in order. Keys missing from the file keep their defaults.
    ///
    /// Keys inside tables are dotted (`train_data.arith.max_operand=20`), entries
    /// of `eval_data` numbered from 0 (`eval_data.1.count=50`). A value is read as
    /// TOML (`adam_betas=[0.9,0.99]`, `seed=3`, `instruction="..."`); one that is
    /// not valid TOML, or any unquoted value of a text setting, is taken as plain
    /// text (`model=/models/x`, `adv_estimator=barl`, `model=2024`).
    ///
    /// The result is not validated: see [`TrainConfig::validate`].
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Self::from_toml_str("", "defaults", overrides);
        };
        if let Some(name) = path.to_str().and_then(|s| s.strip_prefix("preset:")) {
            let text = preset_text(name).ok_or_else(|| ConfigError::UnknownPreset {
                name: name.to_string(),
                known: PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", "),
            })?;
            return Self::from_toml_str(text, &format!("preset:{name}"), overrides);
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string(), overrides)
    }

    /// [`TrainConfig::load`] from TOML text; `origin` names the text in errors.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        overrides: &[String],
    ) -> Result<Self, ConfigError> {
        let mut table: Table = toml::from_str(text).map_err(|e| syntax_error(text, origin, &e))?;
        let schema = schema();
        // The file is checked alone first, so that errors blame the right source.
        let config = table_to_config(&table, &schema, origin)?;
        if overrides.is_empty() {
            return Ok(config);
        }
        for arg in overrides {
            apply_override(&mut table, &schema, arg)?;
        }
        table_to_config(&table, &schema, COMMAND_LINE)
    }

    /// Checks every constraint the types cannot express; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| {
            Err(ConfigError::Invalid {
                key: key.to_string(),
                message,
            })
        };
        if self.model.as_os_str().is_empty() {
            return invalid(
                "model",
                "not set; give it in the config or as model=PATH".into(),
            );
        }
        for (key, value) in [
            ("n_samples_per_prompt", self.n_samples_per_prompt),
            ("rollout_batch_size", self.rollout_batch_size),
            ("micro_batch_size", self.micro_batch_size),
            ("train_batch_size", self.train_batch_size),
            ("max_prompt_len", self.max_prompt_len),
            ("max_response_len", self.max_response_len),
            ("num_steps", self.num_steps),
            ("ppo_epochs", self.ppo_epochs),
            ("step_size", self.step_size),
            ("max_hypotheses", self.max_hypotheses),
            ("max_hypothesis_len", self.max_hypothesis_len),
            ("keep_checkpoints", self.keep_checkpoints),
            ("max_skipped_steps", self.max_skipped_steps),
        ] {
            if value < 1 {
                return invalid(key, format!("must be at least 1, got {value}"));
            }
        }
        if !self.train_batch_size.is_multiple_of(self.micro_batch_size) {
            return invalid(
                "train_batch_size",
                format!(
                    "must be a multiple of micro_batch_size ({}), got {}",
                    self.micro_batch_size, self.train_batch_size
                ),
            );
        }
        for (key, value, range) in [
            ("temperature", self.temperature as f64, Range::NonNegative),
            ("top_p", self.top_p as f64, Range::OpenClosedUnit),
            ("learning_rate", self.learning_rate, Range::NonNegative),
            ("lr_warmup_ratio", self.lr_warmup_ratio, Range::Unit),
            ("lr_min_ratio", self.lr_min_ratio, Range::Unit),
            ("adam_betas[0]", self.adam_betas[0], Range::ClosedOpenUnit),
            ("adam_betas[1]", self.adam_betas[1], Range::ClosedOpenUnit),
            ("adam_eps", self.adam_eps, Range::NonNegative),
            ("weight_decay", self.weight_decay, Range::NonNegative),
            ("grad_clip", self.grad_clip, Range::NonNegative),
            ("clip_ratio_low", self.clip_ratio_low, Range::NonNegative),
            ("clip_ratio_high", self.clip_ratio_high, Range::NonNegative),
            ("kl_coef", self.kl_coef, Range::NonNegative),
            ("adv_eps", self.adv_eps as f64, Range::NonNegative),
            ("beta", self.beta as f64, Range::NonNegative),
        ] {
            if !range.contains(value) {
                return invalid(key, format!("must be {}, got {value}", range.describe()));
            }
        }
        if !matches!(self.grader.as_str(), "standard" | "reference") {
            return invalid(
                "grader",
                format!("must be `standard` or `reference`, got `{}`", self.grader),
            );
        }
        if let Err(e) = PromptStyle::from_str(&self.prompt_style) {
            return invalid("prompt_style", e.to_string());
        }
        check_data("train_data", &self.train_data)?;
        for (i, spec) in self.eval_data.iter().enumerate() {
            check_data(&format!("eval_data.{i}"), spec)?;
        }
        Ok(())
    }

    /// The configuration as TOML with every key written out (saved as
    /// `config.toml` in the run folder); [`TrainConfig::load`] reads it back to
    /// an equal configuration.
    pub fn to_toml_string(&self) -> String {
        // TOML paths are text; any path read from TOML or an override is UTF-8.
        let mut config = self.clone();
        config.model = config.model.to_string_lossy().into_owned().into();
        config.data_dir = config.data_dir.to_string_lossy().into_owned().into();
        let text = toml::to_string(&config)
            .expect("every TrainConfig value has a TOML form once paths are UTF-8");
        tidy_f32(
            &text,
            &[
                ("temperature", self.temperature),
                ("top_p", self.top_p),
                ("adv_eps", self.adv_eps),
                ("beta", self.beta),
            ],
        )
    }

    /// FNV-1a (64 bit) of [`TrainConfig::to_toml_string`] as 16 hex digits: a
    /// run refuses to resume under a different configuration.
    pub fn hash(&self) -> String {
        format!("{:016x}", fnv1a64(self.to_toml_string().as_bytes()))
    }

    /// The learning rate of 0-based step `step`: linear warm-up, then a cosine
    /// decay to a floor.
    ///
    /// With `lr = learning_rate`, `N = num_steps`,
    /// `W = ceil(lr_warmup_ratio * N)` and `floor = lr_min_ratio * lr`:
    /// - `step < W`: `lr * (step + 1) / W`;
    /// - otherwise `floor + (lr - floor) * 0.5 * (1 + cos(pi * p))` with
    ///   `p = (step - W) / max(1, N - W)`, capped at 1 (steps past the end stay
    ///   at the floor).
    pub fn lr_at(&self, step: usize) -> f64 {
        let lr = self.learning_rate;
        // The tolerance keeps float noise (0.07 * 100 = 7.000000000000001) from
        // adding a warm-up step.
        let warmup = (self.lr_warmup_ratio * self.num_steps as f64 - 1e-9)
            .ceil()
            .max(0.0) as usize;
        if step < warmup {
            return lr * (step + 1) as f64 / warmup as f64;
        }
        let floor = self.lr_min_ratio * lr;
        let span = self.num_steps.saturating_sub(warmup).max(1);
        let progress = ((step - warmup) as f64 / span as f64).min(1.0);
        floor + (lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

/// Allowed intervals of the real-valued settings (NaN is never allowed).
#[derive(Clone, Copy)]
enum Range {
    /// `[0, inf)`.
    NonNegative,
    /// `[0, 1]`.
    Unit,
    /// `[0, 1)`.
    ClosedOpenUnit,
    /// `(0, 1]`.
    OpenClosedUnit,
}

impl Range {
    fn contains(self, x: f64) -> bool {
        match self {
            Range::NonNegative => x.is_finite() && x >= 0.0,
            Range::Unit => (0.0..=1.0).contains(&x),
            Range::ClosedOpenUnit => (0.0..1.0).contains(&x),
            Range::OpenClosedUnit => x > 0.0 && x <= 1.0,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Range::NonNegative => "a finite number >= 0",
            Range::Unit => "in [0, 1]",
            Range::ClosedOpenUnit => "in [0, 1)",
            Range::OpenClosedUnit => "in (0, 1]",
        }
    }
}

/// Checks one data source; `key` names it in the error.
fn check_data(key: &str, spec: &DataSpec) -> Result<(), ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        key: key.to_string(),
        message,
    };
    if spec.source.trim().is_empty() {
        return Err(invalid("source must not be empty".into()));
    }
    if spec.source == "arith" {
        spec.arith.validate().map_err(invalid)?;
        if spec.count < 1 {
            return Err(invalid("count must be at least 1 for arith".into()));
        }
    }
    Ok(())
}

/// A TOML syntax error with the line and column of where toml points.
fn syntax_error(text: &str, origin: &str, error: &toml::de::Error) -> ConfigError {
    let start = error.span().map_or(0, |s| s.start);
    let before = text.get(..start).unwrap_or(text);
    ConfigError::Syntax {
        origin: origin.to_string(),
        line: before.matches('\n').count() + 1,
        column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
        message: error.message().trim().replace('\n', "; "),
    }
}

/// What a key must match to be known: the defaults as a TOML table, with one
/// default entry in `eval_data` standing for all its entries.
fn schema() -> Table {
    let mut table = to_table(&TrainConfig::default());
    table.insert(
        "eval_data".into(),
        Value::Array(vec![Value::Table(to_table(&DataSpec::default()))]),
    );
    table
}

fn to_table<T: Serialize>(value: &T) -> Table {
    match Value::try_from(value) {
        Ok(Value::Table(table)) => table,
        _ => unreachable!("the default settings always serialise to a TOML table"),
    }
}

/// Converts a table read from `origin`, naming the first unknown key or
/// ill-typed value.
fn table_to_config(
    table: &Table,
    schema: &Table,
    origin: &str,
) -> Result<TrainConfig, ConfigError> {
    if let Some((key, hint)) = find_unknown(table, schema, "") {
        return Err(ConfigError::UnknownKey {
            origin: origin.to_string(),
            key,
            hint,
        });
    }
    Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| {
            let (key, message) = locate_bad_value(table, Section::Config, "")
                .unwrap_or_else(|| ("(whole table)".into(), one_line(e.message())));
            ConfigError::BadValue {
                origin: origin.to_string(),
                key,
                message,
            }
        })
}

/// `prefix.key`, or `key` at the top.
fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn one_line(message: &str) -> String {
    message.trim().replace('\n', "; ")
}

/// The first key of `table` (dotted, under `prefix`) that `schema` lacks, with
/// a "did you mean" hint.
fn find_unknown(table: &Table, schema: &Table, prefix: &str) -> Option<(String, String)> {
    for (key, value) in table {
        let dotted = join(prefix, key);
        let Some(known) = schema.get(key) else {
            return Some((dotted, hint(key, schema)));
        };
        let found = match (value, known) {
            (Value::Table(t), Value::Table(s)) => find_unknown(t, s, &dotted),
            (Value::Array(items), Value::Array(s)) => match s.first() {
                Some(Value::Table(template)) => {
                    items.iter().enumerate().find_map(|(i, item)| match item {
                        Value::Table(t) => find_unknown(t, template, &format!("{dotted}.{i}")),
                        _ => None,
                    })
                }
                _ => None,
            },
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// `"; did you mean `x`?"` for the nearest known key within a few edits, or `""`.
fn hint(key: &str, schema: &Table) -> String {
    let allowed = (key.chars().count() / 3).max(2);
    schema
        .keys()
        .map(|k| (edit_distance(key, k), k))
        .filter(|&(d, _)| d <= allowed)
        .min()
        .map_or(String::new(), |(_, k)| format!("; did you mean `{k}`?"))
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // row[j]: distance between the prefix of `a` read so far and b[..j].
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let substitute = diagonal + usize::from(ca != b[j]);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The structs a TOML table can stand for, to find which value fails to
/// deserialise.
#[derive(Clone, Copy)]
enum Section {
    Config,
    Data,
    Arith,
}

impl Section {
    /// Deserialises `table` as this section; serde's message if it fails.
    fn check(self, table: Table) -> Result<(), String> {
        let value = Value::Table(table);
        let result = match self {
            Section::Config => value.try_into::<TrainConfig>().map(drop),
            Section::Data => value.try_into::<DataSpec>().map(drop),
            Section::Arith => value.try_into::<ArithConfig>().map(drop),
        };
        result.map_err(|e| one_line(e.message()))
    }

    /// The section that the value of `key` (a table, or a list of tables) stands for.
    fn child(self, key: &str) -> Option<Section> {
        match (self, key) {
            (Section::Config, "train_data" | "eval_data") => Some(Section::Data),
            (Section::Data, "arith") => Some(Section::Arith),
            _ => None,
        }
    }
}

/// The first key of `table` (dotted, under `prefix`) whose value does not
/// deserialise, with serde's message. Every field has a default, so each key
/// can be tried alone; failing sub-tables are searched the same way.
fn locate_bad_value(table: &Table, section: Section, prefix: &str) -> Option<(String, String)> {
    for (key, value) in table {
        let alone: Table = [(key.clone(), value.clone())].into_iter().collect();
        let Err(message) = section.check(alone) else {
            continue;
        };
        let dotted = join(prefix, key);
        if let Some(child) = section.child(key) {
            let inner = match value {
                Value::Table(t) => locate_bad_value(t, child, &dotted),
                Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| match item {
                    Value::Table(t) => locate_bad_value(t, child, &format!("{dotted}.{i}")),
                    _ => None,
                }),
                _ => None,
            };
            if inner.is_some() {
                return inner;
            }
        }
        return Some((dotted, message));
    }
    None
}

/// Applies one `KEY=VALUE` override to `table`.
fn apply_override(table: &mut Table, schema: &Table, arg: &str) -> Result<(), ConfigError> {
    let bad = |reason: String| ConfigError::BadOverride {
        arg: arg.to_string(),
        reason,
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected KEY=VALUE".into()))?;
    let keys: Vec<&str> = key.trim().split('.').map(str::trim).collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(bad("the key is empty or has an empty part".into()));
    }
    let value = override_value(raw.trim(), schema_value(schema, &keys));
    let mut root = Value::Table(std::mem::take(table));
    let result = set_path(&mut root, &keys, value, "");
    if let Value::Table(t) = root {
        *table = t;
    }
    result.map_err(bad)
}

/// The default value at a dotted key, if the key is known.
fn schema_value<'a>(schema: &'a Table, keys: &[&str]) -> Option<&'a Value> {
    let (first, rest) = keys.split_first()?;
    let mut node = schema.get(*first)?;
    for key in rest {
        node = match node {
            Value::Table(t) => t.get(*key)?,
            // Every entry of a list looks like the schema's first one.
            Value::Array(items) if key.parse::<usize>().is_ok() => items.first()?,
            _ => return None,
        };
    }
    Some(node)
}

/// An override's value: `raw` read as TOML, or as text when it is not valid
/// TOML or when it is unquoted and the setting (`default`) is text.
fn override_value(raw: &str, default: Option<&Value>) -> Value {
    let parsed = toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        // `1\nx = 2` would parse too, as two keys: that is not one value.
        .filter(|t| t.len() == 1)
        .and_then(|mut t| t.remove("v"));
    let text_setting = matches!(default, Some(Value::String(_)));
    match parsed {
        Some(Value::String(s)) => Value::String(s),
        Some(v) if !text_setting => v,
        _ => Value::String(raw.to_string()),
    }
}

/// Sets the dotted key `keys` under `node` (reached by the dotted key `done`)
/// to `value`, creating missing tables; list entries are indexed by number.
fn set_path(node: &mut Value, keys: &[&str], value: Value, done: &str) -> Result<(), String> {
    let Some((&key, rest)) = keys.split_first() else {
        *node = value;
        return Ok(());
    };
    let here = join(done, key);
    let child = match node {
        Value::Table(t) => {
            if let Some(index) = rest.first().filter(|k| k.parse::<usize>().is_ok()) {
                if !t.contains_key(key) {
                    return Err(format!("`{here}` has no entry {index}"));
                }
            }
            t.entry(key).or_insert_with(|| Value::Table(Table::new()))
        }
        Value::Array(items) => {
            let len = items.len();
            let index: usize = key.parse().map_err(|_| {
                format!("`{done}` is a list: number its entries, as in `{done}.0.{key}`")
            })?;
            items
                .get_mut(index)
                .ok_or_else(|| format!("`{done}` has no entry {index} (it has {len})"))?
        }
        _ => return Err(format!("`{done}` is not a table")),
    };
    set_path(child, rest, value, &here)
}

/// toml writes `f32` settings through `f64` (`0.7` becomes
/// `0.699999988079071`); this writes the top-level ones named in `values` in
/// their shortest `f32` form instead, where that reads back to the same value.
fn tidy_f32(text: &str, values: &[(&str, f32)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut top_level = true;
    for line in text.lines() {
        top_level &= !line.starts_with('[');
        let tidy = values.iter().find_map(|&(key, value)| {
            line.strip_prefix(key)?.strip_prefix(" = ")?;
            let short = format!("{value:?}");
            let same = short.parse::<f64>().is_ok_and(|x| x as f32 == value);
            (top_level && value.is_finite() && same).then(|| format!("{key} = {short}"))
        });
        out.push_str(tidy.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// FNV-1a, 64 bit: `h = 0xcbf29ce484222325`, then for each byte `b`:
/// `h = (h XOR b) * 0x100000001b3` (mod 2^64).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn preset(name: &str, overrides: &[&str]) -> TrainConfig {
        let path = format!("preset:{name}");
        TrainConfig::load(Some(Path::new(&path)), &args(overrides))
            .unwrap_or_else(|e| panic!("preset {name}: {e}"))
    }

    /// The error message of loading `text` with `overrides`.
    fn load_error(text: &str, overrides: &[&str]) -> String {
        match TrainConfig::from_toml_str(text, "test.toml", &args(overrides)) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// A file in the temporary folder, unique to this test process.
    fn temp_file(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("barl-config-test-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("write a temporary file");
        path
    }

    #[test]
    fn every_preset_loads_and_validates_once_a_model_is_set() {
        for (name, description) in PRESETS {
            assert!(!description.is_empty());
            let config = preset(name, &["model=/models/x"]);
            config
                .validate()
                .unwrap_or_else(|e| panic!("preset {name}: {e}"));
            let err = preset(name, &[]).validate().unwrap_err().to_string();
            assert_eq!(
                err,
                "model: not set; give it in the config or as model=PATH"
            );
        }
    }

    #[test]
    fn every_preset_file_is_listed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("presets");
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).expect("presets folder") {
            let path = entry.expect("presets entry").path();
            let name = path.file_stem().and_then(|s| s.to_str()).expect("name");
            assert!(PRESETS.iter().any(|p| p.0 == name), "{name} not in PRESETS");
            let on_disk = std::fs::read_to_string(&path).expect("read preset");
            assert_eq!(preset_text(name), Some(on_disk.as_str()));
            files += 1;
        }
        assert_eq!(files, PRESETS.len());
    }

    #[test]
    fn paper_preset_has_the_settings_of_spec_section_9() {
        let c = preset("paper", &[]);
        assert_eq!(c.adv_estimator, AdvEstimator::Barl);
        assert_eq!(c.n_samples_per_prompt, 5);
        assert_eq!(c.rollout_batch_size, 1024);
        assert_eq!(c.train_batch_size, 128);
        assert_eq!(c.micro_batch_size, 4);
        assert_eq!((c.max_prompt_len, c.max_response_len), (512, 1024));
        assert_eq!((c.temperature, c.top_p), (1.0, 1.0));
        assert_eq!(c.learning_rate, 5e-7);
        assert_eq!((c.lr_warmup_ratio, c.lr_min_ratio), (0.03, 0.1));
        assert_eq!(c.adam_betas, [0.9, 0.95]);
        assert_eq!((c.weight_decay, c.grad_clip, c.kl_coef), (0.0, 1.0, 0.0));
        assert_eq!((c.ppo_epochs, c.step_size, c.beta), (1, 128, 1.0));
        assert_eq!(c.max_hypothesis_len, 20);
        assert_eq!(c.prompt_style, "chat-system");
        assert_eq!(c.train_data.source, "math_train");
        let eval: Vec<&str> = c.eval_data.iter().map(|d| d.source.as_str()).collect();
        assert_eq!(eval, ["math500", "gsm8k"]);
        assert_eq!(c.model, PathBuf::new());
    }

    #[test]
    fn preset_variants_differ_only_where_their_names_say() {
        let paper = preset("paper", &[]);
        let grpo = preset("paper-grpo", &[]);
        let progress = preset("paper-progress", &[]);
        let short = preset("paper-length-constrained", &[]);
        assert_eq!(
            grpo,
            TrainConfig {
                adv_estimator: AdvEstimator::Grpo,
                ..paper.clone()
            }
        );
        assert_eq!(
            progress,
            TrainConfig {
                adv_estimator: AdvEstimator::Progress,
                ..paper.clone()
            }
        );
        assert_eq!(
            short,
            TrainConfig {
                max_response_len: 32,
                ..grpo
            }
        );

        let barl = preset("cpu-arith-barl", &[]);
        for (name, estimator) in [
            ("cpu-arith-grpo", AdvEstimator::Grpo),
            ("cpu-arith-progress", AdvEstimator::Progress),
        ] {
            let c = preset(name, &[]);
            assert_eq!(
                c,
                TrainConfig {
                    adv_estimator: estimator,
                    ..barl.clone()
                },
                "{name}"
            );
        }
        // Held-out problems come from a range disjoint from training's 0..2000.
        assert_eq!((barl.train_data.offset, barl.train_data.count), (0, 2000));
        assert_eq!(
            (barl.eval_data[0].offset, barl.eval_data[0].count),
            (1_000_000, 200)
        );
        assert_eq!(barl.eval_data[0].arith, barl.train_data.arith);
        assert_eq!(barl.train_data.arith.max_operand, 9);

        let tiny = preset("tiny-test", &[]);
        assert_eq!((tiny.num_steps, tiny.n_samples_per_prompt), (6, 2));
        assert_eq!((tiny.train_batch_size, tiny.micro_batch_size), (4, 2));
    }

    #[test]
    fn overrides_set_nested_values_lists_and_text() {
        let c = TrainConfig::load(
            None,
            &args(&[
                "train_data.arith.max_operand=20",
                "adam_betas=[0.9,0.99]",
                "model=/a/b",
                "adv_estimator=barl",
                "seed = 7",
                "instruction=a = b",
            ]),
        )
        .unwrap();
        assert_eq!(c.train_data.arith.max_operand, 20);
        // The rest of the nested table keeps its defaults.
        assert_eq!(c.train_data.arith.min_operand, 0);
        assert_eq!(c.train_data.count, DataSpec::default().count);
        assert_eq!(c.adam_betas, [0.9, 0.99]);
        assert_eq!(c.model, PathBuf::from("/a/b"));
        assert_eq!(c.adv_estimator, AdvEstimator::Barl);
        assert_eq!(c.seed, 7);
        assert_eq!(c.instruction, "a = b");
        // The rest are defaults.
        assert_eq!(c.num_steps, TrainConfig::default().num_steps);

        // A number given to a text setting stays text; a quoted value is TOML.
        let c = TrainConfig::load(None, &args(&["model=2024", "prompt_style=\"chat-system\""]))
            .unwrap();
        assert_eq!(c.model, PathBuf::from("2024"));
        assert_eq!(c.prompt_style, "chat-system");

        // Overrides win over the file; list entries are numbered.
        let c = preset("cpu-arith-barl", &["eval_data.0.count=50", "num_steps=3"]);
        assert_eq!(c.eval_data[0].count, 50);
        assert_eq!(c.eval_data[0].offset, 1_000_000);
        assert_eq!(c.num_steps, 3);
    }

    #[test]
    fn bad_overrides_are_named() {
        let err = load_error("", &["num_steps"]);
        assert_eq!(err, "bad override `num_steps`: expected KEY=VALUE");
        let err = load_error("", &["=3"]);
        assert!(err.starts_with("bad override `=3`: "), "{err}");
        let err = load_error("", &["eval_data.0.count=5"]);
        assert!(err.contains("`eval_data` has no entry 0"), "{err}");
        let err = TrainConfig::load(
            Some(Path::new("preset:cpu-arith-barl")),
            &args(&["eval_data.3.count=5"]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`eval_data` has no entry 3 (it has 1)"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_dotted_path_and_source() {
        let err = load_error("learning_rat = 1e-6\n", &[]);
        assert_eq!(
            err,
            "test.toml: unknown key `learning_rat`; did you mean `learning_rate`?"
        );
        let err = load_error("[train_data.arith]\nfoo = 1\n", &[]);
        assert_eq!(err, "test.toml: unknown key `train_data.arith.foo`");
        let err = load_error(
            "[[eval_data]]\nsource = \"gsm8k\"\n[[eval_data]]\nsorce = \"x\"\n",
            &[],
        );
        assert_eq!(
            err,
            "test.toml: unknown key `eval_data.1.sorce`; did you mean `source`?"
        );
        let err = load_error("", &["train_data.arith.foo=3"]);
        assert_eq!(err, "command line: unknown key `train_data.arith.foo`");
        let err = load_error("", &["bogus=1"]);
        assert!(
            err.starts_with("command line: unknown key `bogus`"),
            "{err}"
        );
    }

    #[test]
    fn ill_typed_values_name_the_key_and_the_expected_type() {
        let err = load_error("", &["n_samples_per_prompt=\"four\""]);
        assert!(
            err.starts_with("command line: bad value for `n_samples_per_prompt`: "),
            "{err}"
        );
        assert!(err.contains("usize"), "{err}");
        // Unquoted, it is not TOML and becomes text: the same error.
        let err = load_error("", &["n_samples_per_prompt=four"]);
        assert!(err.contains("`n_samples_per_prompt`"), "{err}");
        let err = load_error("[train_data.arith]\nmax_operand = \"big\"\n", &[]);
        assert!(
            err.starts_with("test.toml: bad value for `train_data.arith.max_operand`: "),
            "{err}"
        );
        assert!(err.contains("i64"), "{err}");
        let err = load_error("[[eval_data]]\n[[eval_data]]\ncount = -1\n", &[]);
        assert!(err.contains("`eval_data.1.count`"), "{err}");
        let err = load_error("", &["adv_estimator=foo"]);
        assert!(err.contains("`adv_estimator`"), "{err}");
        assert!(err.contains("grpo"), "{err}");
    }

    #[test]
    fn syntax_errors_give_the_file_line_and_column() {
        let path = temp_file("syntax.toml", "seed = 1\nlearning_rate = \n");
        let err = TrainConfig::load(Some(&path), &[]).unwrap_err().to_string();
        std::fs::remove_file(&path).ok();
        let expected = format!("{}: TOML syntax error at line 2, column ", path.display());
        assert!(err.starts_with(&expected), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn unreadable_files_and_unknown_presets_are_named() {
        let missing = std::env::temp_dir().join("barl-config-test-does-not-exist.toml");
        let err = TrainConfig::load(Some(&missing), &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(&format!("cannot read config file {}: ", missing.display())));
        let err = TrainConfig::load(Some(Path::new("preset:nope")), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("unknown preset `nope`; known presets: paper, "),
            "{err}"
        );
        assert!(err.ends_with("tiny-test"), "{err}");
    }

    #[test]
    fn validate_names_the_broken_key() {
        let base = TrainConfig {
            model: "m".into(),
            ..TrainConfig::default()
        };
        base.validate().unwrap();
        type Edit = fn(&mut TrainConfig);
        let cases: [(Edit, &str); 16] = [
            (|c| c.n_samples_per_prompt = 0, "n_samples_per_prompt: must be at least 1, got 0"),
            (|c| c.train_batch_size = 6, "train_batch_size: must be a multiple of micro_batch_size (4), got 6"),
            (|c| c.micro_batch_size = 0, "micro_batch_size: must be at least 1, got 0"),
            (|c| c.temperature = f32::NAN, "temperature: must be a finite number >= 0, got NaN"),
            (|c| c.top_p = 0.0, "top_p: must be in (0, 1], got 0"),
            (|c| c.top_p = 1.5, "top_p: must be in (0, 1], got 1.5"),
            (|c| c.learning_rate = -1e-6, "learning_rate: must be a finite number >= 0, got -0.000001"),
            (|c| c.lr_warmup_ratio = 1.5, "lr_warmup_ratio: must be in [0, 1], got 1.5"),
            (|c| c.adam_betas[1] = 1.0, "adam_betas[1]: must be in [0, 1), got 1"),
            (|c| c.beta = f32::INFINITY, "beta: must be a finite number >= 0, got inf"),
            (|c| c.step_size = 0, "step_size: must be at least 1, got 0"),
            (|c| c.grader = "strict".into(), "grader: must be `standard` or `reference`, got `strict`"),
            (|c| c.prompt_style = "raw:no placeholder".into(), "prompt_style: raw prompt template has no `{question}` placeholder: \"no placeholder\""),
            (|c| c.train_data.arith.terms = 1, "train_data: arith.terms must be in 2..=16, got 1"),
            (|c| c.eval_data = vec![DataSpec::default(), DataSpec { count: 0, ..DataSpec::default() }], "eval_data.1: count must be at least 1 for arith"),
            (|c| c.model = PathBuf::new(), "model: not set; give it in the config or as model=PATH"),
        ];
        for (edit, expected) in cases {
            let mut c = base.clone();
            edit(&mut c);
            assert_eq!(c.validate().unwrap_err().to_string(), expected);
        }
        // Arith settings of a file source are not checked.
        let mut c = base.clone();
        c.train_data.source = "gsm8k_train".into();
        c.train_data.arith.terms = 1;
        c.validate().unwrap();
    }

    #[test]
    fn lr_schedule_warms_up_linearly_then_decays_by_cosine() {
        let c = TrainConfig {
            learning_rate: 1.0,
            num_steps: 10,
            lr_warmup_ratio: 0.2,
            lr_min_ratio: 0.1,
            ..TrainConfig::default()
        };
        // W = ceil(0.2 * 10) = 2: steps 0 and 1 get 1/2 and 2/2.
        assert_eq!(c.lr_at(0), 0.5);
        assert_eq!(c.lr_at(1), 1.0);
        // Step 2: progress 0 / 8, cos 0 = 1: the peak.
        assert_eq!(c.lr_at(2), 1.0);
        // Step 6: progress 4/8, cos(pi/2) = 0: 0.1 + 0.9 * 0.5 = 0.55.
        assert!((c.lr_at(6) - 0.55).abs() < 1e-12);
        // Step 9: progress 7/8, cos(7 pi/8) = -cos(pi/8) = -0.9238795325112867:
        // 0.1 + 0.9 * 0.5 * (1 - 0.9238795325112867) = 0.1 + 0.9 * 0.03806023374435663
        // = 0.13425421036992097.
        assert!((c.lr_at(9) - 0.134_254_210_369_920_97).abs() < 1e-12);
        // Past the end: the floor 0.1.
        assert!((c.lr_at(10) - 0.1).abs() < 1e-12);
        assert!((c.lr_at(50) - 0.1).abs() < 1e-12);

        // 0.07 * 100 is 7.000000000000001 in f64; the warm-up is still 7 steps,
        // so step 6 is its last (7/7) and step 7 the peak.
        let c = TrainConfig {
            learning_rate: 2.0,
            num_steps: 100,
            lr_warmup_ratio: 0.07,
            ..TrainConfig::default()
        };
        assert!((c.lr_at(5) - 2.0 * 6.0 / 7.0).abs() < 1e-12);
        assert_eq!(c.lr_at(6), 2.0);
        assert_eq!(c.lr_at(7), 2.0);

        // No warm-up, one step: step 0 is the peak.
        let c = TrainConfig {
            learning_rate: 3.0,
            num_steps: 1,
            lr_warmup_ratio: 0.0,
            ..TrainConfig::default()
        };
        assert_eq!(c.lr_at(0), 3.0);
    }

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        // From the FNV reference test suite (Noll): "", "a", "foobar".
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn toml_round_trip_keeps_the_config_and_its_hash() {
        for (name, _) in PRESETS {
            let mut c = preset(name, &["model=/models/x", "temperature=0.7"]);
            c.adv_eps = 1e-6;
            let text = c.to_toml_string();
            let back = TrainConfig::from_toml_str(&text, "saved", &[]).unwrap();
            assert_eq!(back, c, "{name}:\n{text}");
            assert_eq!(back.hash(), c.hash());
            assert_eq!(back.to_toml_string(), text);
            // f32 settings are written in their short form.
            assert!(text.contains("\ntemperature = 0.7\n"), "{text}");
            assert!(text.contains("\nadv_eps = 1e-6\n"), "{text}");
        }
        // Through a file as well.
        let c = preset("tiny-test", &["model=m"]);
        let path = temp_file("saved.toml", &c.to_toml_string());
        let back = TrainConfig::load(Some(&path), &[]);
        std::fs::remove_file(&path).ok();
        assert_eq!(back.unwrap(), c);
    }

    #[test]
    fn hash_is_16_hex_digits_and_changes_with_any_value() {
        let c = preset("cpu-arith-barl", &["model=m"]);
        let h = c.hash();
        assert_eq!(h.len(), 16);
        assert!(h.chars().all(|ch| ch.is_ascii_hexdigit()));
        assert_eq!(
            h,
            format!("{:016x}", fnv1a64(c.to_toml_string().as_bytes()))
        );
        let changed = [
            TrainConfig {
                seed: 1,
                ..c.clone()
            },
            TrainConfig {
                beta: 0.5,
                ..c.clone()
            },
            TrainConfig {
                adv_estimator: AdvEstimator::Grpo,
                ..c.clone()
            },
        ];
        for other in changed {
            assert_ne!(other.hash(), h);
        }
        let mut nested = c.clone();
        nested.eval_data[0].arith.seed = 9;
        assert_ne!(nested.hash(), h);
    }
}
