//! RL on math problems with a language model: configuration, hypotheses and
//! answer probes (spec sections 4-5), one RL step, checkpoints.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod hypotheses;
pub mod probe;
pub mod step;
