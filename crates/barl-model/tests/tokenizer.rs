//! Tokenizer and chat templates: hand-computed ids on tiny GGUF vocabularies for each
//! pre-tokenizer family, and the real SmolLM2 tokenizer and chat template against
//! fixtures written by Hugging Face transformers (`scripts/make_tokenizer_fixtures.py`).

mod loading_support;

use std::path::{Path, PathBuf};

use barl_model::gguf::GgufFile;
use barl_model::{load_gguf, render_chat, ChatMessage, Tokenizer};
use candle_core::Device;
use loading_support::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn read_jsonl(name: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A tiny byte-level vocabulary: byte b has id b (in GPT-2's byte alphabet), then
/// 256 "ĠĠ", 257 "hi", 258 "<|im_start|>" (control), 259 "<|im_end|>" (control),
/// 260 "12", 261 "<think>" (user-defined).
fn tiny_tokenizer(pre: &str, add_bos: bool) -> Result<Tokenizer, barl_model::ModelError> {
    let map = barl_model::tokenizer::byte_to_char_map();
    let mut tokens: Vec<String> = map.iter().map(|c| c.to_string()).collect();
    tokens.extend(["ĠĠ", "hi", "<|im_start|>", "<|im_end|>", "12", "<think>"].map(String::from));
    let mut types = vec![1; tokens.len()];
    types[258] = 3;
    types[259] = 3;
    types[261] = 4;
    let toks: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let b = GgufBuilder::new()
        .kv("tokenizer.ggml.model", kv_str("gpt2"))
        .kv("tokenizer.ggml.pre", kv_str(pre))
        .kv("tokenizer.ggml.tokens", kv_str_array(&toks))
        .kv("tokenizer.ggml.token_type", kv_i32_array(&types))
        .kv(
            "tokenizer.ggml.merges",
            kv_str_array(&["Ġ Ġ", "h i", "1 2"]),
        )
        .kv("tokenizer.ggml.bos_token_id", kv_u32(258))
        .kv("tokenizer.ggml.eos_token_id", kv_u32(259))
        .kv("tokenizer.ggml.add_bos_token", kv_bool(add_bos));
    let dir = scratch_dir(&format!("tok-{pre}-{add_bos}"));
    let path = dir.join("tok.gguf");
    b.write(&path);
    Tokenizer::from_gguf(&GgufFile::open(&path).unwrap())
}

#[test]
fn pre_tokenizer_families_split_digits_and_spaces_as_specified() {
    // ids: 'x' = 120, ' ' = 'Ġ' = 32, '1' = 49, '2' = 50, '3' = 51, "ĠĠ" = 256, "12" = 260.
    // smollm: digits alone first, so "x  " is one chunk whose "  " merges to "ĠĠ".
    let smollm = tiny_tokenizer("smollm", false).unwrap();
    assert_eq!(
        smollm.encode("x  12", false).unwrap(),
        vec![120, 256, 49, 50]
    );
    assert_eq!(
        smollm.encode("x 123", false).unwrap(),
        vec![120, 32, 49, 50, 51]
    );
    // GPT-2 regex: "x", " " (\s+(?!\S)), " 12" (" ?\p{N}+"), whose "12" merges.
    let gpt2 = tiny_tokenizer("gpt2", false).unwrap();
    assert_eq!(gpt2.encode("x  12", false).unwrap(), vec![120, 32, 32, 260]);
    let default = tiny_tokenizer("default", false).unwrap();
    assert_eq!(
        default.encode("x  12", false).unwrap(),
        vec![120, 32, 32, 260]
    );
    // Llama 3: digits in runs of up to three: "123" -> "12" + "3"; "1234" -> "123", "4".
    let llama3 = tiny_tokenizer("llama-bpe", false).unwrap();
    assert_eq!(
        llama3.encode("x  12", false).unwrap(),
        vec![120, 32, 32, 260]
    );
    assert_eq!(llama3.encode("1234", false).unwrap(), vec![260, 51, 52]);
    // Qwen2: single digits, and NFC: "e\u{301}" becomes "é" = bytes C3 A9.
    let qwen2 = tiny_tokenizer("qwen2", false).unwrap();
    assert_eq!(
        qwen2.encode("x  12", false).unwrap(),
        vec![120, 32, 32, 49, 50]
    );
    assert_eq!(qwen2.encode("e\u{301}", false).unwrap(), vec![0xC3, 0xA9]);
    // Without NFC the combining accent stays: e, CC 81.
    assert_eq!(
        smollm.encode("e\u{301}", false).unwrap(),
        vec![101, 0xCC, 0x81]
    );
}

#[test]
fn special_and_user_defined_tokens_match_whole() {
    let t = tiny_tokenizer("smollm", false).unwrap();
    let ids = t.encode("<|im_start|>hi<|im_end|>", false).unwrap();
    assert_eq!(ids, vec![258, 257, 259]);
    assert_eq!(t.decode(&ids, false).unwrap(), "<|im_start|>hi<|im_end|>");
    assert_eq!(t.decode(&ids, true).unwrap(), "hi");
    // A user-defined token is matched whole but is not special: kept when skipping specials.
    let ids = t.encode("a<think>b", false).unwrap();
    assert_eq!(ids, vec![97, 261, 98]);
    assert_eq!(t.decode(&ids, true).unwrap(), "a<think>b");
    // Not quite a special token: byte by byte ('<' 60, '|' 124, ...).
    assert_eq!(t.encode("<|im", false).unwrap(), vec![60, 124, 105, 109]);
    assert_eq!(
        (t.bos_token_id(), t.eos_token_id(), t.vocab_size()),
        (Some(258), Some(259), 262)
    );
    assert_eq!(t.token_to_id("hi"), Some(257));
    assert_eq!(t.id_to_token(256).as_deref(), Some("ĠĠ"));
    assert_eq!(
        (t.bos_token().as_deref(), t.eos_token().as_deref()),
        (Some("<|im_start|>"), Some("<|im_end|>"))
    );
    // Byte-level decoding restores arbitrary UTF-8.
    let s = "naïve 🙂\t\n";
    assert_eq!(t.decode(&t.encode(s, false).unwrap(), false).unwrap(), s);
}

#[test]
fn add_bos_token_prepends_bos_only_with_special_tokens() {
    let t = tiny_tokenizer("smollm", true).unwrap();
    assert!(t.add_bos_token());
    assert_eq!(t.encode("hi", true).unwrap(), vec![258, 257]);
    assert_eq!(t.encode("hi", false).unwrap(), vec![257]);
    let no = tiny_tokenizer("smollm", false).unwrap();
    assert!(!no.add_bos_token());
    assert_eq!(no.encode("hi", true).unwrap(), vec![257]);
    // The saved tokenizer.json keeps the behaviour.
    let mut back = Tokenizer::from_json(&t.to_tokenizer_json().unwrap()).unwrap();
    back.set_special_ids(Some(258), Some(259), None);
    assert!(back.add_bos_token());
    assert_eq!(
        back.encode("<|im_end|>hi", true).unwrap(),
        vec![258, 259, 257]
    );
}

#[test]
fn unsupported_pre_tokenizer_is_an_error_naming_the_key() {
    let err = tiny_tokenizer("deepseek-coder", false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tokenizer.ggml.pre") && err.contains("deepseek-coder"),
        "{err}"
    );
    assert!(Tokenizer::from_json("{ not json").is_err());
}

// ---------------------------------------------------------------------------
// Chat templates
// ---------------------------------------------------------------------------

fn messages(v: &serde_json::Value) -> Vec<ChatMessage> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| ChatMessage::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect()
}

#[test]
fn qwen25_style_template_matches_transformers_rendering() {
    let template = std::fs::read_to_string(fixture("qwen25_template.jinja")).unwrap();
    let cases = read_jsonl("qwen25_chat.jsonl");
    assert!(cases.len() >= 6);
    for c in &cases {
        let got = render_chat(
            &template,
            &messages(&c["messages"]),
            c["add_generation_prompt"].as_bool().unwrap(),
            "",
            "",
        )
        .unwrap();
        assert_eq!(got, c["rendered"].as_str().unwrap(), "{}", c["messages"]);
    }
    // The template's raise_exception on an unexpected role is an error carrying its message.
    let err = render_chat(&template, &[ChatMessage::new("tool", "x")], true, "", "")
        .unwrap_err()
        .to_string();
    assert!(err.contains("Unexpected role: tool"), "{err}");
    // A template that does not parse is an error, not a panic.
    assert!(render_chat("{% if %}", &[], false, "", "").is_err());
}

#[test]
fn bos_and_eos_reach_the_template() {
    let t = "{{ bos_token }}{% for m in messages %}{{ m.role | upper }}:{{ m.content | trim }}{{ eos_token }}{% endfor %}";
    let out = render_chat(t, &[ChatMessage::new("user", " hi ")], false, "<s>", "</s>").unwrap();
    assert_eq!(out, "<s>USER:hi</s>");
}

// ---------------------------------------------------------------------------
// The real SmolLM2 tokenizer against transformers
// ---------------------------------------------------------------------------

#[test]
fn smollm2_tokenizer_matches_transformers_on_fixture_strings() {
    let Some(path) = smollm2() else { return };
    let m = load_gguf(&path, &Device::Cpu).unwrap();
    let cases = read_jsonl("smollm2_tokens.jsonl");
    assert!(cases.len() >= 200, "{} fixture strings", cases.len());
    // The tokenizer as saved to tokenizer.json must behave the same.
    let mut reloaded = Tokenizer::from_json(&m.tokenizer.to_tokenizer_json().unwrap()).unwrap();
    reloaded.set_special_ids(Some(1), Some(2), Some(2));
    let mut mismatches = Vec::new();
    for c in &cases {
        let text = c["text"].as_str().unwrap();
        let want: Vec<u32> = c["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = m.tokenizer.encode(text, false).unwrap();
        if got != want {
            mismatches.push(format!("{text:?}: ours {got:?}, transformers {want:?}"));
            continue;
        }
        assert_eq!(
            reloaded.encode(text, true).unwrap(),
            want,
            "{text:?} after tokenizer.json round trip"
        );
        let decoded = m.tokenizer.decode(&got, false).unwrap();
        assert_eq!(decoded, c["decoded"].as_str().unwrap(), "decode {text:?}");
        assert_eq!(decoded, text, "decode does not give back {text:?}");
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
    assert_eq!(
        (
            m.tokenizer.bos_token_id(),
            m.tokenizer.eos_token_id(),
            m.tokenizer.pad_token_id()
        ),
        (Some(1), Some(2), Some(2))
    );
    assert!(!m.tokenizer.add_bos_token());
}

#[test]
fn smollm2_chat_template_matches_transformers() {
    let Some(path) = smollm2() else { return };
    let m = load_gguf(&path, &Device::Cpu).unwrap();
    let template = m.chat_template.expect("SmolLM2 GGUF has a chat template");
    let bos = m.tokenizer.bos_token().unwrap();
    let eos = m.tokenizer.eos_token().unwrap();
    for c in read_jsonl("smollm2_chat.jsonl") {
        let got = render_chat(
            &template,
            &messages(&c["messages"]),
            c["add_generation_prompt"].as_bool().unwrap(),
            &bos,
            &eos,
        )
        .unwrap();
        assert_eq!(got, c["rendered"].as_str().unwrap(), "{}", c["messages"]);
    }
}
