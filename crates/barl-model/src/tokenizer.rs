//! The text tokenizer: a thin wrapper over Hugging Face `tokenizers`, built either
//! from a `tokenizer.json` or from a GGUF file's `tokenizer.ggml.*` metadata.
//!
//! From GGUF we support byte-level BPE (`tokenizer.ggml.model = "gpt2"`). The
//! pre-tokenizer follows `tokenizer.ggml.pre`, as llama.cpp does:
//!
//! | `pre` | split before byte-level BPE |
//! |---|---|
//! | absent, `default`, `gpt2` | the GPT-2 regex |
//! | `smollm`, `starcoder`, `refact`, `codeshell`, ... | every digit alone, then the GPT-2 regex |
//! | `llama-bpe`, `llama3`, ... | the Llama 3 regex (digits in runs of up to 3) |
//! | `qwen2`, `deepseek-r1-qwen` | the Qwen2 regex (single digits), NFC-normalised input |
//!
//! Tokens typed control (3) become special added tokens and user-defined ones (4)
//! plain added tokens, so both are matched whole in the input text.

use std::path::PathBuf;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior};

use crate::ModelError;

/// What a GGUF file says about its tokenizer (the `tokenizer.ggml.*` keys), as
/// [`crate::gguf::GgufFile::vocab`] reads it; [`Tokenizer::from_gguf_vocab`]
/// builds the tokenizer. Kept apart so this file does not depend on the GGUF
/// reader.
#[derive(Clone, Debug, Default)]
pub struct GgufVocab<'a> {
    /// The file, for error messages.
    pub file: PathBuf,
    /// `tokenizer.ggml.model` ("(absent)" when missing).
    pub model: String,
    pub tokens: &'a [String],
    pub merges: &'a [String],
    /// `tokenizer.ggml.token_type`, when present.
    pub token_types: Option<Vec<i64>>,
    /// `tokenizer.ggml.pre` ("default" when missing).
    pub pre: String,
    pub bos: Option<usize>,
    pub eos: Option<usize>,
    pub pad: Option<usize>,
    pub add_bos: bool,
    pub add_eos: bool,
}

/// Llama 3's pre-tokenizer split (digits in runs of up to three).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's pre-tokenizer split (single digits).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF `token_type` values.
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// A tokenizer with its special-token ids.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos_token_id: Option<u32>,
    eos_token_id: Option<u32>,
    pad_token_id: Option<u32>,
    add_bos_token: bool,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos_token_id", &self.bos_token_id)
            .field("eos_token_id", &self.eos_token_id)
            .finish()
    }
}

fn tok_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer(e.to_string())
}

/// GPT-2's reversible map from bytes to printable characters: printable Latin-1
/// bytes map to themselves, the other 68 bytes to U+0100 onwards, in byte order.
pub fn byte_to_char_map() -> [char; 256] {
    let mut map = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        map[b as usize] = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(next).unwrap_or('\u{FFFD}');
            next += 1;
            c
        };
        debug_assert!(next <= 256 + 68);
    }
    map
}

impl Tokenizer {
    /// Parses a `tokenizer.json`. Special ids are unset; see [`Tokenizer::set_special_ids`].
    pub fn from_json(json: &str) -> Result<Self, ModelError> {
        let inner: tokenizers::Tokenizer = json.parse().map_err(tok_err)?;
        let mut t = Tokenizer {
            inner,
            bos_token_id: None,
            eos_token_id: None,
            pad_token_id: None,
            add_bos_token: false,
        };
        t.add_bos_token = t.detect_add_bos();
        Ok(t)
    }

    /// Sets the bos/eos/pad ids (as `tokenizer_config.json` or `config.json` give them).
    pub fn set_special_ids(&mut self, bos: Option<u32>, eos: Option<u32>, pad: Option<u32>) {
        self.bos_token_id = bos;
        self.eos_token_id = eos;
        self.pad_token_id = pad;
        self.add_bos_token = self.detect_add_bos();
    }

    /// Whether encoding with special tokens prepends bos (read off the post-processor).
    fn detect_add_bos(&self) -> bool {
        match (self.bos_token_id, self.inner.encode_fast("", true)) {
            (Some(bos), Ok(enc)) => enc.get_ids().first() == Some(&bos),
            _ => false,
        }
    }

    /// Builds the tokenizer a GGUF file describes (its `tokenizer.ggml.*` keys,
    /// read by [`crate::gguf::GgufFile::vocab`]).
    pub fn from_gguf_vocab(v: &GgufVocab) -> Result<Self, ModelError> {
        let err = |msg: String| ModelError::File {
            file: v.file.clone(),
            msg,
        };
        if v.model != "gpt2" {
            return Err(err(format!(
                "metadata key 'tokenizer.ggml.model' is '{}'; only byte-level BPE ('gpt2') is supported",
                v.model
            )));
        }
        let (tokens, merges) = (v.tokens, v.merges);
        let token_types = v
            .token_types
            .clone()
            .unwrap_or_else(|| vec![1; tokens.len()]);
        if token_types.len() != tokens.len() {
            return Err(err(format!(
                "metadata key 'tokenizer.ggml.token_type' has {} entries but there are {} tokens",
                token_types.len(),
                tokens.len()
            )));
        }

        // Tokens are stored in GPT-2's byte alphabet; one with other characters is
        // respelled from its UTF-8 bytes (as transformers does).
        let byte_map = byte_to_char_map();
        let alphabet: std::collections::HashSet<char> = byte_map.iter().copied().collect();
        let in_alphabet = |t: &str| t.chars().all(|c| alphabet.contains(&c));
        let mut vocab = Vocab::default();
        for (id, tok) in tokens.iter().enumerate() {
            let id = u32::try_from(id).map_err(|_| err("too many tokens".into()))?;
            let key = if in_alphabet(tok) {
                tok.clone()
            } else {
                tok.bytes().map(|b| byte_map[b as usize]).collect()
            };
            vocab.insert(key, id);
        }
        let mut merge_pairs = Vec::with_capacity(merges.len());
        for (i, m) in merges.iter().enumerate() {
            let (a, b) = m.split_once(' ').ok_or_else(|| {
                err(format!(
                    "metadata key 'tokenizer.ggml.merges' entry {i} ({m:?}) has no space"
                ))
            })?;
            merge_pairs.push((a.to_string(), b.to_string()));
        }

        let pre = v.pre.as_str();
        let byte_level = |use_regex: bool| ByteLevel::new(false, true, use_regex);
        let split = |re: &str| -> Result<PreTokenizerWrapper, ModelError> {
            let s = Split::new(
                SplitPattern::Regex(re.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(tok_err)?;
            Ok(Sequence::new(vec![s.into(), byte_level(false).into()]).into())
        };
        let (pre_tokenizer, ignore_merges, nfc): (PreTokenizerWrapper, bool, bool) = match pre {
            "default" | "gpt2" | "gpt-2" => (byte_level(true).into(), false, false),
            "smollm" | "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "command-r" => {
                let seq = Sequence::new(vec![Digits::new(true).into(), byte_level(true).into()]);
                (seq.into(), false, false)
            }
            "llama3" | "llama-v3" | "llama-bpe" | "smaug-bpe" | "dbrx" | "falcon3" => {
                (split(LLAMA3_SPLIT)?, true, false)
            }
            "qwen2" | "deepseek-r1-qwen" => (split(QWEN2_SPLIT)?, false, true),
            other => {
                return Err(err(format!(
                    "metadata key 'tokenizer.ggml.pre' is '{other}', a pre-tokenizer this loader does not know \
                     (supported: default, gpt2, smollm, starcoder, llama-bpe, llama3, qwen2)"
                )))
            }
        };
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merge_pairs)
            .ignore_merges(ignore_merges)
            .build()
            .map_err(|e| err(format!("metadata 'tokenizer.ggml.tokens'/'merges': {e}")))?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(pre_tokenizer));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        if nfc {
            inner.with_normalizer(Some(NFC)).map_err(tok_err)?;
        }

        let special: Vec<AddedToken> = tokens
            .iter()
            .zip(&token_types)
            .filter(|(t, &ty)| ty == TOKEN_TYPE_CONTROL && in_alphabet(t))
            .map(|(t, _)| AddedToken::from(t.clone(), true).normalized(false))
            .collect();
        inner.add_special_tokens(special).map_err(tok_err)?;
        let user: Vec<AddedToken> = tokens
            .iter()
            .zip(&token_types)
            .filter(|(t, &ty)| ty == TOKEN_TYPE_USER_DEFINED && in_alphabet(t))
            .map(|(t, _)| AddedToken::from(t.clone(), false).normalized(false))
            .collect();
        inner.add_tokens(user).map_err(tok_err)?;

        let id = |key: &str, value: Option<usize>| -> Result<Option<u32>, ModelError> {
            match value {
                None => Ok(None),
                Some(i) if i < tokens.len() => Ok(Some(i as u32)),
                Some(i) => Err(err(format!(
                    "metadata key '{key}' is {i}, outside the vocabulary of {} tokens",
                    tokens.len()
                ))),
            }
        };
        let bos = id("tokenizer.ggml.bos_token_id", v.bos)?;
        let eos = id("tokenizer.ggml.eos_token_id", v.eos)?;
        let pad = id("tokenizer.ggml.padding_token_id", v.pad)?;
        let (add_bos, add_eos) = (v.add_bos, v.add_eos);
        // The post-processor: `[bos] $A [eos]` as the add_*_token flags say.
        let mut single = Vec::new();
        let mut specials = Vec::new();
        for (on, tid, key) in [(add_bos, bos, "bos"), (add_eos, eos, "eos")] {
            if key == "eos" {
                single.push("$A".to_string());
            }
            if !on {
                continue;
            }
            let tid = tid.ok_or_else(|| {
                err(format!(
                    "metadata key 'tokenizer.ggml.add_{key}_token' is set but there is no {key} id"
                ))
            })?;
            let content = tokens[tid as usize].clone();
            if content.is_empty() || content.chars().any(char::is_whitespace) {
                return Err(err(format!(
                    "{key} token {content:?} is empty or contains whitespace"
                )));
            }
            specials.push((content.clone(), tid));
            single.push(content);
        }
        if !specials.is_empty() {
            let post = TemplateProcessing::builder()
                .try_single(single.join(" "))
                .map_err(tok_err)?
                .special_tokens(specials)
                .build()
                .map_err(tok_err)?;
            inner.with_post_processor(Some(post));
        }
        Ok(Tokenizer {
            inner,
            bos_token_id: bos,
            eos_token_id: eos,
            pad_token_id: pad,
            add_bos_token: add_bos,
        })
    }

    /// Token ids of `text`; with `add_special`, the post-processor's tokens too (e.g. bos).
    /// Special tokens written in the text (such as `<|im_start|>`) are always matched whole.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>, ModelError> {
        let enc = self.inner.encode_fast(text, add_special).map_err(tok_err)?;
        Ok(enc.get_ids().to_vec())
    }

    /// The text of `ids`; with `skip_special`, special tokens are left out.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String, ModelError> {
        self.inner.decode(ids, skip_special).map_err(tok_err)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Number of token ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn bos_token_id(&self) -> Option<u32> {
        self.bos_token_id
    }

    pub fn eos_token_id(&self) -> Option<u32> {
        self.eos_token_id
    }

    pub fn pad_token_id(&self) -> Option<u32> {
        self.pad_token_id
    }

    /// The bos token's text (for chat templates), if there is one.
    pub fn bos_token(&self) -> Option<String> {
        self.bos_token_id.and_then(|i| self.id_to_token(i))
    }

    /// The eos token's text (for chat templates), if there is one.
    pub fn eos_token(&self) -> Option<String> {
        self.eos_token_id.and_then(|i| self.id_to_token(i))
    }

    /// Whether `encode(_, true)` prepends the bos token.
    pub fn add_bos_token(&self) -> bool {
        self.add_bos_token
    }

    /// The Hugging Face `tokenizer.json` text for this tokenizer.
    pub fn to_tokenizer_json(&self) -> Result<String, ModelError> {
        self.inner.to_string(true).map_err(tok_err)
    }

    /// The wrapped `tokenizers` object.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_is_a_bijection_with_gpt2_values() {
        let m = byte_to_char_map();
        let set: std::collections::HashSet<char> = m.iter().copied().collect();
        assert_eq!(set.len(), 256);
        // Space (0x20) is the 33rd non-printable byte (0x00..=0x20), so U+0100 + 32 = 'Ġ'.
        assert_eq!(m[b' ' as usize], 'Ġ');
        // Newline 0x0A is the 11th: U+0100 + 10 = 'Ċ'.
        assert_eq!(m[b'\n' as usize], 'Ċ');
        assert_eq!(m[b'a' as usize], 'a');
        // 0xAD (soft hyphen) is not printable: after the 33 low ones and 0x7F..=0xA0 (34): U+0100 + 67.
        assert_eq!(m[0xAD], '\u{143}');
    }
}
