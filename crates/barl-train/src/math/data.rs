//! Problems for training and held-out evaluation, from a [`DataSpec`].

use std::path::{Path, PathBuf};

use barl_math::arith;
use barl_math::data::{
    find_data_dir, load_benchmark_with, load_generic, LoadOptions, Problem, BENCHMARKS,
};

use super::config::DataSpec;
use crate::TrainError;

/// The short name of a data source: `arith`, the benchmark, or the file stem.
pub fn source_name(spec: &DataSpec) -> String {
    if spec.source == "arith" || BENCHMARKS.contains(&spec.source.as_str()) {
        return spec.source.clone();
    }
    Path::new(&spec.source)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.source.clone())
}

/// The problems of `spec` (only those with a gold answer), at most `limit`.
///
/// `arith` generates problems `offset..offset + count`; a benchmark name reads
/// it from `data_dir`; anything else is a JSONL/parquet file read with the
/// spec's `input_key` and `label_key`. `what` names the config key in errors.
pub fn load_problems(
    spec: &DataSpec,
    data_dir: &Path,
    what: &str,
) -> Result<Vec<Problem>, TrainError> {
    let bad = |m: String| TrainError::Data(format!("{what}: {m}"));
    let mut problems = if spec.source == "arith" {
        spec.arith.validate().map_err(|e| bad(e.to_string()))?;
        let end = spec
            .offset
            .checked_add(spec.count)
            .ok_or_else(|| bad("offset + count overflows".into()))?;
        arith::generate(&spec.arith, spec.offset..end).map_err(|e| bad(e.to_string()))?
    } else if BENCHMARKS.contains(&spec.source.as_str()) {
        if data_dir.as_os_str().is_empty() {
            let why = find_data_dir(None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            return Err(bad(format!(
                "source `{}` is a benchmark: {why}",
                spec.source
            )));
        }
        load_benchmark_with(&spec.source, data_dir, &LoadOptions::default())
            .map_err(|e| bad(e.to_string()))?
            .problems
    } else {
        let path = PathBuf::from(&spec.source);
        if !path.is_file() {
            return Err(bad(format!(
                "source `{}` is neither `arith`, a benchmark ({}) nor a file",
                spec.source,
                BENCHMARKS.join(", ")
            )));
        }
        let opts = LoadOptions {
            strip_instruction: true,
            ..LoadOptions::default()
        };
        load_generic(&path, &spec.input_key, &spec.label_key, &opts)
            .map_err(|e| bad(e.to_string()))?
            .problems
    };
    problems.retain(|p| p.has_gold());
    if spec.limit > 0 {
        problems.truncate(spec.limit);
    }
    if problems.is_empty() {
        return Err(bad(format!(
            "`{}` has no problems with an answer",
            spec.source
        )));
    }
    Ok(problems)
}

/// The data folder by [`find_data_dir`]'s order (`data_dir` of the config,
/// `$BARL_DATA_DIR`, the checkout's `data/`, `~/.cache/barl/data`), or empty when
/// there is none (an error only once a benchmark is named).
pub fn resolve_data_dir(configured: &Path) -> PathBuf {
    find_data_dir(Some(configured)).unwrap_or_default()
}
