//! Math datasets: one [`Problem`] type and loaders for the benchmark and training
//! files in `shared/data`, plus a generic JSONL / parquet reader for user data.
//!
//! Every file is read as published. What each loader takes as the question and
//! the gold answer (see `shared/data/README.md` for the field layouts):
//!
//! | name | file | question | gold | id |
//! |---|---|---|---|---|
//! | `gsm8k`, `gsm8k_train` | `gsm8k.jsonl`, `gsm8k_train.jsonl` | `question` | text after the last `#### `, trimmed, kept as written (thousands commas stay: `2,125`; the graders strip them) | index |
//! | `math500` | `math500.jsonl` | `problem` | `answer` | `unique_id` |
//! | `aime24` | `aime24.jsonl` | `problem` | `answer` with leading zeros dropped (`"025"` -> `"25"`) | `id` |
//! | `aime25` | `aime25.jsonl` | `prompt` without its trailing `\boxed{}` instruction | `answer` (integer) | index |
//! | `amc23` | `amc23.jsonl` | `problem` | `answer` as a float written without `.0` (`27.0` -> `"27"`) | `id` |
//! | `minerva_math` | `minerva_math.jsonl` | `problem` | content of the last `\boxed{}` in `solution` | `idx` |
//! | `olympiadbench` | `olympiadbench.jsonl` | `question` (after `context` when there is one) | first element of `final_answer`, `$` delimiters removed | `id` |
//! | `college_math` | `college_math.jsonl` | `question` | `answer`, `$` delimiters removed (`$10-4 n$` -> `10-4 n`) | index |
//! | `math_train` | `math_train.parquet` | last user message of `prompt`, its trailing instruction removed | `reward_model.ground_truth` | index |
//!
//! Ids are `<benchmark>/<key>` where the key is the dataset's own unique id when
//! it has one, else the 0-based position of the record in the file (blank lines
//! do not count; bad lines do, so skipping one never renumbers the rest). Ids are
//! therefore stable across runs, and a repeated own id is a load error.
//!
//! Prompts that already carry a "put your final answer within `\boxed{}`"
//! instruction (AIME25, the verl training file) have it removed from
//! [`Problem::question`] and recorded in `meta["instruction"]`, so that
//! [`crate::prompt`] adds the configured instruction exactly once.
//!
//! Two rows of `math_train.parquet` have an empty ground truth. They are kept (the
//! file has 7500 rows and ids stay positional) but flagged with
//! `meta["empty_gold"] = true` and counted in [`Loaded::empty_gold`]; callers
//! that train or evaluate should drop them ([`Problem::has_gold`]).
//!
//! A malformed record is a [`DataError`] naming the file and the 1-based line
//! (or parquet row) and what was wrong; with [`LoadOptions::skip_bad`] such
//! records are skipped and returned in [`Loaded::skipped`] instead. Invalid UTF-8
//! on a line is a malformed line. No input makes a loader panic.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub mod catalog;
mod locate;
pub use locate::{fallback_dirs, find_data_dir, DATA_DIR_ENV};

/// One math problem with its gold answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable id, `<benchmark>/<key>` (see the module docs).
    pub id: String,
    /// Registry name (`gsm8k`, ...) or, for generic files, the file stem.
    pub benchmark: String,
    /// The problem text, without any answer-format instruction.
    pub question: String,
    /// The gold final answer (empty only for flagged rows, see [`Problem::has_gold`]).
    pub gold: String,
    /// Optional extras: `level`, `subject`, `solution`, `raw_answer` (the gold
    /// as written when it was rewritten), `instruction`, `empty_gold`, ...
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
}

impl Problem {
    /// False for records whose gold answer is empty (flagged `empty_gold`).
    pub fn has_gold(&self) -> bool {
        !self.gold.trim().is_empty()
    }
}

/// How loaders treat malformed records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Skip malformed lines/rows (returned in [`Loaded::skipped`]) instead of
    /// failing on the first one.
    pub skip_bad: bool,
    /// Generic files only: remove a trailing "... final answer within
    /// `\boxed{}`" instruction from the input (recorded in `meta["instruction"]`).
    /// The registry loaders always do this where the file carries one.
    pub strip_instruction: bool,
}

/// Problems read from one file, with what was skipped.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The problems, in file order.
    pub problems: Vec<Problem>,
    /// One error per skipped record (only with [`LoadOptions::skip_bad`]).
    pub skipped: Vec<DataError>,
    /// How many problems have an empty gold answer (kept, flagged).
    pub empty_gold: usize,
}

/// A data file that could not be read, or one bad record in it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    // The io error is part of the message, not a `source`, so that printing
    // the error chain does not repeat it.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// One line of a JSONL file is malformed (`line` is 1-based).
    #[error("{}:{line}: {msg}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    /// One row of a parquet file is malformed (`row` is 1-based).
    #[error("{}: row {row}: {msg}", path.display())]
    Row {
        path: PathBuf,
        row: usize,
        msg: String,
    },
    /// The file as a whole is unreadable (not parquet, truncated, ...).
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    /// A benchmark name not in [`BENCHMARKS`].
    #[error("unknown benchmark `{name}` (known: {})", BENCHMARKS.join(", "))]
    UnknownBenchmark { name: String },
    /// No data folder in any of the places [`find_data_dir`] looks.
    #[error(
        "no data folder with the benchmarks found; looked at: {looked}. Run barl from its \
         checkout (it ships data/), pass --data-dir DIR (data_dir = \"DIR\" in a config) \
         or set BARL_DATA_DIR"
    )]
    NoDataDir { looked: String },
}

/// Why one record could not be read: the message of a [`DataError::Line`] or
/// [`DataError::Row`], naming the key at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("invalid UTF-8 at byte {byte}")]
    InvalidUtf8 { byte: usize },
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("expected a JSON object, found {found}")]
    NotAnObject { found: &'static str },
    /// A parquet row the reader could not decode.
    #[error("cannot decode row: {0}")]
    Undecodable(String),
    #[error("missing key `{0}`")]
    MissingKey(String),
    #[error("key `{key}` is {found}, expected {expected}")]
    WrongType {
        key: String,
        found: &'static str,
        expected: &'static str,
    },
    #[error("key `{key}` {problem}")]
    Malformed { key: String, problem: ValueProblem },
    #[error("duplicate id `{0}`")]
    DuplicateId(String),
    /// A line of an eval file that does not have the record's fields.
    #[error("not an eval record: {0}")]
    NotAnEvalRecord(String),
    /// An eval record whose parallel lists differ in length.
    #[error("`{field}` has {len} entries but `responses` has {responses}")]
    Lengths {
        field: &'static str,
        len: usize,
        responses: usize,
    },
}

/// What is wrong with a value of the right kind.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueProblem {
    #[error("is {found}, expected {expected}")]
    Kind {
        found: &'static str,
        expected: &'static str,
    },
    #[error("is an empty list")]
    EmptyList,
    #[error("has a first list element that is {0}")]
    FirstElement(&'static str),
    #[error("has a user message whose content is {0}")]
    UserContent(&'static str),
    #[error("has no user message with a `content`")]
    NoUserMessage,
    #[error("has no `#### ` final-answer marker")]
    NoFinalMarker,
    #[error("has no complete `\\boxed{{...}}`")]
    NoBoxed,
}

fn wrong_type(key: &str, found: &Value, expected: &'static str) -> RecordError {
    RecordError::WrongType {
        key: key.to_string(),
        found: kind(found),
        expected,
    }
}

fn malformed(key: &str, problem: ValueProblem) -> RecordError {
    RecordError::Malformed {
        key: key.to_string(),
        problem,
    }
}

/// The names [`load_benchmark`] knows, evaluation sets first.
pub const BENCHMARKS: &[&str] = &[
    "gsm8k",
    "math500",
    "aime24",
    "aime25",
    "amc23",
    "minerva_math",
    "olympiadbench",
    "college_math",
    "gsm8k_train",
    "math_train",
];

/// Path of a registry benchmark: `data_dir/benchmarks/<file>` (or
/// `data_dir/train/<file>`), falling back to `data_dir/<file>` when `data_dir`
/// is that folder itself.
pub fn benchmark_path(name: &str, data_dir: &Path) -> Result<PathBuf, DataError> {
    let rel =
        catalog::data_set(name)
            .map(|d| d.file)
            .ok_or_else(|| DataError::UnknownBenchmark {
                name: name.to_string(),
            })?;
    let full = data_dir.join(rel);
    if !full.exists() {
        if let Some(file) = Path::new(rel).file_name() {
            let flat = data_dir.join(file);
            if flat.exists() {
                return Ok(flat);
            }
        }
    }
    Ok(full)
}

/// Loads a registry benchmark, failing on the first malformed record.
pub fn load_benchmark(name: &str, data_dir: &Path) -> Result<Vec<Problem>, DataError> {
    Ok(load_benchmark_with(name, data_dir, &LoadOptions::default())?.problems)
}

/// Loads a registry benchmark with options (skip bad records, see [`Loaded`]).
pub fn load_benchmark_with(
    name: &str,
    data_dir: &Path,
    opts: &LoadOptions,
) -> Result<Loaded, DataError> {
    let path = benchmark_path(name, data_dir)?;
    let parse: RecordParser = match name {
        "gsm8k" | "gsm8k_train" => parse_gsm8k,
        "math500" => parse_math500,
        "aime24" => parse_aime24,
        "aime25" => parse_aime25,
        "amc23" => parse_amc23,
        "minerva_math" => parse_minerva,
        "olympiadbench" => parse_olympiadbench,
        "college_math" => parse_college_math,
        "math_train" => parse_verl,
        _ => {
            return Err(DataError::UnknownBenchmark {
                name: name.to_string(),
            })
        }
    };
    load_records(&path, name, opts, parse)
}

/// Reads user data: JSONL (one object per line) or parquet (by the `.parquet`
/// extension or the `PAR1` magic). `input_key` and `label_key` may be dotted
/// paths into nested objects (`reward_model.ground_truth`); a literal key that
/// contains the dot wins. An input that is a list of chat messages gives the
/// content of its last `user` message. A label may be a string, a number (`27.0`
/// -> `"27"`) or a list (its first element). The benchmark name is the file stem,
/// and ids are `<stem>/<index>`.
pub fn load_generic(
    path: &Path,
    input_key: &str,
    label_key: &str,
    opts: &LoadOptions,
) -> Result<Loaded, DataError> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".to_string());
    let strip = opts.strip_instruction;
    load_records(path, &stem, opts, |obj| {
        let mut question = input_text(get(obj, input_key)?).map_err(|p| malformed(input_key, p))?;
        let gold = label_text(get(obj, label_key)?).map_err(|p| malformed(label_key, p))?;
        let mut meta = Map::new();
        if strip {
            if let Some((q, instr)) = split_instruction(&question) {
                meta.insert("instruction".into(), Value::String(instr));
                question = q;
            }
        }
        Ok(Parsed {
            own_id: None,
            question,
            gold,
            meta,
        })
    })
}

// ---------------------------------------------------------------------------
// Reading records

/// What a per-format parser returns for one record.
struct Parsed {
    /// The dataset's own unique id, when it has one.
    own_id: Option<String>,
    question: String,
    gold: String,
    meta: Map<String, Value>,
}

type RecordParser = fn(&Map<String, Value>) -> Result<Parsed, RecordError>;

/// Where a record sits in its file, for error messages.
#[derive(Clone, Copy)]
enum Pos {
    Line(usize),
    Row(usize),
}

fn record_error(path: &Path, pos: Pos, err: RecordError) -> DataError {
    let msg = err.to_string();
    match pos {
        Pos::Line(line) => DataError::Line {
            path: path.to_path_buf(),
            line,
            msg,
        },
        Pos::Row(row) => DataError::Row {
            path: path.to_path_buf(),
            row,
            msg,
        },
    }
}

/// Reads every record of a JSONL or parquet file as a JSON object and turns it
/// into a [`Problem`] with `parse`; handles ids, duplicates and `skip_bad`.
fn load_records(
    path: &Path,
    benchmark: &str,
    opts: &LoadOptions,
    mut parse: impl FnMut(&Map<String, Value>) -> Result<Parsed, RecordError>,
) -> Result<Loaded, DataError> {
    let io_err = |error| DataError::Io {
        path: path.to_path_buf(),
        error,
    };
    let records = if path.extension().is_some_and(|e| e == "parquet") {
        parquet_records(path, std::fs::File::open(path).map_err(io_err)?)?
    } else {
        let bytes = std::fs::read(path).map_err(io_err)?;
        if bytes.starts_with(b"PAR1") {
            parquet_records(path, std::fs::File::open(path).map_err(io_err)?)?
        } else {
            jsonl_records(&bytes)
        }
    };

    let mut out = Loaded::default();
    let mut seen = HashSet::new();
    for (index, (pos, record)) in records.into_iter().enumerate() {
        let result = record.and_then(|obj| {
            let p = parse(&obj)?;
            let key = p.own_id.unwrap_or_else(|| index.to_string());
            let id = format!("{benchmark}/{key}");
            if !seen.insert(id.clone()) {
                return Err(RecordError::DuplicateId(id));
            }
            Ok(Problem {
                id,
                benchmark: benchmark.to_string(),
                question: p.question,
                gold: p.gold,
                meta: p.meta,
            })
        });
        match result {
            Ok(mut problem) => {
                if !problem.has_gold() {
                    problem.meta.insert("empty_gold".into(), Value::Bool(true));
                    out.empty_gold += 1;
                }
                out.problems.push(problem);
            }
            Err(msg) => {
                let err = record_error(path, pos, msg);
                if opts.skip_bad {
                    out.skipped.push(err);
                } else {
                    return Err(err);
                }
            }
        }
    }
    Ok(out)
}

type Record = (Pos, Result<Map<String, Value>, RecordError>);

/// Splits JSONL bytes into lines (blank lines ignored) and parses each as a
/// JSON object.
fn jsonl_records(bytes: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = match std::str::from_utf8(raw) {
            Err(e) => Err(RecordError::InvalidUtf8 {
                byte: e.valid_up_to(),
            }),
            Ok(text) => match serde_json::from_str::<Value>(text) {
                Err(e) => Err(RecordError::InvalidJson(e.to_string())),
                Ok(Value::Object(obj)) => Ok(obj),
                Ok(other) => Err(RecordError::NotAnObject {
                    found: kind(&other),
                }),
            },
        };
        out.push((Pos::Line(i + 1), parsed));
    }
    out
}

// ---------------------------------------------------------------------------
// Field access helpers (errors are plain messages; the caller adds file:line)

/// A JSON value's type, for error messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `key` in `obj`: the literal key first, then as a dotted path.
fn lookup<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if let Some(v) = obj.get(key) {
        return Some(v);
    }
    let mut parts = key.split('.');
    let mut cur = obj.get(parts.next()?)?;
    for part in parts {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a Value, RecordError> {
    lookup(obj, key).ok_or_else(|| RecordError::MissingKey(key.to_string()))
}

fn get_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str, RecordError> {
    match get(obj, key)? {
        Value::String(s) => Ok(s),
        other => Err(wrong_type(key, other, "a string")),
    }
}

/// A JSON number as an answer string: integers as written, integral floats
/// without the `.0` (`27.0` -> `27`), other floats in shortest form (`0.5`).
fn number_text(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        Some(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
        Some(x) => format!("{x}"),
        None => n.to_string(),
    }
}

/// A question: a string, or a chat-message list (last `user` message's content).
fn input_text(v: &Value) -> Result<String, ValueProblem> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(msgs) => {
            let user = msgs
                .iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"));
            match user.and_then(|m| m.get("content")) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(ValueProblem::UserContent(kind(other))),
                None => Err(ValueProblem::NoUserMessage),
            }
        }
        other => Err(ValueProblem::Kind {
            found: kind(other),
            expected: "a string or chat messages",
        }),
    }
}

/// A label: a string (trimmed), a number, or a list (its first element).
fn label_text(v: &Value) -> Result<String, ValueProblem> {
    match v {
        Value::String(s) => Ok(s.trim().to_string()),
        Value::Number(n) => Ok(number_text(n)),
        Value::Array(items) => match items.first() {
            Some(first @ (Value::String(_) | Value::Number(_))) => label_text(first),
            Some(other) => Err(ValueProblem::FirstElement(kind(other))),
            None => Err(ValueProblem::EmptyList),
        },
        other => Err(ValueProblem::Kind {
            found: kind(other),
            expected: "a string or number",
        }),
    }
}

/// A dataset's own id field as a string (integers or strings).
fn own_id(obj: &Map<String, Value>, key: &str) -> Result<String, RecordError> {
    match get(obj, key)? {
        Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        other => Err(wrong_type(key, other, "an id")),
    }
}

/// Copies the listed optional keys into `meta` when present and not null.
fn copy_meta(obj: &Map<String, Value>, keys: &[&str], meta: &mut Map<String, Value>) {
    for &key in keys {
        if let Some(v) = lookup(obj, key).filter(|v| !v.is_null()) {
            meta.insert(key.to_string(), v.clone());
        }
    }
}

/// Removes the `$` math delimiters (not the escaped `\$`) and trims.
fn strip_dollars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev = '\0';
    for c in s.chars() {
        if c != '$' || prev == '\\' {
            out.push(c);
        }
        prev = c;
    }
    out.trim().to_string()
}

/// Opening words of the answer-format instructions that some files append.
const INSTRUCTION_STARTS: &[&str] = &[
    "Please reason step by step",
    "Let's think step by step",
    "Let\u{2019}s think step by step",
    "Please put your final answer",
    "Put your final answer",
];

/// Splits a trailing "... final answer within `\boxed{}`" instruction off a
/// prompt: `(question, instruction)`, or `None` when there is none.
pub fn split_instruction(text: &str) -> Option<(String, String)> {
    let trimmed = text.trim_end();
    let start = INSTRUCTION_STARTS
        .iter()
        .filter_map(|s| trimmed.rfind(s))
        .max()?;
    let instruction = &trimmed[start..];
    let question = trimmed[..start].trim_end();
    if !instruction.contains("\\boxed") || question.is_empty() {
        return None;
    }
    Some((question.to_string(), instruction.to_string()))
}

// ---------------------------------------------------------------------------
// Per-benchmark parsers

fn plain(question: &str, gold: String, meta: Map<String, Value>) -> Parsed {
    Parsed {
        own_id: None,
        question: question.to_string(),
        gold,
        meta,
    }
}

fn parse_gsm8k(obj: &Map<String, Value>) -> Result<Parsed, RecordError> {
    let question = get_str(obj, "question")?;
    let answer = get_str(obj, "answer")?;
    let (_, gold) = answer
        .rsplit_once("####")
        .ok_or_else(|| malformed("answer", ValueProblem::NoFinalMarker))?;
    let mut meta = Map::new();
    meta.insert("solution".into(), Value::String(answer.to_string()));
    Ok(plain(question, gold.trim().to_string(), meta))
}

fn parse_math500(obj: &Map<String, Value>) -> Result<Parsed, RecordError> {
    let mut meta = Map::new();
    copy_meta(obj, &["level", "subject", "solution"], &mut meta);
    Ok(Parsed {
        own_id: Some(own_id(obj, "unique_id")?),
        question: get_str(obj, "problem")?.to_string(),
        gold: get_str(obj, "answer")?.trim().to_string(),
        meta,
    })
}

fn parse_aime24(obj: &Map<String, Value>) -> Result<Parsed, RecordError> {
    let raw = label_text(get(obj, "answer")?).map_err(|p| malformed("answer", p))?;
    // "025" -> "25": AIME answers are integers 0..=999, zero-padded in this file.
    let gold = if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        let t = raw.trim_start_matches('0');
        if t.is_empty() { "0" } else { t }.to_string()
    } else {
        raw.clone()
    };
    let mut meta = Map::new();
    if gold != raw {
        meta.insert("raw_answer".into(), Value::String(raw));
    }
    copy_meta(obj, &["solution", "url"], &mut meta);
    Ok(Parsed {
        own_id: Some(own_id(obj, "id")?),
        question: get_str(obj, "problem")?.to_string(),
        gold,
        meta,
    })
}

fn parse_aime25(obj: &Map<String, Value>) -> Result<Parsed, RecordError> {
    let prompt = get_str(obj, "prompt")?;
    let gold = label_text(get(obj, "answer")?).map_err(|p| malformed("answer", p))?;
    let mut meta = Map::new();
    let question = match split_instruction(prompt) {
        Some((q, instr)) => {
            meta.insert("instruction".into(), Value::String(instr));
            q
        }
        None => prompt.to_string(),
    };
    Ok(plain(&question, gold, meta))
}

fn parse_amc23(obj: &Map<String, Value>) -> Result<Parsed, RecordError> {
    let gold = match get(obj, "answer")? {
        Value::Number(n) => number_text(n),
        Value::String(s) => s.trim().to_string(),
        other => return Err(wrong_type("answer", other, "a number")),
    };
    let mut meta = Map::new();
    copy_meta(obj, &["url"], &mut meta);
    Ok(Parsed {
        own_id: Some(own_id(obj, "id")?),
        question: get_str(obj, "problem")?.to_string(),
        gold,
        meta,
    })
}

fn parse_minerva(obj: &Map<String, Value>) -> Result<Parsed, RecordError> {
    let solution = get_str(obj, "solution")?;
    let gold = crate::extract::last_boxed(solution)
        .ok_or_else(|| malformed("solution", ValueProblem::NoBoxed))?;
    let mut meta = Map::new();
    copy_meta(obj, &["type", "solution"], &mut meta);
    Ok(Parsed {
        own_id: Some(own_id(obj, "idx")?),
        question: get_str(obj, "problem")?.to_string(),
        gold,
        meta,
    })
}

fn parse_olympiadbench(obj: &Map<String, Value>) -> Result<Parsed, RecordError> {
    let first = match get(obj, "final_answer")? {
        Value::Array(items) => match items.first() {
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(malformed(
                    "final_answer",
                    ValueProblem::FirstElement(kind(other)),
                ))
            }
            None => return Err(malformed("final_answer", ValueProblem::EmptyList)),
        },
        other => return Err(wrong_type("final_answer", other, "a list")),
    };
    let question = get_str(obj, "question")?;
    // A shared context (null in this file) belongs before the question.
    let question = match lookup(obj, "context").and_then(Value::as_str) {
        Some(ctx) if !ctx.trim().is_empty() => format!("{}\n{question}", ctx.trim_end()),
        _ => question.to_string(),
    };
    let gold = strip_dollars(first);
    let mut meta = Map::new();
    meta.insert("raw_answer".into(), Value::String(first.clone()));
    copy_meta(
        obj,
        &[
            "answer_type",
            "is_multiple_answer",
            "unit",
            "subfield",
            "solution",
        ],
        &mut meta,
    );
    Ok(Parsed {
        own_id: Some(own_id(obj, "id")?),
        question,
        gold,
        meta,
    })
}

fn parse_college_math(obj: &Map<String, Value>) -> Result<Parsed, RecordError> {
    let raw = get_str(obj, "answer")?;
    let gold = strip_dollars(raw);
    let mut meta = Map::new();
    if gold != raw {
        meta.insert("raw_answer".into(), Value::String(raw.to_string()));
    }
    copy_meta(
        obj,
        &["data_source", "question_number", "data_topic"],
        &mut meta,
    );
    Ok(plain(get_str(obj, "question")?, gold, meta))
}

/// The verl schema: `prompt` (chat messages), `reward_model.ground_truth`.
fn parse_verl(obj: &Map<String, Value>) -> Result<Parsed, RecordError> {
    let content = input_text(get(obj, "prompt")?).map_err(|p| malformed("prompt", p))?;
    let gold = get_str(obj, "reward_model.ground_truth")?
        .trim()
        .to_string();
    let mut meta = Map::new();
    let question = match split_instruction(&content) {
        Some((q, instr)) => {
            meta.insert("instruction".into(), Value::String(instr));
            q
        }
        None => content,
    };
    copy_meta(obj, &["level", "type", "data_source"], &mut meta);
    Ok(plain(&question, gold, meta))
}

mod parquet_rows;

use parquet_rows::parquet_records;

#[cfg(test)]
mod tests;
