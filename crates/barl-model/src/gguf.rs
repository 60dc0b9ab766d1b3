//! A GGUF reader (format versions 2 and 3) and the loader that turns a llama.cpp
//! model file into Hugging Face–layout f32 weights.
//!
//! File layout (all integers little-endian):
//!
//! ```text
//! "GGUF"  u32 version  u64 n_tensors  u64 n_kv
//! n_kv      x  { string key, u32 value_type, value }
//! n_tensors x  { string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset }
//! padding to `general.alignment` (default 32)
//! tensor data; each tensor at data_start + offset
//! ```
//!
//! A string is `u64 len` then `len` UTF-8 bytes; an array is `u32 elem_type, u64 count`,
//! then the elements. `dims[0]` is the fastest-varying dimension, so a Hugging Face
//! `[out, in]` matrix is stored with `dims = [in, out]`.
//!
//! Every read is bounds-checked against the file length before anything is allocated,
//! so a truncated or corrupted file gives a [`ModelError::File`] naming the file and
//! the key or tensor, never a panic or a huge allocation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use half::{bf16, f16};

use crate::config::{Arch, ModelConfig};
use crate::loaded::{check_weights, LoadedModel};
use crate::tokenizer::{GgufVocab, Tokenizer};
use crate::ModelError;

/// Alignment of the tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// llama.cpp's limit on tensor rank.
const MAX_DIMS: u32 = 4;
/// Arrays of arrays deeper than this are treated as corruption (guards the stack).
const MAX_ARRAY_DEPTH: usize = 4;

/// The tensor element types this reader can dequantize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q8_0,
    Q4K,
    Q6K,
}

impl GgmlType {
    /// All supported types.
    pub const ALL: [GgmlType; 8] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q8_0,
        GgmlType::Q4K,
        GgmlType::Q6K,
    ];

    /// The type for a GGML type id, if supported.
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.id() == id)
    }

    /// The GGML type id stored in the file.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q8_0 => 8,
            GgmlType::Q4K => 12,
            GgmlType::Q6K => 14,
            GgmlType::BF16 => 30,
        }
    }

    /// Elements per block.
    pub fn block_elems(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 => 32,
            GgmlType::Q4K | GgmlType::Q6K => 256,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::BF16 => 2,
            GgmlType::Q4_0 => 18, // f16 d + 16 bytes of nibbles
            GgmlType::Q4_1 => 20, // f16 d, f16 m + 16 bytes of nibbles
            GgmlType::Q8_0 => 34, // f16 d + 32 i8
            GgmlType::Q4K => 144, // f16 d, f16 dmin, 12 bytes of scales, 128 bytes of nibbles
            GgmlType::Q6K => 210, // 128 low-nibble bytes, 64 high-bit bytes, 16 i8 scales, f16 d
        }
    }
}

/// llama.cpp's name for a GGML type id (for messages), e.g. `Q5_K` for 13.
pub fn ggml_type_name(id: u32) -> String {
    const NAMES: [&str; 31] = [
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
        "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL",
        "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16",
    ];
    match NAMES.get(id as usize) {
        Some(n) => (*n).to_string(),
        None => format!("type {id}"),
    }
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Str(String),
    Array(GgufArray),
}

/// A metadata array, stored by element type so that a large array costs no more
/// memory than its bytes in the file.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    Str(Vec<String>),
    Array(Vec<GgufArray>),
}

impl GgufValue {
    /// A non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// A number of any type, as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(v.into()),
            GgufValue::F64(v) => Some(v),
            GgufValue::I8(v) => Some(v.into()),
            GgufValue::I16(v) => Some(v.into()),
            GgufValue::I32(v) => Some(v.into()),
            GgufValue::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            GgufValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&GgufArray> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The GGUF name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            GgufValue::U8(_) => "u8",
            GgufValue::I8(_) => "i8",
            GgufValue::U16(_) => "u16",
            GgufValue::I16(_) => "i16",
            GgufValue::U32(_) => "u32",
            GgufValue::I32(_) => "i32",
            GgufValue::U64(_) => "u64",
            GgufValue::I64(_) => "i64",
            GgufValue::F32(_) => "f32",
            GgufValue::F64(_) => "f64",
            GgufValue::Bool(_) => "bool",
            GgufValue::Str(_) => "string",
            GgufValue::Array(_) => "array",
        }
    }

    /// A short human-readable rendering (long arrays and strings are elided).
    pub fn summary(&self) -> String {
        match self {
            GgufValue::Str(s) if s.chars().count() > 60 => {
                let head: String = s.chars().take(60).collect();
                format!("{head:?}... ({} chars)", s.chars().count())
            }
            GgufValue::Str(s) => format!("{s:?}"),
            GgufValue::Array(a) => format!("[{} x {}]", a.len(), a.elem_type_name()),
            GgufValue::F32(v) => format!("{v}"),
            GgufValue::F64(v) => format!("{v}"),
            GgufValue::Bool(v) => format!("{v}"),
            other => other.as_f64().map(|v| format!("{v}")).unwrap_or_default(),
        }
    }
}

impl GgufArray {
    pub fn len(&self) -> usize {
        match self {
            GgufArray::U8(v) => v.len(),
            GgufArray::I8(v) => v.len(),
            GgufArray::U16(v) => v.len(),
            GgufArray::I16(v) => v.len(),
            GgufArray::U32(v) => v.len(),
            GgufArray::I32(v) => v.len(),
            GgufArray::U64(v) => v.len(),
            GgufArray::I64(v) => v.len(),
            GgufArray::F32(v) => v.len(),
            GgufArray::F64(v) => v.len(),
            GgufArray::Bool(v) => v.len(),
            GgufArray::Str(v) => v.len(),
            GgufArray::Array(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn elem_type_name(&self) -> &'static str {
        match self {
            GgufArray::U8(_) => "u8",
            GgufArray::I8(_) => "i8",
            GgufArray::U16(_) => "u16",
            GgufArray::I16(_) => "i16",
            GgufArray::U32(_) => "u32",
            GgufArray::I32(_) => "i32",
            GgufArray::U64(_) => "u64",
            GgufArray::I64(_) => "i64",
            GgufArray::F32(_) => "f32",
            GgufArray::F64(_) => "f64",
            GgufArray::Bool(_) => "bool",
            GgufArray::Str(_) => "string",
            GgufArray::Array(_) => "array",
        }
    }

    /// The elements of a string array.
    pub fn as_strs(&self) -> Option<&[String]> {
        match self {
            GgufArray::Str(v) => Some(v),
            _ => None,
        }
    }

    /// The elements of an integer array of any width, as i64.
    pub fn to_i64s(&self) -> Option<Vec<i64>> {
        Some(match self {
            GgufArray::U8(v) => v.iter().map(|&x| x.into()).collect(),
            GgufArray::I8(v) => v.iter().map(|&x| x.into()).collect(),
            GgufArray::U16(v) => v.iter().map(|&x| x.into()).collect(),
            GgufArray::I16(v) => v.iter().map(|&x| x.into()).collect(),
            GgufArray::U32(v) => v.iter().map(|&x| x.into()).collect(),
            GgufArray::I32(v) => v.iter().map(|&x| x.into()).collect(),
            GgufArray::I64(v) => v.clone(),
            GgufArray::U64(v) => v
                .iter()
                .map(|&x| i64::try_from(x).ok())
                .collect::<Option<_>>()?,
            _ => return None,
        })
    }
}

/// One tensor's entry in the file's tensor table.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensorInfo {
    pub name: String,
    /// GGUF order: `dims[0]` varies fastest (the reverse of the row-major shape).
    pub dims: Vec<u64>,
    /// The raw GGML type id; see [`GgmlType::from_id`] and [`ggml_type_name`].
    pub ggml_type: u32,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
}

impl GgufTensorInfo {
    /// The row-major shape (`dims` reversed), as candle and PyTorch use.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    /// Number of elements (dims were checked not to overflow when the file was read).
    pub fn n_elements(&self) -> usize {
        self.dims.iter().map(|&d| d as usize).product()
    }
}

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
    data: FileBytes,
}

/// The file contents, memory-mapped (or empty for a zero-length file).
enum FileBytes {
    Map(memmap2::Mmap),
    Empty,
}

impl FileBytes {
    fn bytes(&self) -> &[u8] {
        match self {
            FileBytes::Map(m) => m,
            FileBytes::Empty => &[],
        }
    }
}

/// A bounds-checked little-endian reader over the file bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "truncated: needs {n} bytes at offset {} for {what}, file has {} bytes",
                    self.pos,
                    self.buf.len()
                )
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count of items of at least `min_size` bytes each, checked against what is left.
    fn count(&mut self, min_size: usize, what: &str) -> Result<usize, String> {
        let n = self.u64(what)?;
        let fits = usize::try_from(n).ok().filter(|&n| {
            n.checked_mul(min_size)
                .is_some_and(|b| b <= self.remaining())
        });
        fits.ok_or_else(|| {
            format!(
                "truncated or corrupted: {what} is {n}, more than the {} bytes left in the file can hold",
                self.remaining()
            )
        })
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        let len = self.count(1, &format!("length of {what}"))?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not valid UTF-8"))
    }

    fn value(&mut self, ty: u32, what: &str) -> Result<GgufValue, String> {
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
            _ => return Err(format!("corrupted: {what} has unknown value type {ty}")),
        })
    }

    fn bool(&mut self, what: &str) -> Result<bool, String> {
        match self.array::<1>(what)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("corrupted: {what} is a bool with byte value {b}")),
        }
    }

    /// Reads `n` fixed-size elements with `f`.
    fn fixed<T, const N: usize>(
        &mut self,
        n: usize,
        what: &str,
        f: fn([u8; N]) -> T,
    ) -> Result<Vec<T>, String> {
        // `count` already checked n * N bytes are present, so this allocation is bounded.
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(f(self.array::<N>(what)?));
        }
        Ok(v)
    }

    fn gguf_array(&mut self, what: &str, depth: usize) -> Result<GgufArray, String> {
        if depth > MAX_ARRAY_DEPTH {
            return Err(format!(
                "corrupted: {what} nests arrays deeper than {MAX_ARRAY_DEPTH}"
            ));
        }
        let ty = self.u32(what)?;
        let min_size = match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            8 | 10..=12 => 8,
            9 => 12,
            _ => return Err(format!("corrupted: {what} has unknown element type {ty}")),
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
            parse(data.bytes()).map_err(err)?;
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

    fn err(&self, msg: String) -> ModelError {
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
            .map_err(|m| self.err(m))?;
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

type Parsed = (u32, Vec<(String, GgufValue)>, Vec<GgufTensorInfo>, u64, u64);

fn parse(buf: &[u8]) -> Result<Parsed, String> {
    let mut r = Reader { buf, pos: 0 };
    let magic = r.take(4, "the magic number").map_err(|_| {
        format!(
            "not a GGUF file: {} bytes, too short for the header",
            buf.len()
        )
    })?;
    if magic != b"GGUF" {
        return Err(format!(
            "not a GGUF file: bad magic {magic:02x?} (expected \"GGUF\")"
        ));
    }
    let version = r.u32("the version")?;
    if !(2..=3).contains(&version) {
        return Err(format!(
            "unsupported GGUF version {version} (supported: 2, 3)"
        ));
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
            return Err(format!("corrupted: metadata key '{key}' appears twice"));
        }
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some((_, v)) => match v.as_u64() {
            Some(a) if a > 0 && a.is_power_of_two() => a,
            _ => {
                return Err(format!(
                    "metadata key 'general.alignment' must be a power of two, found {}",
                    v.summary()
                ))
            }
        },
    };

    let mut tensors = Vec::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let name = r.string(&format!("the name of tensor #{i}"))?;
        let what = format!("tensor '{name}'");
        let n_dims = r.u32(&what)?;
        if n_dims > MAX_DIMS {
            return Err(format!(
                "corrupted: {what} has {n_dims} dimensions (at most {MAX_DIMS})"
            ));
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
            return Err(format!(
                "corrupted: {what} has dimensions {dims:?} that overflow"
            ));
        }
        if tensors.iter().any(|t: &GgufTensorInfo| t.name == name) {
            return Err(format!("corrupted: tensor '{name}' appears twice"));
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
            return Err(format!(
                "corrupted: tensor '{}' has offset {} not aligned to {alignment}",
                t.name, t.offset
            ));
        }
        // Bounds of tensors we cannot decode are checked when they are asked for.
        if let Some(ty) = GgmlType::from_id(t.ggml_type) {
            data_range(t, ty, data_start, buf.len())?;
        }
    }
    Ok((version, metadata, tensors, alignment, data_start))
}

/// `(absolute start, byte length)` of a tensor's data, checked against the file size.
fn data_range(
    t: &GgufTensorInfo,
    ty: GgmlType,
    data_start: u64,
    file_len: usize,
) -> Result<(usize, usize), String> {
    let n = t.n_elements();
    let row = t.dims.first().copied().unwrap_or(1) as usize;
    if !row.is_multiple_of(ty.block_elems()) {
        return Err(format!(
            "tensor '{}': row length {row} is not a multiple of the {:?} block size {}",
            t.name,
            ty,
            ty.block_elems()
        ));
    }
    let len = (n / ty.block_elems()).checked_mul(ty.block_bytes());
    let start = data_start
        .checked_add(t.offset)
        .and_then(|s| usize::try_from(s).ok());
    match (start, len) {
        (Some(s), Some(l)) if s.checked_add(l).is_some_and(|e| e <= file_len) => Ok((s, l)),
        _ => Err(format!(
            "truncated: tensor '{}' ({} bytes at offset {}) runs past the end of the file ({file_len} bytes)",
            t.name,
            len.map_or("too many".to_string(), |l| l.to_string()),
            data_start.saturating_add(t.offset)
        )),
    }
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Dequantizes `n` elements of type `ty` from `data` to f32.
///
/// Block formulas (`d`, `m` are f16 per-block scale and minimum; `q` the stored integers):
/// - Q8_0 (32): `x = d * q`, q an i8.
/// - Q4_0 (32): `x = d * (q - 8)`, q a nibble; byte j holds elements j (low) and j + 16 (high).
/// - Q4_1 (32): `x = d * q + m`, same nibble order.
/// - Q4_K (256): 8 sub-blocks of 32 with 6-bit scale `sc` and min `mn`:
///   `x = d * sc * q - dmin * mn`; each 32-byte group of nibbles holds two sub-blocks (low, high).
/// - Q6_K (256): 16 sub-blocks of 16 with i8 scale: `x = d * sc * (q - 32)`, q a 6-bit
///   value built from 4 low bits (`ql`) and 2 high bits (`qh`).
pub fn dequantize(ty: GgmlType, data: &[u8], n: usize) -> Result<Vec<f32>, String> {
    if !n.is_multiple_of(ty.block_elems()) {
        return Err(format!(
            "{n} elements is not a multiple of the {:?} block size",
            ty
        ));
    }
    let expect = n / ty.block_elems() * ty.block_bytes();
    if data.len() != expect {
        return Err(format!(
            "{:?} data has {} bytes, expected {expect} for {n} elements",
            ty,
            data.len()
        ));
    }
    let mut out = Vec::with_capacity(n);
    let blocks = data.chunks_exact(ty.block_bytes());
    match ty {
        GgmlType::F32 => out.extend(blocks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        GgmlType::F16 => out.extend(blocks.map(|b| f16_at(b, 0))),
        GgmlType::BF16 => out.extend(blocks.map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())),
        GgmlType::Q8_0 => {
            for b in blocks {
                let d = f16_at(b, 0);
                out.extend(b[2..34].iter().map(|&q| d * f32::from(q as i8)));
            }
        }
        GgmlType::Q4_0 => {
            for b in blocks {
                let d = f16_at(b, 0);
                let qs = &b[2..18];
                out.extend(qs.iter().map(|&q| d * (f32::from(q & 0xF) - 8.0)));
                out.extend(qs.iter().map(|&q| d * (f32::from(q >> 4) - 8.0)));
            }
        }
        GgmlType::Q4_1 => {
            for b in blocks {
                let (d, m) = (f16_at(b, 0), f16_at(b, 2));
                let qs = &b[4..20];
                out.extend(qs.iter().map(|&q| d * f32::from(q & 0xF) + m));
                out.extend(qs.iter().map(|&q| d * f32::from(q >> 4) + m));
            }
        }
        GgmlType::Q4K => {
            for b in blocks {
                let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
                let scales = &b[4..16];
                let qs = &b[16..144];
                for (g, q) in qs.chunks_exact(32).enumerate() {
                    let (sc1, m1) = k_scale_min(2 * g, scales);
                    let (sc2, m2) = k_scale_min(2 * g + 1, scales);
                    let (d1, mn1) = (d * f32::from(sc1), dmin * f32::from(m1));
                    let (d2, mn2) = (d * f32::from(sc2), dmin * f32::from(m2));
                    out.extend(q.iter().map(|&x| d1 * f32::from(x & 0xF) - mn1));
                    out.extend(q.iter().map(|&x| d2 * f32::from(x >> 4) - mn2));
                }
            }
        }
        GgmlType::Q6K => {
            for b in blocks {
                let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
                let d = f16_at(b, 208);
                for half in 0..2 {
                    let (ql, qh, sc) = (&ql[64 * half..], &qh[32 * half..], &sc[8 * half..]);
                    let mut y = [0f32; 128];
                    for l in 0..32 {
                        let is = l / 16;
                        let q = |low: u8, shift: u32| {
                            f32::from((low | (((qh[l] >> shift) & 3) << 4)) as i8 - 32)
                        };
                        let s = |k: usize| d * f32::from(sc[is + k] as i8);
                        y[l] = s(0) * q(ql[l] & 0xF, 0);
                        y[l + 32] = s(2) * q(ql[l + 32] & 0xF, 2);
                        y[l + 64] = s(4) * q(ql[l] >> 4, 4);
                        y[l + 96] = s(6) * q(ql[l + 32] >> 4, 6);
                    }
                    out.extend_from_slice(&y);
                }
            }
        }
    }
    Ok(out)
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K block, packed in 12 bytes:
/// sub-blocks 0..4 use the low 6 bits of bytes j and j + 4; sub-blocks 4..8 take 4 bits
/// from byte j + 4 and their top 2 bits from the spare high bits of bytes j - 4 and j.
fn k_scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// The Hugging Face name for a llama.cpp tensor name, or `None` if unknown.
pub fn hf_tensor_name(gguf_name: &str) -> Option<String> {
    let fixed = match gguf_name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (part, suffix) = rest.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    let hf = match part {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

/// Undoes llama.cpp's q/k row permutation for interleaved rotary.
///
/// llama.cpp's converter stores `w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2)`, i.e.
/// GGUF row `h*hd + 2*i + j` is Hugging Face row `h*hd + j*hd/2 + i` (`i < hd/2`, `j < 2`).
/// `data` is row-major `[rows, cols]` (`cols = 1` for a bias).
pub fn unpermute_qk(
    data: &[f32],
    rows: usize,
    cols: usize,
    n_head: usize,
) -> Result<Vec<f32>, String> {
    if n_head == 0 || !rows.is_multiple_of(2 * n_head) || data.len() != rows * cols {
        return Err(format!(
            "cannot un-permute {rows} rows x {cols} into {n_head} heads"
        ));
    }
    let hd = rows / n_head;
    let half = hd / 2;
    let mut out = vec![0f32; data.len()];
    for h in 0..n_head {
        for i in 0..half {
            for j in 0..2 {
                let src = (h * hd + 2 * i + j) * cols;
                let dst = (h * hd + j * half + i) * cols;
                out[dst..dst + cols].copy_from_slice(&data[src..src + cols]);
            }
        }
    }
    Ok(out)
}

/// The model configuration a GGUF file's metadata describes.
pub fn config_from_gguf(g: &GgufFile) -> Result<ModelConfig, ModelError> {
    let arch_name = g
        .opt_str("general.architecture")?
        .ok_or_else(|| g.err("missing metadata key 'general.architecture'".to_string()))?;
    let arch = match arch_name {
        "llama" => Arch::Llama,
        "qwen2" => Arch::Qwen2,
        other => {
            return Err(g.err(format!(
                "unknown architecture '{other}' (metadata key 'general.architecture'; supported: llama, qwen2)"
            )))
        }
    };
    let key = |k: &str| format!("{arch_name}.{k}");
    let hidden_size = g.require_usize(&key("embedding_length"))?;
    let num_attention_heads = g.require_usize(&key("attention.head_count"))?;
    let num_key_value_heads = g
        .opt_usize(&key("attention.head_count_kv"))?
        .unwrap_or(num_attention_heads);
    let head_dim = match g.opt_usize(&key("attention.key_length"))? {
        Some(d) => d,
        None if num_attention_heads > 0 => hidden_size / num_attention_heads,
        None => 0,
    };
    if let Some(rot) = g.opt_usize(&key("rope.dimension_count"))? {
        if rot != head_dim {
            return Err(g.err(format!(
                "metadata key '{}' is {rot} but the head dimension is {head_dim}; partial rotary is not supported",
                key("rope.dimension_count")
            )));
        }
    }
    if let Some(t) = g.opt_str(&key("rope.scaling.type"))? {
        if t != "none" {
            return Err(g.err(format!(
                "metadata key '{}' is '{t}'; rope scaling from GGUF is not supported",
                key("rope.scaling.type")
            )));
        }
    }
    let vocab_size = match g.opt_usize(&key("vocab_size"))? {
        Some(v) => v,
        None => match g.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()) {
            Some(a) => a.len(),
            None => {
                return Err(g.err(format!(
                    "neither '{}' nor 'tokenizer.ggml.tokens' gives the vocabulary size",
                    key("vocab_size")
                )))
            }
        },
    };
    let mut eos_token_ids = Vec::new();
    for k in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"] {
        if let Some(id) = g.opt_usize(k)? {
            let id =
                u32::try_from(id).map_err(|_| g.err(format!("metadata key '{k}' out of range")))?;
            if !eos_token_ids.contains(&id) {
                eos_token_ids.push(id);
            }
        }
    }
    let bos_token_id = match g.opt_usize("tokenizer.ggml.bos_token_id")? {
        Some(id) => Some(u32::try_from(id).map_err(|_| {
            g.err("metadata key 'tokenizer.ggml.bos_token_id' out of range".to_string())
        })?),
        None => None,
    };
    let cfg = ModelConfig {
        arch,
        vocab_size,
        hidden_size,
        intermediate_size: g.require_usize(&key("feed_forward_length"))?,
        num_hidden_layers: g.require_usize(&key("block_count"))?,
        num_attention_heads,
        num_key_value_heads,
        head_dim,
        rms_norm_eps: g
            .opt_f64(&key("attention.layer_norm_rms_epsilon"))?
            .ok_or_else(|| {
                g.err(format!(
                    "missing metadata key '{}'",
                    key("attention.layer_norm_rms_epsilon")
                ))
            })?,
        rope_theta: g.opt_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0),
        rope_scaling: None,
        max_position_embeddings: g.require_usize(&key("context_length"))?,
        tie_word_embeddings: g.tensor_info("output.weight").is_none(),
        attention_bias: arch == Arch::Qwen2 || g.tensor_info("blk.0.attn_q.bias").is_some(),
        bos_token_id,
        eos_token_ids,
    };
    cfg.validate()
        .map_err(|m| g.err(format!("model configuration from metadata: {m}")))?;
    Ok(cfg)
}

/// Loads a Llama or Qwen2 GGUF file: configuration, f32 weights under Hugging Face
/// names and in Hugging Face layout, tokenizer and chat template.
pub fn load_gguf(path: &Path, device: &Device) -> Result<LoadedModel, ModelError> {
    let g = GgufFile::open(path)?;
    let config = config_from_gguf(&g)?;
    let mut weights = HashMap::with_capacity(g.tensors.len());
    for info in &g.tensors {
        let name = match hf_tensor_name(&info.name) {
            Some(n) => n,
            None if info.name == "rope_freqs.weight" => return Err(g.err(
                "tensor 'rope_freqs.weight' (Llama 3 rope scaling) is not supported from GGUF; \
                     load the Hugging Face folder instead"
                    .to_string(),
            )),
            None => return Err(g.err(format!("unknown tensor '{}'", info.name))),
        };
        let mut data = g.dequantize(info)?;
        let shape = info.shape();
        // llama.cpp permutes q/k rows only for Llama (Qwen2 uses the split-half rotary as is).
        let n_head = match (config.arch, info.name.rsplit_once('.').map(|(p, _)| p)) {
            (Arch::Llama, Some(p)) if p.ends_with(".attn_q") => Some(config.num_attention_heads),
            (Arch::Llama, Some(p)) if p.ends_with(".attn_k") => Some(config.num_key_value_heads),
            _ => None,
        };
        if let Some(n_head) = n_head {
            let rows = shape.first().copied().unwrap_or(1);
            let cols = shape.get(1).copied().unwrap_or(1);
            data = unpermute_qk(&data, rows, cols, n_head)
                .map_err(|m| g.err(format!("tensor '{}': {m}", info.name)))?;
        }
        let t = Tensor::from_vec(data, shape, device)?;
        weights.insert(name, t);
    }
    check_weights(&config, &weights).map_err(|m| g.err(m.to_string()))?;
    let tokenizer = Tokenizer::from_gguf(&g)?;
    let chat_template = g.opt_str("tokenizer.chat_template")?.map(str::to_string);
    Ok(LoadedModel {
        config,
        weights,
        tokenizer,
        chat_template,
    })
}

impl Tokenizer {
    /// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.*` keys).
    pub fn from_gguf(g: &GgufFile) -> Result<Self, ModelError> {
        Tokenizer::from_gguf_vocab(&g.vocab()?)
    }
}
