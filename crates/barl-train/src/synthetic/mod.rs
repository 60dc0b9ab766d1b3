//! The paper's didactic experiment: repeat-a-symbol with feedback, Markovian
//! RL against BARL (spec section 8).

pub mod config;
pub mod experiment;
pub mod rollout;
pub mod task;
pub mod trainer;
pub mod values;

pub use config::{BarlBaseline, BranchWorld, Method, ModelShape, SyntheticConfig};
pub use experiment::{run_experiment, summarize, MetricStats, Summary};
pub use task::{Prior, TaskConfig, TaskError};
pub use trainer::{EvalMetrics, RunResult, StepMetrics};
pub use values::Credence;
