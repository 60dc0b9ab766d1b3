//! barl's named data sets on disk: whether each is there and intact, and
//! getting one from the Hub or from a served copy of a barl `data/` folder.

use std::path::{Path, PathBuf};

use barl_math::data::catalog::DataSet;

use crate::{fetch, FetchError, Fetched};

/// The Hub, unless `$HF_ENDPOINT` names a mirror (as for `huggingface_hub`).
pub fn default_endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "https://huggingface.co".to_string())
}

/// The state of one set in a data folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetStatus {
    /// Present with the catalogue's checksum.
    Ok,
    Missing,
    /// Present with other bytes.
    Differs {
        sha256: String,
        bytes: u64,
    },
    Unreadable(String),
}

/// Where a set sits in `dir` and its state there.
pub fn status(dir: &Path, set: &DataSet) -> (PathBuf, SetStatus) {
    let path = dir.join(set.file);
    if !path.exists() {
        return (path, SetStatus::Missing);
    }
    let state = match crate::sha256_file(&path) {
        Ok(sum) if sum == set.sha256 => SetStatus::Ok,
        Ok(sha256) => SetStatus::Differs {
            sha256,
            bytes: std::fs::metadata(&path).map_or(0, |m| m.len()),
        },
        Err(e) => SetStatus::Unreadable(e.to_string()),
    };
    (path, state)
}

/// Where to download from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A Hub (or Hub mirror) endpoint and revision: the set's public file.
    Hub { endpoint: String, revision: String },
    /// The URL of a served barl `data/` folder: `{base}/{file}`.
    DataFolder(String),
}

/// Why a set could not be downloaded.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    #[error(
        "`{name}` is not published on the Hub in barl's format byte for byte; copy it from a barl checkout's data/ or use --from URL (a served copy of a barl data/ folder)"
    )]
    NoHubFile { name: String },
    #[error("`{name}`: {source}")]
    Fetch { name: String, source: FetchError },
}

/// The URL a set is fetched from, or why there is none.
pub fn url_for(set: &DataSet, source: &Source) -> Result<String, SetError> {
    match source {
        Source::Hub { endpoint, revision } => set
            .hub
            .map(|h| h.url(endpoint, revision))
            .ok_or_else(|| SetError::NoHubFile {
                name: set.name.to_string(),
            }),
        Source::DataFolder(base) => Ok(format!("{}/{}", base.trim_end_matches('/'), set.file)),
    }
}

/// Downloads `set` into `dir` (see [`fetch`]).
pub fn download(
    set: &DataSet,
    dir: &Path,
    source: &Source,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<Fetched, SetError> {
    let url = url_for(set, source)?;
    fetch(&url, &dir.join(set.file), set.sha256, progress).map_err(|source| SetError::Fetch {
        name: set.name.to_string(),
        source,
    })
}
