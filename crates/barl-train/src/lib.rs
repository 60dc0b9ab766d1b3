//! The RL loop of barl, and the synthetic repeat-a-symbol environment.
//!
//! [`synthetic`] reproduces the paper's didactic experiment end to end: a tiny
//! transformer trained from scratch with Markovian RL (GRPO) or BARL, the
//! advantages coming from `barl-core`.

pub mod math;
pub mod optim;
pub mod synthetic;

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
}
