//! What barl draws and tabulates from its output files:
//!
//! - [`plot`]: charts of curves with seed bands, PNG and SVG;
//! - [`report`]: the HTML page of a training run;
//! - [`eval_table`]: the per-benchmark summary of `barl eval`;
//! - [`synthetic`]: the synthetic experiment's metrics lines, plots and table;
//! - [`reflections`], [`value`], [`efficiency`]: the analyses of evaluation
//!   files (reflection phrases, Bayesian value along responses, pass@k
//!   against tokens).
//!
//! Every chart uses one palette and one embedded font (`plot.rs`).

pub mod efficiency;
pub mod eval_table;
pub mod plot;
pub mod reflections;
pub mod report;
pub mod synthetic;
pub mod value;

use std::path::PathBuf;

/// Why a report, plot or analysis could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The input the user named is wrong (a missing run folder, an empty
    /// file, an unknown plot format); the message names it.
    #[error("{0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A chart could not be drawn.
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
    /// An output file could not be written atomically.
    #[error(transparent)]
    Write(#[from] barl_train::TrainError),
    /// An estimator rejected its input (names the problem).
    #[error("{what}: {source}")]
    Core {
        what: String,
        source: barl_core::CoreError,
    },
}

impl ReportError {
    /// Whether the user's input is at fault (exit code 2 in the CLI).
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Input(_))
    }
}
