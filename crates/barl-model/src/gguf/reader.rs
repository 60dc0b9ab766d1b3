//! Reading a GGUF file: header, metadata, tensor table, bounds-checked tensor data.

use super::dequant::dequantize;
use super::types::{
    ggml_type_name, GgmlType, GgufArray, GgufTensorInfo, GgufValue, DEFAULT_ALIGNMENT,
    MAX_ARRAY_DEPTH, MAX_DIMS,
};
use crate::tokenizer::GgufVocab;
use crate::ModelError;
use std::path::{Path, PathBuf};

/// A parsed GGUF file: metadata and tensor table; tensor data is read on demand
/// from a memory map.
pub struct GgufFile {
    pub path: PathBuf,
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, GgufValue)>,
    pub tensors: Vec<GgufTensorInfo>,
    pub alignment: u64,
    /// Absolute byte offset of the data section.
    pub data_start: u64,
    pub(super) data: FileBytes,
}

/// The file contents, memory-mapped (or empty for a zero-length file).
pub(super) enum FileBytes {
    Map(memmap2::Mmap),
    Empty,
}

impl FileBytes {
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            FileBytes::Map(m) => m,
            FileBytes::Empty => &[],
        }
    }
}

/// How a file breaks the GGUF format (the message of the file's
/// [`ModelError::File`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    #[error("truncated: needs {need} bytes at offset {at} for {what}, file has {len} bytes")]
    Truncated {
        need: usize,
        at: usize,
        what: String,
        len: usize,
    },
    #[error("truncated or corrupted: {what} is {n}, more than the {left} bytes left in the file can hold")]
    CountTooLarge { what: String, n: u64, left: usize },
    #[error("{0} is not valid UTF-8")]
    NotUtf8(String),
    #[error("corrupted: {what} has unknown value type {ty}")]
    UnknownValueType { what: String, ty: u32 },
    #[error("corrupted: {what} is a bool with byte value {byte}")]
    BadBool { what: String, byte: u8 },
    #[error("corrupted: {0} nests arrays deeper than {MAX_ARRAY_DEPTH}")]
    ArraysTooDeep(String),
    #[error("corrupted: {what} has unknown element type {ty}")]
    UnknownElementType { what: String, ty: u32 },
    #[error("not a GGUF file: {0} bytes, too short for the header")]
    TooShort(usize),
    #[error("not a GGUF file: bad magic {0:02x?} (expected \"GGUF\")")]
    BadMagic([u8; 4]),
    #[error("unsupported GGUF version {0} (supported: 2, 3)")]
    Version(u32),
    #[error("corrupted: metadata key '{0}' appears twice")]
    DuplicateKey(String),
    #[error("metadata key 'general.alignment' must be a power of two, found {0}")]
    Alignment(String),
    #[error("corrupted: {what} has {n_dims} dimensions (at most {MAX_DIMS})")]
    TooManyDims { what: String, n_dims: u32 },
    #[error("corrupted: {what} has dimensions {dims:?} that overflow")]
    DimsOverflow { what: String, dims: Vec<u64> },
    #[error("corrupted: tensor '{0}' appears twice")]
    DuplicateTensor(String),
    #[error("corrupted: tensor '{name}' has offset {offset} not aligned to {alignment}")]
    Unaligned {
        name: String,
        offset: u64,
        alignment: u64,
    },
    #[error("tensor '{name}': row length {row} is not a multiple of the {ty:?} block size {}", ty.block_elems())]
    RowNotBlocks {
        name: String,
        row: usize,
        ty: GgmlType,
    },
    #[error(
        "truncated: tensor '{name}' ({} bytes at offset {offset}) runs past the end of the file ({file_len} bytes)",
        len.map_or("too many".to_string(), |l| l.to_string())
    )]
    PastEnd {
        name: String,
        len: Option<usize>,
        offset: u64,
        file_len: usize,
    },
}

/// A bounds-checked little-endian reader over the file bytes.
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], FormatError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| FormatError::Truncated {
                need: n,
                at: self.pos,
                what: what.to_string(),
                len: self.buf.len(),
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(super) fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], FormatError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(super) fn u32(&mut self, what: &str) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(super) fn u64(&mut self, what: &str) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count of items of at least `min_size` bytes each, checked against what is left.
    pub(super) fn count(&mut self, min_size: usize, what: &str) -> Result<usize, FormatError> {
        let n = self.u64(what)?;
        let fits = usize::try_from(n).ok().filter(|&n| {
            n.checked_mul(min_size)
                .is_some_and(|b| b <= self.remaining())
        });
        fits.ok_or_else(|| FormatError::CountTooLarge {
            what: what.to_string(),
            n,
            left: self.remaining(),
        })
    }

    pub(super) fn string(&mut self, what: &str) -> Result<String, FormatError> {
        let len = self.count(1, &format!("length of {what}"))?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| FormatError::NotUtf8(what.to_string()))
    }

    pub(super) fn value(&mut self, ty: u32, what: &str) -> Result<GgufValue, FormatError> {
        Ok(match ty {
            0 => GgufValue::U8(u8::from_le_bytes(self.array(what)?)),
            1 => GgufValue::I8(i8::from_le_bytes(self.array(what)?)),
            2 => GgufValue::U16(u16::from_le_bytes(self.array(what)?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.array(what)?)),
            4 => GgufValue::U32(u32::from_le_bytes(self.array(what)?)),
            5 => GgufValue::I32(i32::from_le_bytes(self.array(what)?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.array(what)?)),
            7 => GgufValue::Bool(self.bool(what)?),
            8 => GgufValue::Str(self.string(what)?),
            9 => GgufValue::Array(self.gguf_array(what, 0)?),
            10 => GgufValue::U64(u64::from_le_bytes(self.array(what)?)),
            11 => GgufValue::I64(i64::from_le_bytes(self.array(what)?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.array(what)?)),
            _ => {
                return Err(FormatError::UnknownValueType {
                    what: what.to_string(),
                    ty,
                })
            }
        })
    }

    pub(super) fn bool(&mut self, what: &str) -> Result<bool, FormatError> {
        match self.array::<1>(what)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            byte => Err(FormatError::BadBool {
                what: what.to_string(),
                byte,
            }),
        }
    }

    /// Reads `n` fixed-size elements with `f`.
    pub(super) fn fixed<T, const N: usize>(
        &mut self,
        n: usize,
        what: &str,
        f: fn([u8; N]) -> T,
    ) -> Result<Vec<T>, FormatError> {
        // `count` already checked n * N bytes are present, so this allocation is bounded.
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(f(self.array::<N>(what)?));
        }
        Ok(v)
    }

    pub(super) fn gguf_array(
        &mut self,
        what: &str,
        depth: usize,
    ) -> Result<GgufArray, FormatError> {
        if depth > MAX_ARRAY_DEPTH {
            return Err(FormatError::ArraysTooDeep(what.to_string()));
        }
        let ty = self.u32(what)?;
        let min_size = match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            8 | 10..=12 => 8,
            9 => 12,
            _ => {
                return Err(FormatError::UnknownElementType {
                    what: what.to_string(),
                    ty,
                })
            }
        };
        let n = self.count(min_size, &format!("element count of {what}"))?;
        Ok(match ty {
            0 => GgufArray::U8(self.fixed(n, what, u8::from_le_bytes)?),
            1 => GgufArray::I8(self.fixed(n, what, i8::from_le_bytes)?),
            2 => GgufArray::U16(self.fixed(n, what, u16::from_le_bytes)?),
            3 => GgufArray::I16(self.fixed(n, what, i16::from_le_bytes)?),
            4 => GgufArray::U32(self.fixed(n, what, u32::from_le_bytes)?),
            5 => GgufArray::I32(self.fixed(n, what, i32::from_le_bytes)?),
            6 => GgufArray::F32(self.fixed(n, what, f32::from_le_bytes)?),
            10 => GgufArray::U64(self.fixed(n, what, u64::from_le_bytes)?),
            11 => GgufArray::I64(self.fixed(n, what, i64::from_le_bytes)?),
            12 => GgufArray::F64(self.fixed(n, what, f64::from_le_bytes)?),
            7 => GgufArray::Bool((0..n).map(|_| self.bool(what)).collect::<Result<_, _>>()?),
            8 => GgufArray::Str(
                (0..n)
                    .map(|_| self.string(what))
                    .collect::<Result<_, _>>()?,
            ),
            _ => GgufArray::Array(
                (0..n)
                    .map(|_| self.gguf_array(what, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

impl GgufFile {
    /// Reads the header, metadata and tensor table (not the tensor data).
    pub fn open(path: &Path) -> Result<GgufFile, ModelError> {
        let err = |msg: String| ModelError::File {
            file: path.to_path_buf(),
            msg,
        };
        let file = std::fs::File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
        let len = file
            .metadata()
            .map_err(|e| err(format!("cannot stat: {e}")))?
            .len();
        let data = if len == 0 {
            FileBytes::Empty
        } else {
            // SAFETY: the map is read-only; the file must not be truncated by another
            // process while it is mapped (the usual caveat of memory-mapped model files).
            let map = unsafe { memmap2::Mmap::map(&file) }
                .map_err(|e| err(format!("cannot memory-map: {e}")))?;
            FileBytes::Map(map)
        };
        let (version, metadata, tensors, alignment, data_start) =
            parse(data.bytes()).map_err(|e| err(e.to_string()))?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            alignment,
            data_start,
            data,
        })
    }

    /// The tokenizer's description (`tokenizer.ggml.*`); the messages name the
    /// key that is missing or of the wrong type.
    pub fn vocab(&self) -> Result<GgufVocab<'_>, ModelError> {
        let strings = |key: &str| {
            self.get(key)
                .and_then(|v| v.as_array())
                .and_then(|a| a.as_strs())
                .ok_or_else(|| {
                    self.err(format!(
                        "metadata key '{key}' missing or not a string array"
                    ))
                })
        };
        let token_types = match self.get("tokenizer.ggml.token_type") {
            None => None,
            Some(v) => Some(v.as_array().and_then(|a| a.to_i64s()).ok_or_else(|| {
                self.err(
                    "metadata key 'tokenizer.ggml.token_type' should be an integer array".into(),
                )
            })?),
        };
        let flag = |key: &str| -> Result<bool, ModelError> {
            match self.get(key) {
                None => Ok(false),
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| self.err(format!("metadata key '{key}' should be a bool"))),
            }
        };
        Ok(GgufVocab {
            file: self.path.clone(),
            model: self
                .opt_str("tokenizer.ggml.model")?
                .unwrap_or("(absent)")
                .to_string(),
            tokens: strings("tokenizer.ggml.tokens")?,
            merges: strings("tokenizer.ggml.merges")?,
            token_types,
            pre: self
                .opt_str("tokenizer.ggml.pre")?
                .unwrap_or("default")
                .to_string(),
            bos: self.opt_usize("tokenizer.ggml.bos_token_id")?,
            eos: self.opt_usize("tokenizer.ggml.eos_token_id")?,
            pad: self.opt_usize("tokenizer.ggml.padding_token_id")?,
            add_bos: flag("tokenizer.ggml.add_bos_token")?,
            add_eos: flag("tokenizer.ggml.add_eos_token")?,
        })
    }

    /// A metadata value by key.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A human-readable summary for `barl` to print: version, every metadata key with
    /// a short rendering of its value, and the tensor count per GGML type.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "{}: GGUF v{}, {} metadata keys, {} tensors\n",
            self.path.display(),
            self.version,
            self.metadata.len(),
            self.tensors.len()
        );
        for (k, v) in &self.metadata {
            out.push_str(&format!("  {k} = {}\n", v.summary()));
        }
        let mut by_type: Vec<(u32, usize)> = Vec::new();
        for t in &self.tensors {
            match by_type.iter_mut().find(|(ty, _)| *ty == t.ggml_type) {
                Some((_, n)) => *n += 1,
                None => by_type.push((t.ggml_type, 1)),
            }
        }
        by_type.sort();
        let types: Vec<String> = by_type
            .iter()
            .map(|(ty, n)| format!("{} x {n}", ggml_type_name(*ty)))
            .collect();
        out.push_str(&format!("  tensor types: {}\n", types.join(", ")));
        out
    }

    /// A tensor's table entry by GGUF name.
    pub fn tensor_info(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    pub(super) fn err(&self, msg: String) -> ModelError {
        ModelError::File {
            file: self.path.clone(),
            msg,
        }
    }

    /// A required metadata value.
    pub fn require(&self, key: &str) -> Result<&GgufValue, ModelError> {
        self.get(key)
            .ok_or_else(|| self.err(format!("missing metadata key '{key}'")))
    }

    /// A required non-negative integer.
    pub fn require_usize(&self, key: &str) -> Result<usize, ModelError> {
        let v = self.require(key)?;
        v.as_u64()
            .and_then(|x| usize::try_from(x).ok())
            .ok_or_else(|| {
                self.err(format!(
                    "metadata key '{key}' should be a non-negative integer, found {} {}",
                    v.type_name(),
                    v.summary()
                ))
            })
    }

    /// An optional non-negative integer (present but mistyped is an error).
    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>, ModelError> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.require_usize(key).map(Some),
        }
    }

    /// An optional number (present but mistyped is an error).
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, ModelError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                self.err(format!(
                    "metadata key '{key}' should be a number, found {}",
                    v.type_name()
                ))
            }),
        }
    }

    /// An optional string (present but mistyped is an error).
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>, ModelError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| {
                self.err(format!(
                    "metadata key '{key}' should be a string, found {}",
                    v.type_name()
                ))
            }),
        }
    }

    /// The raw bytes of a tensor's data (bounds were checked when the file was read).
    pub fn tensor_bytes(&self, info: &GgufTensorInfo) -> Result<&[u8], ModelError> {
        let ty = GgmlType::from_id(info.ggml_type).ok_or_else(|| {
            self.err(format!(
                "tensor '{}' has quantization type {} ({}), which is not supported \
                 (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K)",
                info.name,
                ggml_type_name(info.ggml_type),
                info.ggml_type
            ))
        })?;
        let (start, len) = data_range(info, ty, self.data_start, self.data.bytes().len())
            .map_err(|m| self.err(m.to_string()))?;
        Ok(&self.data.bytes()[start..start + len])
    }

    /// A tensor dequantized to f32, in GGUF's element order (row-major over [`GgufTensorInfo::shape`]).
    pub fn dequantize(&self, info: &GgufTensorInfo) -> Result<Vec<f32>, ModelError> {
        let bytes = self.tensor_bytes(info)?;
        let ty = GgmlType::from_id(info.ggml_type).expect("checked by tensor_bytes");
        dequantize(ty, bytes, info.n_elements())
            .map_err(|m| self.err(format!("tensor '{}': {m}", info.name)))
    }
}

pub(super) type Parsed = (u32, Vec<(String, GgufValue)>, Vec<GgufTensorInfo>, u64, u64);

pub(super) fn parse(buf: &[u8]) -> Result<Parsed, FormatError> {
    let mut r = Reader { buf, pos: 0 };
    let magic: [u8; 4] = r
        .array("the magic number")
        .map_err(|_| FormatError::TooShort(buf.len()))?;
    if &magic != b"GGUF" {
        return Err(FormatError::BadMagic(magic));
    }
    let version = r.u32("the version")?;
    if !(2..=3).contains(&version) {
        return Err(FormatError::Version(version));
    }
    // Each tensor entry needs at least 8 (name len) + 4 + 4 + 8 bytes; each KV at least 8 + 4 + 1.
    let n_tensors = r.count(24, "the tensor count")?;
    let n_kv = r.count(13, "the metadata count")?;

    let mut metadata: Vec<(String, GgufValue)> = Vec::with_capacity(n_kv);
    for i in 0..n_kv {
        let key = r.string(&format!("metadata key #{i}"))?;
        let what = format!("metadata key '{key}'");
        let ty = r.u32(&what)?;
        let value = r.value(ty, &what)?;
        if metadata.iter().any(|(k, _)| *k == key) {
            return Err(FormatError::DuplicateKey(key));
        }
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some((_, v)) => match v.as_u64() {
            Some(a) if a > 0 && a.is_power_of_two() => a,
            _ => return Err(FormatError::Alignment(v.summary())),
        },
    };

    let mut tensors = Vec::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let name = r.string(&format!("the name of tensor #{i}"))?;
        let what = format!("tensor '{name}'");
        let n_dims = r.u32(&what)?;
        if n_dims > MAX_DIMS {
            return Err(FormatError::TooManyDims { what, n_dims });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(r.u64(&what)?);
        }
        let ggml_type = r.u32(&what)?;
        let offset = r.u64(&what)?;
        let n = dims.iter().try_fold(1usize, |acc, &d| {
            usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
        });
        if n.is_none() {
            return Err(FormatError::DimsOverflow { what, dims });
        }
        if tensors.iter().any(|t: &GgufTensorInfo| t.name == name) {
            return Err(FormatError::DuplicateTensor(name));
        }
        tensors.push(GgufTensorInfo {
            name,
            dims,
            ggml_type,
            offset,
        });
    }

    let data_start = (r.pos as u64).div_ceil(alignment) * alignment;
    for t in &tensors {
        if !t.offset.is_multiple_of(alignment) {
            return Err(FormatError::Unaligned {
                name: t.name.clone(),
                offset: t.offset,
                alignment,
            });
        }
        // Bounds of tensors we cannot decode are checked when they are asked for.
        if let Some(ty) = GgmlType::from_id(t.ggml_type) {
            data_range(t, ty, data_start, buf.len())?;
        }
    }
    Ok((version, metadata, tensors, alignment, data_start))
}

/// `(absolute start, byte length)` of a tensor's data, checked against the file size.
pub(super) fn data_range(
    t: &GgufTensorInfo,
    ty: GgmlType,
    data_start: u64,
    file_len: usize,
) -> Result<(usize, usize), FormatError> {
    let n = t.n_elements();
    let row = t.dims.first().copied().unwrap_or(1) as usize;
    if !row.is_multiple_of(ty.block_elems()) {
        return Err(FormatError::RowNotBlocks {
            name: t.name.clone(),
            row,
            ty,
        });
    }
    let len = (n / ty.block_elems()).checked_mul(ty.block_bytes());
    let start = data_start
        .checked_add(t.offset)
        .and_then(|s| usize::try_from(s).ok());
    match (start, len) {
        (Some(s), Some(l)) if s.checked_add(l).is_some_and(|e| e <= file_len) => Ok((s, l)),
        _ => Err(FormatError::PastEnd {
            name: t.name.clone(),
            len,
            offset: data_start.saturating_add(t.offset),
            file_len,
        }),
    }
}
