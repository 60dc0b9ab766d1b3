//! Test support for the loading tests: a tiny GGUF writer (independent of the
//! reader under test) and the `BARL_SMOLLM2` / `BARL_REQUIRE_DATA` rule.
#![allow(dead_code)]

use std::path::PathBuf;

mod fixtures;
#[allow(unused_imports)] // not every test file uses the fixtures
pub use fixtures::*;

/// A metadata value as written to a GGUF file: `(value type id, payload bytes)`.
pub struct Kv(pub u32, pub Vec<u8>);

fn string_bytes(s: &str) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(s.as_bytes());
    b
}

pub fn kv_u32(v: u32) -> Kv {
    Kv(4, v.to_le_bytes().to_vec())
}
pub fn kv_f32(v: f32) -> Kv {
    Kv(6, v.to_le_bytes().to_vec())
}
pub fn kv_bool(v: bool) -> Kv {
    Kv(7, vec![u8::from(v)])
}
pub fn kv_str(s: &str) -> Kv {
    Kv(8, string_bytes(s))
}
pub fn kv_str_array(items: &[&str]) -> Kv {
    let mut b = 8u32.to_le_bytes().to_vec();
    b.extend_from_slice(&(items.len() as u64).to_le_bytes());
    for s in items {
        b.extend(string_bytes(s));
    }
    Kv(9, b)
}
pub fn kv_i32_array(items: &[i32]) -> Kv {
    let mut b = 5u32.to_le_bytes().to_vec();
    b.extend_from_slice(&(items.len() as u64).to_le_bytes());
    for x in items {
        b.extend_from_slice(&x.to_le_bytes());
    }
    Kv(9, b)
}

/// A GGUF file under construction.
pub struct GgufBuilder {
    pub version: u32,
    pub alignment: usize,
    pub kvs: Vec<(String, Kv)>,
    /// (name, dims in GGUF order, ggml type id, raw data)
    pub tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

impl GgufBuilder {
    pub fn new() -> Self {
        GgufBuilder {
            version: 3,
            alignment: 32,
            kvs: Vec::new(),
            tensors: Vec::new(),
        }
    }

    pub fn kv(mut self, key: &str, v: Kv) -> Self {
        self.kvs.push((key.to_string(), v));
        self
    }

    /// The tensor entry named `name` (a test edits it to break the file).
    pub fn tensor_mut(&mut self, name: &str) -> &mut (String, Vec<u64>, u32, Vec<u8>) {
        self.tensors
            .iter_mut()
            .find(|t| t.0 == name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
    }

    /// The value of metadata key `key`.
    pub fn kv_mut(&mut self, key: &str) -> &mut Kv {
        let entry = self.kvs.iter_mut().find(|(k, _)| k == key);
        &mut entry.unwrap_or_else(|| panic!("no key {key}")).1
    }

    pub fn tensor(mut self, name: &str, dims: &[u64], ty: u32, data: Vec<u8>) -> Self {
        self.tensors
            .push((name.to_string(), dims.to_vec(), ty, data));
        self
    }

    /// An f32 tensor given in row-major order over `shape` (GGUF dims are reversed).
    pub fn f32_tensor(self, name: &str, shape: &[usize], data: &[f32]) -> Self {
        let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensor(name, &dims, 0, bytes)
    }

    /// The file bytes: header, metadata, tensor table, padding, aligned tensor data.
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        b.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        for (k, Kv(ty, payload)) in &self.kvs {
            b.extend(string_bytes(k));
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(payload);
        }
        let align = |n: usize| n.div_ceil(self.alignment) * self.alignment;
        let mut offset = 0usize;
        let mut offsets = Vec::new();
        for (name, dims, ty, data) in &self.tensors {
            b.extend(string_bytes(name));
            b.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(&(offset as u64).to_le_bytes());
            offsets.push(offset);
            offset = align(offset + data.len());
        }
        let start = align(b.len());
        b.resize(start, 0);
        for ((_, _, _, data), off) in self.tensors.iter().zip(offsets) {
            b.resize(start + off, 0);
            b.extend_from_slice(data);
        }
        b
    }

    pub fn write(&self, path: &std::path::Path) {
        std::fs::write(path, self.bytes()).expect("write test GGUF");
    }
}

/// A fresh, empty scratch directory under the system temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    // A fresh folder per call: tests run in parallel, and two of them asking
    // for the same name must not remove or overwrite each other's files.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("barl-model-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// The real SmolLM2 GGUF from `BARL_SMOLLM2`. Unset: `None` with a printed note,
/// unless `BARL_REQUIRE_DATA=1`, which makes it (or a missing file) a failure.
pub fn smollm2() -> Option<PathBuf> {
    let required = std::env::var("BARL_REQUIRE_DATA").is_ok_and(|v| v == "1");
    match std::env::var_os("BARL_SMOLLM2") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "BARL_SMOLLM2={} is not a file", p.display());
            Some(p)
        }
        None if required => panic!("BARL_REQUIRE_DATA=1 but BARL_SMOLLM2 is not set"),
        None => {
            eprintln!(
                "note: BARL_SMOLLM2 unset; skipping the test that needs the real SmolLM2 GGUF"
            );
            None
        }
    }
}

/// A small deterministic generator (SplitMix64) for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
