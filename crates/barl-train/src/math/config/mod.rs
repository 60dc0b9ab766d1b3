//! The whole configuration of a `barl train` run (one TOML file, spec section 9
//! for the paper's values).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use barl_core::{AdvEstimator, KlEstimator, LossAggMode};
use barl_math::arith::ArithConfig;
use barl_math::grader::GoldExtract;
use barl_math::prompt::PromptStyle;
use serde::{Deserialize, Serialize};
use toml::Table;

mod presets;

use crate::files::fnv1a64;
pub use crate::tomlconf::ConfigError;
use crate::tomlconf::{from_toml_with, to_table};
pub use presets::{preset_text, Preset, PRESETS};

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

barl_core::named_enum! {
    /// Where the rollouts of a step are sampled.
    #[derive(Default)]
    pub enum RolloutBackend ("rollout backend") {
        /// barl's own engine, in this process.
        #[default]
        Local = "local",
        /// The vLLM servers of `rollout.urls` (see `math::vllm`).
        Vllm = "vllm",
    }
}

barl_core::named_enum! {
    /// How the servers follow the trained weights.
    #[derive(Default)]
    pub enum RolloutSync ("rollout sync") {
        /// After each step the weights are written to `rollout.sync_dir` and
        /// every server reloads them (`reload_weights`).
        #[default]
        Reload = "reload",
        /// With `lora.rank > 0`: after each step the adapter alone is written
        /// to `rollout.sync_dir` and loaded under a fresh name
        /// (`/v1/load_lora_adapter`), the previous one unloaded.
        Lora = "lora",
    }
}

barl_core::named_enum! {
    /// The old log-probs of the PPO ratio with vLLM rollouts.
    #[derive(Default)]
    pub enum OldLogprobs ("old log-probs") {
        /// barl's own forward of the sampled tokens before the update: the
        /// exact ratio; the servers' log-probs are only compared with it.
        #[default]
        Recompute = "recompute",
        /// No extra forward: the update's own forward (detached) is the old
        /// policy, and each token's term is weighted by the truncated
        /// importance ratio `min(pi_barl / pi_server, rollout.tis_cap)` for
        /// the sampler/trainer mismatch. Needs one optimiser step per rollout
        /// batch (`ppo_epochs = 1`, `train_batch_size` >= the completions of
        /// a step), where that forward is the policy that sampled.
        ServerTis = "server-tis",
    }
}

/// The `[rollout]` table: where generation runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutConfig {
    pub backend: RolloutBackend,
    /// vLLM servers (`http://host:port`), prompts spread over them.
    pub urls: Vec<String>,
    pub sync: RolloutSync,
    /// A folder every server can read, where the weights are written for
    /// them (empty: `RUN_DIR/rollout-weights`).
    pub sync_dir: PathBuf,
    /// Seconds one request may take.
    pub timeout_s: f64,
    /// Further tries of a failed request (doubling back-off from 0.5 s).
    pub retries: usize,
    pub old_logprobs: OldLogprobs,
    /// The cap `C` of the truncated importance weight (`server-tis`).
    pub tis_cap: f64,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        Self {
            backend: RolloutBackend::Local,
            urls: Vec::new(),
            sync: RolloutSync::Reload,
            sync_dir: PathBuf::new(),
            timeout_s: 600.0,
            retries: 3,
            old_logprobs: OldLogprobs::Recompute,
            tis_cap: 2.0,
        }
    }
}

impl RolloutConfig {
    /// The defaults are not written to `config.toml`, so the hash of a run
    /// with the local engine is what it was before the table existed.
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The `[lora]` table: train a LoRA adapter on the frozen model instead of
/// all weights (`rank = 0`, the default: full fine-tuning). PEFT's names and
/// meanings (see `barl_model::lora`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraSettings {
    /// `r` (0: off).
    pub rank: usize,
    /// The update is scaled by `alpha / rank`.
    pub alpha: f64,
    /// Dropout on the adapters' input in the update's forwards.
    pub dropout: f64,
    /// `q_proj`, `k_proj`, `v_proj`, `o_proj`, `gate_proj`, `up_proj`,
    /// `down_proj`, or `all-linear`.
    pub target_modules: Vec<String>,
    /// Scale by `alpha / sqrt(rank)` (rsLoRA).
    pub use_rslora: bool,
    /// Sample (and score without gradients) with merged copies `W + s B A`,
    /// refreshed after each update: the fast decode path of a plain model
    /// (2.0-2.8x the tokens/s at batch 1-8 on SmolLM2), for one extra copy of
    /// the adapted weights. Off: the adapter is applied on the fly.
    pub merge_for_sampling: bool,
}

impl Default for LoraSettings {
    fn default() -> Self {
        Self {
            rank: 0,
            alpha: 32.0,
            dropout: 0.0,
            target_modules: vec!["all-linear".into()],
            use_rslora: false,
            merge_for_sampling: true,
        }
    }
}

impl LoraSettings {
    /// Off by default and then left out of `config.toml` (full fine-tuning
    /// runs keep their hash).
    fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The adapter's settings, `None` when `rank = 0`.
    pub fn config(&self) -> Option<barl_model::LoraConfig> {
        (self.rank > 0).then(|| barl_model::LoraConfig {
            rank: self.rank,
            alpha: self.alpha,
            dropout: self.dropout,
            target_modules: self.target_modules.clone(),
            use_rslora: self.use_rslora,
        })
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
    /// Folder with benchmarks/ and train/ (named benchmarks); empty: $BARL_DATA_DIR,
    /// else the checkout's data/, else ~/.cache/barl/data.
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
    /// When the gold answer is extracted like a response first: `auto` (when it
    /// is a `\boxed{}`, a math span or a whole solution), `always` or `never`.
    pub gold_extract: GoldExtract,
    /// Give a response cut off at `max_response_len` the last-number credit
    /// (off: a truncated response has no final answer, and rewarding a number that
    /// happens to come last is a reward a policy can learn to exploit).
    pub credit_truncated: bool,

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
    /// Collapse guard: warn when the policy's mean token entropy reaches this
    /// share of `ln(vocab_size)` (a uniform, destroyed policy is at 1).
    pub collapse_entropy_ratio: f64,
    /// Collapse guard: warn when the gradient norm before clipping exceeds this.
    pub collapse_grad_norm: f64,
    /// Collapse guard: warn when every reward of the batch has been the same for
    /// this many steps in a row (0: never); nothing is learned from such steps.
    pub collapse_equal_reward_steps: usize,
    /// Stop the run (checkpoint saved) when a collapse guard fires, instead of
    /// only warning.
    pub stop_on_collapse: bool,
    pub seed: u64,
    /// Where generation runs (`rollout.backend`, `rollout.urls`, ...).
    #[serde(skip_serializing_if = "RolloutConfig::is_default")]
    pub rollout: RolloutConfig,
    /// Train a LoRA adapter (`lora.rank`, `lora.alpha`, ...) instead of all weights.
    #[serde(skip_serializing_if = "LoraSettings::is_default")]
    pub lora: LoraSettings,
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
            gold_extract: GoldExtract::Auto,
            credit_truncated: false,
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
            collapse_entropy_ratio: 0.9,
            collapse_grad_norm: 1e4,
            collapse_equal_reward_steps: 20,
            stop_on_collapse: false,
            seed: 0,
            rollout: RolloutConfig::default(),
            lora: LoraSettings::default(),
        }
    }
}

/// What a key must match to be known: the defaults as a TOML table, with one
/// default entry in `eval_data` standing for all its entries.
fn schema() -> Table {
    let mut table = to_table(&TrainConfig::default());
    table.insert(
        "eval_data".into(),
        toml::Value::Array(vec![toml::Value::Table(to_table(&DataSpec::default()))]),
    );
    // Left out of the defaults' TOML (see `RolloutConfig::is_default`).
    table.insert(
        "rollout".into(),
        toml::Value::Table(to_table(&RolloutConfig::default())),
    );
    table.insert(
        "lora".into(),
        toml::Value::Table(to_table(&LoraSettings::default())),
    );
    table
}

impl TrainConfig {
    /// Reads a configuration: `path` is a TOML file or `preset:NAME` (see
    /// [`PRESETS`]), `None` for the defaults; then applies each `KEY=VALUE`
    /// override in order. Keys missing from the file keep their defaults.
    ///
    /// Keys and values follow [`crate::tomlconf`] (dotted keys, `eval_data.1.count=50`,
    /// values read as TOML or else as text).
    ///
    /// The result is not validated: see [`TrainConfig::validate`].
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Self::from_toml_str("", "defaults", overrides);
        };
        if let Some(name) = path.to_str().and_then(|s| s.strip_prefix("preset:")) {
            let text = preset_text(name).ok_or_else(|| ConfigError::UnknownPreset {
                name: name.to_string(),
                known: PRESETS
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", "),
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
        from_toml_with(text, origin, overrides, &schema())
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
        let ro = &self.rollout;
        if ro.backend == RolloutBackend::Vllm {
            if ro.urls.is_empty() {
                return invalid(
                    "rollout.urls",
                    "empty; rollout.backend = \"vllm\" needs at least one server URL".into(),
                );
            }
            if let Some(u) = ro
                .urls
                .iter()
                .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
            {
                return invalid(
                    "rollout.urls",
                    format!("{u:?} is not an http:// or https:// URL"),
                );
            }
        }
        if ro.old_logprobs == OldLogprobs::ServerTis {
            let per_step = self.rollout_batch_size * self.n_samples_per_prompt;
            if ro.backend != RolloutBackend::Vllm {
                return invalid(
                    "rollout.old_logprobs",
                    "\"server-tis\" needs rollout.backend = \"vllm\"".into(),
                );
            }
            if self.ppo_epochs != 1 || self.train_batch_size < per_step {
                return invalid(
                    "rollout.old_logprobs",
                    format!(
                        "\"server-tis\" needs one optimiser step per rollout batch: \
                         ppo_epochs = 1 (got {}) and train_batch_size >= {per_step} \
                         (got {})",
                        self.ppo_epochs, self.train_batch_size
                    ),
                );
            }
            if !(ro.tis_cap.is_finite() && ro.tis_cap > 0.0) {
                return invalid(
                    "rollout.tis_cap",
                    format!("must be a positive number, got {}", ro.tis_cap),
                );
            }
        }
        if let Some(lora) = self.lora.config() {
            if let Err(e) = lora.validate() {
                let (key, msg) = e.split_once(": ").unwrap_or(("lora", e.as_str()));
                return invalid(key, msg.to_string());
            }
        }
        if ro.sync == RolloutSync::Lora && self.lora.rank == 0 {
            return invalid(
                "rollout.sync",
                "\"lora\" sends the adapter; it needs lora.rank >= 1".into(),
            );
        }
        if !(ro.timeout_s.is_finite() && ro.timeout_s > 0.0) {
            return invalid(
                "rollout.timeout_s",
                format!("must be a positive number of seconds, got {}", ro.timeout_s),
            );
        }
        if self.adv_estimator == AdvEstimator::Grpo && self.n_samples_per_prompt < 2 {
            return invalid(
                "n_samples_per_prompt",
                "must be at least 2 with adv_estimator = grpo (a group of one completion \
                 has advantage 0, so nothing would be learned)"
                    .into(),
            );
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
            // 1 - clip_ratio_low bounds the ratio from below: at 1 or more nothing is clipped.
            ("clip_ratio_low", self.clip_ratio_low, Range::ClosedOpenUnit),
            ("clip_ratio_high", self.clip_ratio_high, Range::NonNegative),
            (
                "collapse_entropy_ratio",
                self.collapse_entropy_ratio,
                Range::Unit,
            ),
            (
                "collapse_grad_norm",
                self.collapse_grad_norm,
                Range::NonNegative,
            ),
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
        spec.arith.validate().map_err(|e| invalid(e.to_string()))?;
        if spec.count < 1 {
            return Err(invalid("count must be at least 1 for arith".into()));
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests;
