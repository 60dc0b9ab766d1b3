//! Settings as TOML, the one config system of `barl train` and `barl
//! synthetic`: a file (or none) read into a struct whose every field has a
//! default, then `KEY=VALUE` overrides applied to the TOML tree before it is
//! deserialised, so that every error names the dotted key and where it came
//! from: unknown keys with a "did you mean", ill-typed values with serde's
//! message, syntax errors with line and column.
//!
//! Keys inside tables are dotted (`train_data.arith.max_operand=20`), entries
//! of a list of tables numbered from 0 (`eval_data.1.count=50`). A value is
//! read as TOML (`adam_betas=[0.9,0.99]`, `seed=3`, `instruction="..."`); one
//! that is not valid TOML, or any unquoted value of a text setting, is taken
//! as plain text (`model=/models/x`, `adv_estimator=barl`, `model=2024`).

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Serialize;
use toml::{Table, Value};

/// How errors name the `KEY=VALUE` overrides.
pub const COMMAND_LINE: &str = "command line";

/// Why a configuration was refused. Each message is one line naming the file
/// (or `command line`) and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: TOML syntax error at line {line}, column {column}: {message}")]
    Syntax {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{origin}: unknown key `{key}`{hint}")]
    UnknownKey {
        origin: String,
        key: String,
        /// `"; did you mean `...`?"` or empty.
        hint: String,
    },
    #[error("{origin}: bad value for `{key}`: {message}")]
    BadValue {
        origin: String,
        key: String,
        message: String,
    },
    #[error("bad override `{arg}`: {reason}")]
    BadOverride { arg: String, reason: String },
    #[error("unknown preset `{name}`; known presets: {known}")]
    UnknownPreset { name: String, known: String },
    /// A value that has the right type but breaks a constraint (a config's
    /// `validate`).
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

/// Reads a `T` from TOML `text` (named `origin` in errors), then applies each
/// `KEY=VALUE` override in order. `schema` says which keys exist: the
/// defaults as a table ([`to_table`]), with one template entry in every list
/// of tables. The file is checked alone first, so that errors blame the right
/// source. Keys missing from the text keep their defaults.
pub fn from_toml_with<T: DeserializeOwned>(
    text: &str,
    origin: &str,
    overrides: &[String],
    schema: &Table,
) -> Result<T, ConfigError> {
    let mut table: Table = toml::from_str(text).map_err(|e| syntax_error(text, origin, &e))?;
    let config = table_to_config(&table, schema, origin)?;
    if overrides.is_empty() {
        return Ok(config);
    }
    for arg in overrides {
        apply_override(&mut table, schema, arg)?;
    }
    table_to_config(&table, schema, COMMAND_LINE)
}

/// A TOML syntax error with the line and column of where toml points.
fn syntax_error(text: &str, origin: &str, error: &toml::de::Error) -> ConfigError {
    let start = error.span().map_or(0, |s| s.start);
    let before = text.get(..start).unwrap_or(text);
    ConfigError::Syntax {
        origin: origin.to_string(),
        line: before.matches('\n').count() + 1,
        column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
        message: error.message().trim().replace('\n', "; "),
    }
}

/// `value` as a TOML table (the schema of its type when `value` holds the
/// defaults).
pub fn to_table<T: Serialize>(value: &T) -> Table {
    match Value::try_from(value) {
        Ok(Value::Table(table)) => table,
        _ => unreachable!("the default settings always serialise to a TOML table"),
    }
}

/// Converts a table read from `origin`, naming the first unknown key or
/// ill-typed value.
fn table_to_config<T: DeserializeOwned>(
    table: &Table,
    schema: &Table,
    origin: &str,
) -> Result<T, ConfigError> {
    if let Some((key, hint)) = find_unknown(table, schema, "") {
        return Err(ConfigError::UnknownKey {
            origin: origin.to_string(),
            key,
            hint,
        });
    }
    Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| {
            let (key, message) = locate_bad_value::<T>(table, "", &|t| t)
                .unwrap_or_else(|| ("(whole table)".into(), one_line(e.message())));
            ConfigError::BadValue {
                origin: origin.to_string(),
                key,
                message,
            }
        })
}

/// `prefix.key`, or `key` at the top.
fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn one_line(message: &str) -> String {
    message.trim().replace('\n', "; ")
}

/// The first key of `table` (dotted, under `prefix`) that `schema` lacks, with
/// a "did you mean" hint.
fn find_unknown(table: &Table, schema: &Table, prefix: &str) -> Option<(String, String)> {
    for (key, value) in table {
        let dotted = join(prefix, key);
        let Some(known) = schema.get(key) else {
            return Some((dotted, hint(key, schema)));
        };
        let found = match (value, known) {
            (Value::Table(t), Value::Table(s)) => find_unknown(t, s, &dotted),
            (Value::Array(items), Value::Array(s)) => match s.first() {
                Some(Value::Table(template)) => {
                    items.iter().enumerate().find_map(|(i, item)| match item {
                        Value::Table(t) => find_unknown(t, template, &format!("{dotted}.{i}")),
                        _ => None,
                    })
                }
                _ => None,
            },
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// `"; did you mean `x`?"` for the nearest known key within a few edits, or `""`.
fn hint(key: &str, schema: &Table) -> String {
    let allowed = (key.chars().count() / 3).max(2);
    schema
        .keys()
        .map(|k| (edit_distance(key, k), k))
        .filter(|&(d, _)| d <= allowed)
        .min()
        .map_or(String::new(), |(_, k)| format!("; did you mean `{k}`?"))
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // row[j]: distance between the prefix of `a` read so far and b[..j].
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let substitute = diagonal + usize::from(ca != b[j]);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Whether `table` deserialises as a `T`; serde's error if not.
fn check<T: DeserializeOwned>(table: Table) -> Result<(), toml::de::Error> {
    Value::Table(table).try_into::<T>().map(drop)
}

/// `{key: value}`.
fn single(key: &str, value: Value) -> Table {
    [(key.to_string(), value)].into_iter().collect()
}

/// The first key of `table` (dotted, under `prefix`) whose value does not
/// deserialise, with serde's message. Every field has a default, so each key
/// can be tried alone, placed where it belongs in the whole config by `wrap`;
/// a failing table (or list of tables), where the setting is one, is searched
/// the same way.
fn locate_bad_value<T: DeserializeOwned>(
    table: &Table,
    prefix: &str,
    wrap: &dyn Fn(Table) -> Table,
) -> Option<(String, String)> {
    for (key, value) in table {
        let Err(error) = check::<T>(wrap(single(key, value.clone()))) else {
            continue;
        };
        let message = one_line(error.message());
        let dotted = join(prefix, key);
        let list = |t: Table| Value::Array(vec![Value::Table(t)]);
        let inner = match value {
            Value::Table(t)
                if check::<T>(wrap(single(key, Value::Table(Table::new())))).is_ok() =>
            {
                locate_bad_value::<T>(t, &dotted, &|sub| wrap(single(key, Value::Table(sub))))
            }
            Value::Array(items) if check::<T>(wrap(single(key, list(Table::new())))).is_ok() => {
                items.iter().enumerate().find_map(|(i, item)| match item {
                    Value::Table(t) => locate_bad_value::<T>(t, &format!("{dotted}.{i}"), &|sub| {
                        wrap(single(key, list(sub)))
                    }),
                    _ => None,
                })
            }
            _ => None,
        };
        return Some(inner.unwrap_or((dotted, message)));
    }
    None
}

/// Applies one `KEY=VALUE` override to `table`.
fn apply_override(table: &mut Table, schema: &Table, arg: &str) -> Result<(), ConfigError> {
    let bad = |reason: String| ConfigError::BadOverride {
        arg: arg.to_string(),
        reason,
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected KEY=VALUE".into()))?;
    let keys: Vec<&str> = key.trim().split('.').map(str::trim).collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(bad("the key is empty or has an empty part".into()));
    }
    let value = override_value(raw.trim(), schema_value(schema, &keys));
    let mut root = Value::Table(std::mem::take(table));
    let result = set_path(&mut root, &keys, value, "");
    if let Value::Table(t) = root {
        *table = t;
    }
    result.map_err(|e| bad(e.to_string()))
}

/// The default value at a dotted key, if the key is known.
fn schema_value<'a>(schema: &'a Table, keys: &[&str]) -> Option<&'a Value> {
    let (first, rest) = keys.split_first()?;
    let mut node = schema.get(*first)?;
    for key in rest {
        node = match node {
            Value::Table(t) => t.get(*key)?,
            // Every entry of a list looks like the schema's first one.
            Value::Array(items) if key.parse::<usize>().is_ok() => items.first()?,
            _ => return None,
        };
    }
    Some(node)
}

/// An override's value: `raw` read as TOML, or as text when it is not valid
/// TOML or when it is unquoted and the setting (`default`) is text.
fn override_value(raw: &str, default: Option<&Value>) -> Value {
    let parsed = toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        // `1\nx = 2` would parse too, as two keys: that is not one value.
        .filter(|t| t.len() == 1)
        .and_then(|mut t| t.remove("v"));
    let text_setting = matches!(default, Some(Value::String(_)));
    match parsed {
        Some(Value::String(s)) => Value::String(s),
        Some(v) if !text_setting => v,
        _ => Value::String(raw.to_string()),
    }
}

/// Why an override's key cannot be placed in the config.
#[derive(Debug, thiserror::Error)]
enum PathError {
    #[error("`{key}` has no entry {index}")]
    NoList { key: String, index: String },
    #[error("`{list}` is a list: number its entries, as in `{list}.0.{key}`")]
    Unnumbered { list: String, key: String },
    #[error("`{list}` has no entry {index} (it has {len})")]
    OutOfRange {
        list: String,
        index: usize,
        len: usize,
    },
    #[error("`{key}` is not a table")]
    NotATable { key: String },
}

/// Sets the dotted key `keys` under `node` (reached by the dotted key `done`)
/// to `value`, creating missing tables; list entries are indexed by number.
fn set_path(node: &mut Value, keys: &[&str], value: Value, done: &str) -> Result<(), PathError> {
    let Some((&key, rest)) = keys.split_first() else {
        *node = value;
        return Ok(());
    };
    let here = join(done, key);
    let child = match node {
        Value::Table(t) => {
            if let Some(index) = rest.first().filter(|k| k.parse::<usize>().is_ok()) {
                if !t.contains_key(key) {
                    return Err(PathError::NoList {
                        key: here,
                        index: index.to_string(),
                    });
                }
            }
            t.entry(key).or_insert_with(|| Value::Table(Table::new()))
        }
        Value::Array(items) => {
            let len = items.len();
            let index: usize = key.parse().map_err(|_| PathError::Unnumbered {
                list: done.to_string(),
                key: key.to_string(),
            })?;
            items.get_mut(index).ok_or_else(|| PathError::OutOfRange {
                list: done.to_string(),
                index,
                len,
            })?
        }
        _ => {
            return Err(PathError::NotATable {
                key: done.to_string(),
            })
        }
    };
    set_path(child, rest, value, &here)
}
