//! The RL loop of barl, and the synthetic repeat-a-symbol environment.
//!
//! [`synthetic`] reproduces the paper's didactic experiment end to end: a tiny
//! transformer trained from scratch with Markovian RL (GRPO) or BARL, the
//! advantages coming from `barl-core`.

pub mod files;
pub mod math;
pub mod optim;
pub mod synthetic;
pub mod tomlconf;

/// What can go wrong while training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A bad setting, naming the option.
    #[error(transparent)]
    Task(#[from] synthetic::TaskError),
    /// An estimator rejected its input.
    #[error("estimator: {0}")]
    Core(#[from] barl_core::CoreError),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] barl_model::ModelError),
    /// A dataset could not be read or generated (names the config key).
    #[error("{0}")]
    Data(String),
    /// A checkpoint could not be written or read (names the file).
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The tensor library failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A setting or path the user gave is wrong (names the key or flag).
    #[error("{0}")]
    Setting(String),
    /// The training config could not be read or is invalid (names the key).
    #[error(transparent)]
    Config(#[from] math::config::ConfigError),
    /// A data or evaluation file could not be read or written.
    #[error(transparent)]
    Dataset(#[from] barl_math::data::DataError),
    /// A model could not be loaded.
    #[error("loading {}: {source}", .path.display())]
    Load {
        path: std::path::PathBuf,
        source: barl_model::ModelError,
    },
    /// Sampling failed (names what was being sampled).
    #[error("sampling {what}: {source}")]
    Sampling {
        what: String,
        source: barl_model::ModelError,
    },
    /// A run file could not be written or read.
    #[error("{}: {source}", .path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A rollout server failed (names its URL).
    #[error(transparent)]
    Server(#[from] math::vllm::ServerError),
    /// A benchmark's own check of its measurement failed.
    #[error("benchmark: {0}")]
    Bench(String),
    /// Training stopped: too many steps in a row had non-finite losses.
    #[error("{0}")]
    Diverged(String),
    /// The user asked the run to stop (Ctrl-C); its last step is saved.
    #[error("interrupted after step {step}; checkpoint {}", .checkpoint.display())]
    Interrupted {
        step: usize,
        checkpoint: std::path::PathBuf,
    },
}

impl TrainError {
    /// Whether the user's input (a setting, a path, a config key) is at fault,
    /// rather than the run itself.
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Setting(_) | Self::Config(_) | Self::Task(_))
    }
}
