//! The TOML side of [`TrainConfig::load`](super::TrainConfig::load): the
//! schema (the defaults as a table), `KEY=VALUE` overrides applied to the
//! table, and the errors that name a key: unknown keys with a "did you
//! mean", ill-typed values with the expected type, syntax errors with line
//! and column.

use serde::Serialize;
use toml::{Table, Value};

use barl_math::arith::ArithConfig;

use super::{ConfigError, DataSpec, TrainConfig};

/// A TOML syntax error with the line and column of where toml points.
pub(super) fn syntax_error(text: &str, origin: &str, error: &toml::de::Error) -> ConfigError {
    let start = error.span().map_or(0, |s| s.start);
    let before = text.get(..start).unwrap_or(text);
    ConfigError::Syntax {
        origin: origin.to_string(),
        line: before.matches('\n').count() + 1,
        column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
        message: error.message().trim().replace('\n', "; "),
    }
}

/// What a key must match to be known: the defaults as a TOML table, with one
/// default entry in `eval_data` standing for all its entries.
pub(super) fn schema() -> Table {
    let mut table = to_table(&TrainConfig::default());
    table.insert(
        "eval_data".into(),
        Value::Array(vec![Value::Table(to_table(&DataSpec::default()))]),
    );
    table
}

pub(super) fn to_table<T: Serialize>(value: &T) -> Table {
    match Value::try_from(value) {
        Ok(Value::Table(table)) => table,
        _ => unreachable!("the default settings always serialise to a TOML table"),
    }
}

/// Converts a table read from `origin`, naming the first unknown key or
/// ill-typed value.
pub(super) fn table_to_config(
    table: &Table,
    schema: &Table,
    origin: &str,
) -> Result<TrainConfig, ConfigError> {
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
            let (key, message) = locate_bad_value(table, Section::Config, "")
                .unwrap_or_else(|| ("(whole table)".into(), one_line(e.message())));
            ConfigError::BadValue {
                origin: origin.to_string(),
                key,
                message,
            }
        })
}

/// `prefix.key`, or `key` at the top.
pub(super) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

pub(super) fn one_line(message: &str) -> String {
    message.trim().replace('\n', "; ")
}

/// The first key of `table` (dotted, under `prefix`) that `schema` lacks, with
/// a "did you mean" hint.
pub(super) fn find_unknown(
    table: &Table,
    schema: &Table,
    prefix: &str,
) -> Option<(String, String)> {
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
pub(super) fn hint(key: &str, schema: &Table) -> String {
    let allowed = (key.chars().count() / 3).max(2);
    schema
        .keys()
        .map(|k| (edit_distance(key, k), k))
        .filter(|&(d, _)| d <= allowed)
        .min()
        .map_or(String::new(), |(_, k)| format!("; did you mean `{k}`?"))
}

/// Levenshtein distance in characters.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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

/// The structs a TOML table can stand for, to find which value fails to
/// deserialise.
#[derive(Clone, Copy)]
pub(super) enum Section {
    Config,
    Data,
    Arith,
}

impl Section {
    /// Deserialises `table` as this section; serde's message if it fails.
    pub(super) fn check(self, table: Table) -> Result<(), String> {
        let value = Value::Table(table);
        let result = match self {
            Section::Config => value.try_into::<TrainConfig>().map(drop),
            Section::Data => value.try_into::<DataSpec>().map(drop),
            Section::Arith => value.try_into::<ArithConfig>().map(drop),
        };
        result.map_err(|e| one_line(e.message()))
    }

    /// The section that the value of `key` (a table, or a list of tables) stands for.
    pub(super) fn child(self, key: &str) -> Option<Section> {
        match (self, key) {
            (Section::Config, "train_data" | "eval_data") => Some(Section::Data),
            (Section::Data, "arith") => Some(Section::Arith),
            _ => None,
        }
    }
}

/// The first key of `table` (dotted, under `prefix`) whose value does not
/// deserialise, with serde's message. Every field has a default, so each key
/// can be tried alone; failing sub-tables are searched the same way.
pub(super) fn locate_bad_value(
    table: &Table,
    section: Section,
    prefix: &str,
) -> Option<(String, String)> {
    for (key, value) in table {
        let alone: Table = [(key.clone(), value.clone())].into_iter().collect();
        let Err(message) = section.check(alone) else {
            continue;
        };
        let dotted = join(prefix, key);
        if let Some(child) = section.child(key) {
            let inner = match value {
                Value::Table(t) => locate_bad_value(t, child, &dotted),
                Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| match item {
                    Value::Table(t) => locate_bad_value(t, child, &format!("{dotted}.{i}")),
                    _ => None,
                }),
                _ => None,
            };
            if inner.is_some() {
                return inner;
            }
        }
        return Some((dotted, message));
    }
    None
}

/// Applies one `KEY=VALUE` override to `table`.
pub(super) fn apply_override(
    table: &mut Table,
    schema: &Table,
    arg: &str,
) -> Result<(), ConfigError> {
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
    result.map_err(bad)
}

/// The default value at a dotted key, if the key is known.
pub(super) fn schema_value<'a>(schema: &'a Table, keys: &[&str]) -> Option<&'a Value> {
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
pub(super) fn override_value(raw: &str, default: Option<&Value>) -> Value {
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

/// Sets the dotted key `keys` under `node` (reached by the dotted key `done`)
/// to `value`, creating missing tables; list entries are indexed by number.
pub(super) fn set_path(
    node: &mut Value,
    keys: &[&str],
    value: Value,
    done: &str,
) -> Result<(), String> {
    let Some((&key, rest)) = keys.split_first() else {
        *node = value;
        return Ok(());
    };
    let here = join(done, key);
    let child = match node {
        Value::Table(t) => {
            if let Some(index) = rest.first().filter(|k| k.parse::<usize>().is_ok()) {
                if !t.contains_key(key) {
                    return Err(format!("`{here}` has no entry {index}"));
                }
            }
            t.entry(key).or_insert_with(|| Value::Table(Table::new()))
        }
        Value::Array(items) => {
            let len = items.len();
            let index: usize = key.parse().map_err(|_| {
                format!("`{done}` is a list: number its entries, as in `{done}.0.{key}`")
            })?;
            items
                .get_mut(index)
                .ok_or_else(|| format!("`{done}` has no entry {index} (it has {len})"))?
        }
        _ => return Err(format!("`{done}` is not a table")),
    };
    set_path(child, rest, value, &here)
}
