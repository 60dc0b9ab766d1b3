//! `barl data`: the named benchmarks and training sets on this machine
//! (`list`, `verify`) and getting them (`download`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use barl_fetch::sets::{default_endpoint, download, status, SetStatus, Source};
use barl_math::data::catalog::{data_set, DataSet, DATA_SETS};
use barl_math::data::find_data_dir;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::UsageError;

#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Each known set: rows, the folder it is read from, whether its checksum is right, and where it can be downloaded from
    List(FolderArgs),
    /// Check the SHA-256 of each set (or of the NAMEs given); fails if any is missing or different
    Verify(VerifyArgs),
    /// Download sets (NAME... or `all`) into --to: resumes a partial file, verifies the checksum, installs by rename
    Download(DownloadArgs),
}

#[derive(Args, Debug)]
pub struct FolderArgs {
    /// The data folder [$BARL_DATA_DIR, else the checkout's data/, else ~/.cache/barl/data]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Sets to check [all]
    pub names: Vec<String>,
    #[command(flatten)]
    pub folder: FolderArgs,
}

#[derive(Args, Debug)]
pub struct DownloadArgs {
    /// Sets to download, or `all`
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Folder to download into (found afterwards by every command when it is the default) [~/.cache/barl/data]
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// Hugging Face Hub endpoint, e.g. a mirror [$HF_ENDPOINT, else https://huggingface.co]
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Hub revision (branch, tag or commit) of the source files
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// Instead of the Hub: the URL of a served barl data/ folder (files fetched as URL/benchmarks/NAME.jsonl)
    #[arg(long, conflicts_with = "endpoint")]
    pub from: Option<String>,
    /// Hide the progress bar
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: &DataArgs) -> Result<()> {
    match &args.command {
        DataCommand::List(a) => list(a),
        DataCommand::Verify(a) => verify(a),
        DataCommand::Download(a) => get(a),
    }
}

fn folder(given: Option<&Path>) -> Result<PathBuf> {
    find_data_dir(given).map_err(|e| {
        UsageError(format!(
            "{e}\n(`barl data download all` fetches the sets into ~/.cache/barl/data)"
        ))
        .into()
    })
}

fn describe(state: &SetStatus, set: &DataSet) -> String {
    match state {
        SetStatus::Ok => "ok".into(),
        SetStatus::Missing => "missing".into(),
        SetStatus::Differs { sha256, bytes } => format!(
            "DIFFERS (sha256 {}…, {bytes} bytes; expected {}…, {} bytes)",
            &sha256[..12],
            &set.sha256[..12],
            set.bytes
        ),
        SetStatus::Unreadable(e) => format!("UNREADABLE ({e})"),
    }
}

fn list(args: &FolderArgs) -> Result<()> {
    let dir = folder(args.data_dir.as_deref())?;
    println!("data folder: {}", dir.display());
    println!(
        "{:<14} {:>6}  {:<32} {:<9} source",
        "set", "rows", "file", "checksum"
    );
    for set in DATA_SETS {
        let (_, state) = status(&dir, set);
        let source = set
            .hub
            .map_or("shipped only (see data/README.md)".into(), |h| {
                format!("hub:{}/{}", h.repo, h.path)
            });
        println!(
            "{:<14} {:>6}  {:<32} {:<9} {source}",
            set.name,
            set.rows,
            set.file,
            describe(&state, set)
        );
    }
    Ok(())
}

fn chosen(names: &[String]) -> Result<Vec<&'static DataSet>> {
    if names.is_empty() || names.iter().any(|n| n == "all") {
        return Ok(DATA_SETS.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            data_set(n).ok_or_else(|| {
                let known: Vec<&str> = DATA_SETS.iter().map(|d| d.name).collect();
                UsageError(format!(
                    "unknown data set `{n}` (known: {}, or all)",
                    known.join(", ")
                ))
                .into()
            })
        })
        .collect()
}

fn verify(args: &VerifyArgs) -> Result<()> {
    let dir = folder(args.folder.data_dir.as_deref())?;
    let sets = chosen(&args.names)?;
    let mut bad = 0;
    for set in &sets {
        let (path, state) = status(&dir, set);
        if state != SetStatus::Ok {
            bad += 1;
        }
        println!(
            "{:<14} {}  {}",
            set.name,
            describe(&state, set),
            path.display()
        );
    }
    if bad > 0 {
        anyhow::bail!(
            "{bad} of {} set(s) in {} are missing or not the expected bytes (`barl data download NAME` fetches one again)",
            sets.len(),
            dir.display()
        );
    }
    println!("all {} set(s) verified in {}", sets.len(), dir.display());
    Ok(())
}

fn get(args: &DownloadArgs) -> Result<()> {
    let sets = chosen(&args.names)?;
    let to = match &args.to {
        Some(t) => t.clone(),
        None => PathBuf::from(
            std::env::var_os("HOME")
                .ok_or_else(|| UsageError("HOME is not set: give the folder with --to".into()))?,
        )
        .join(".cache/barl/data"),
    };
    let source = match &args.from {
        Some(base) => Source::DataFolder(base.clone()),
        None => Source::Hub {
            endpoint: args.endpoint.clone().unwrap_or_else(default_endpoint),
            revision: args.revision.clone(),
        },
    };
    let mut failed = Vec::new();
    for set in sets {
        if status(&to, set).1 == SetStatus::Ok {
            println!("{}: already in {} (checksum ok)", set.name, to.display());
            continue;
        }
        let bar = bytes_bar(args.quiet, set.name);
        let result = download(set, &to, &source, &mut |done, total| {
            if let Some(t) = total {
                bar.set_length(t);
            }
            bar.set_position(done);
        });
        bar.finish_and_clear();
        match result {
            Ok(f) => {
                let resumed = if f.resumed_from > 0 {
                    format!(", resumed at byte {}", f.resumed_from)
                } else {
                    String::new()
                };
                println!(
                    "{}: {} bytes, checksum ok{resumed} -> {}",
                    set.name,
                    f.bytes,
                    to.join(set.file).display()
                );
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed.push(set.name);
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("not downloaded: {}", failed.join(", "));
    }
    Ok(())
}

fn bytes_bar(quiet: bool, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {bytes}/{total_bytes}, {elapsed} (eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    bar
}
