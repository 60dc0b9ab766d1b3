//! Parquet files read as JSON objects, one per row (groups become objects,
//! lists arrays), for the same record parsers as JSONL.

use std::path::Path;

use serde_json::{Map, Value};

use super::{DataError, Pos, Record, RecordError};

/// Reads every row of a parquet file as a JSON object.
pub(super) fn parquet_records(path: &Path, file: std::fs::File) -> Result<Vec<Record>, DataError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let file_err = |msg: String| DataError::File {
        path: path.to_path_buf(),
        msg,
    };
    // The reader is meant to return errors on corrupt input; the catch is a
    // second line of defence so that a bad file can never abort a run.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let reader = SerializedFileReader::new(file)
            .map_err(|e| format!("not a readable parquet file: {e}"))?;
        let rows = reader
            .get_row_iter(None)
            .map_err(|e| format!("cannot read parquet rows: {e}"))?;
        let mut out = Vec::new();
        for (i, row) in rows.enumerate() {
            let record = match row {
                Ok(row) => Ok(row_to_json(&row)),
                // A failed page read usually ends the iteration; report it once.
                Err(e) => {
                    let err = RecordError::Undecodable(e.to_string());
                    out.push((Pos::Row(i + 1), Err(err)));
                    break;
                }
            };
            out.push((Pos::Row(i + 1), record));
        }
        Ok::<_, String>(out)
    }));
    match result {
        Ok(Ok(records)) => Ok(records),
        Ok(Err(msg)) => Err(file_err(msg)),
        Err(_) => Err(file_err(
            "parquet reader failed on corrupt data".to_string(),
        )),
    }
}

/// A parquet row as a JSON object (groups -> objects, lists -> arrays).
fn row_to_json(row: &parquet::record::Row) -> Map<String, Value> {
    row.get_column_iter()
        .map(|(name, field)| (name.clone(), field_to_json(field)))
        .collect()
}

fn field_to_json(field: &parquet::record::Field) -> Value {
    use parquet::record::Field as F;
    let float = |x: f64| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number);
    match field {
        F::Null => Value::Null,
        F::Bool(b) => Value::Bool(*b),
        F::Byte(x) => Value::from(*x),
        F::Short(x) => Value::from(*x),
        F::Int(x) => Value::from(*x),
        F::Long(x) => Value::from(*x),
        F::UByte(x) => Value::from(*x),
        F::UShort(x) => Value::from(*x),
        F::UInt(x) => Value::from(*x),
        F::ULong(x) => Value::from(*x),
        F::Float16(x) => float(f64::from(*x)),
        F::Float(x) => float(f64::from(*x)),
        F::Double(x) => float(*x),
        F::Str(s) => Value::String(s.clone()),
        // Binary columns without a UTF-8 annotation: text is all we use.
        F::Bytes(b) => Value::String(String::from_utf8_lossy(b.data()).into_owned()),
        F::Date(x) | F::TimeMillis(x) => Value::from(*x),
        F::TimeMicros(x) | F::TimestampMillis(x) | F::TimestampMicros(x) => Value::from(*x),
        F::Decimal(_) => Value::String(field.to_string()),
        F::Group(row) => Value::Object(row_to_json(row)),
        F::ListInternal(list) => Value::Array(list.elements().iter().map(field_to_json).collect()),
        F::MapInternal(map) => Value::Object(
            map.entries()
                .iter()
                .map(|(k, v)| {
                    let key = match field_to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, field_to_json(v))
                })
                .collect(),
        ),
    }
}
