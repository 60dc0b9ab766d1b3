//! The paper's didactic experiment: repeat-a-symbol with feedback, Markovian
//! RL against BARL (spec section 8).

pub mod experiment;
pub mod rollout;
pub mod task;
pub mod trainer;
pub mod values;

pub use experiment::{run_experiment, summarize, MetricStats, Summary};
pub use task::{Prior, TaskConfig, TaskError};
pub use trainer::{
    BarlBaseline, EvalMetrics, Method, ModelShape, RunResult, StepMetrics, SyntheticConfig,
};
pub use values::Credence;
