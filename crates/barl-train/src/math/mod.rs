//! RL on math problems with a language model: configuration, hypotheses and
//! answer probes (spec sections 4-5), one RL step, the training loop, held-out evaluation, checkpoints.

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod engine;
pub mod eval;
pub mod eval_settings;
pub mod hypotheses;
pub mod metrics;
pub mod probe;
pub mod step;
pub mod trainer;
pub mod vllm;
pub mod vllm_rollout;
