#!/usr/bin/env bash
# barl vs llama.cpp (llama-cpp-python built from source, CPU) on the same
# weights: SmolLM2-135M-Instruct dequantized once to an F32 GGUF. Greedy, batch
# 1, 128 new tokens with no stop token, THREADS threads each (RAYON_NUM_THREADS
# for barl, n_threads for llama.cpp). The engines alternate, one fresh process
# per run, after one untimed warm-up run of each; the medians of RUNS runs,
# their ratio, and whether the two greedy token sequences agree are printed
# and written as JSON. Not run by CI.
#
# Usage: bench/engine_vs_llamacpp.sh [RUNS]   (default 3)
# Env: BARL_SMOLLM2 (the Q4_1 GGUF; default: scripts/fetch-smollm2.sh),
#      BARL_SMOLLM2_F32 (F32 copy; default: next to the source, made if missing),
#      LLAMACPP_VENV (default /work/venv-llamacpp; created if missing, build log
#      and build time kept in it), THREADS (default 2), NEW_TOKENS (default 128),
#      OUT_JSON (default target/bench/engine_vs_llamacpp.json).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-3}
THREADS=${THREADS:-2}
NEW=${NEW_TOKENS:-128}
VENV=${LLAMACPP_VENV:-/work/venv-llamacpp}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/barl
OUT_JSON=${OUT_JSON:-${CARGO_TARGET_DIR:-$ROOT/target}/bench/engine_vs_llamacpp.json}
HELPER=$ROOT/bench/llamacpp_greedy.py
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# 1. llama-cpp-python from source (CPU only, -march=native) plus gguf and numpy.
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import llama_cpp, gguf, numpy' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q gguf numpy
    echo "building llama-cpp-python from source (log: $VENV/build.log)" >&2
    start=$(date +%s)
    CMAKE_ARGS="-DGGML_NATIVE=ON" nice -n 10 "$VENV/bin/pip" install -v \
        --no-binary llama-cpp-python llama-cpp-python >"$VENV/build.log" 2>&1
    echo "$(($(date +%s) - start)) s" >"$VENV/build.seconds"
fi
echo "llama-cpp-python $("$VENV/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)'), built in $(cat "$VENV/build.seconds" 2>/dev/null || echo '?')"

# 2. The F32 GGUF, made once.
SRC=${BARL_SMOLLM2:-$("$ROOT/scripts/fetch-smollm2.sh")}
F32=${BARL_SMOLLM2_F32:-$(dirname "$SRC")/$(basename "$SRC" .gguf | sed -E 's/\.(Q|IQ|F|BF)[0-9A-Z_]*$//').F32.gguf}
if [ ! -s "$F32" ]; then
    "$VENV/bin/python" "$ROOT/bench/gguf_to_f32.py" "$SRC" "$F32"
fi
(cd "$ROOT" && cargo build --release -q -p barl-cli)

# 3. barl reads the F32 file as it reads the quantized one (it dequantizes to
# f32 on load): greedy text from both files must be identical.
prompt="Tell me a long story about a lighthouse keeper."
for f in "$SRC" "$F32"; do
    RAYON_NUM_THREADS=$THREADS "$BIN" generate --model "$f" --chat --prompt "$prompt" \
        --max-new-tokens 64 --temperature 0 >"$WORK/gen.$(basename "$f").txt" 2>/dev/null
done
if cmp -s "$WORK/gen.$(basename "$SRC").txt" "$WORK/gen.$(basename "$F32").txt"; then
    echo "barl generate: greedy text from $(basename "$SRC") and $(basename "$F32") identical"
else
    echo "barl generate: greedy text from $(basename "$SRC") and $(basename "$F32") DIFFERS" >&2
    exit 1
fi

barl_run() { # $1: output json
    RAYON_NUM_THREADS=$THREADS "$BIN" bench engine --model "$F32" --greedy --batches 1 \
        --new-tokens "$NEW" --runs 1 --no-train --steps 1 --chunk 8 --hypotheses 1 \
        --prefill-len "$PLEN" --json "$1" >>"$WORK/barl.log"
}
llama_run() { # $1: output json
    "$VENV/bin/python" "$HELPER" run "$F32" "$WORK/warm.barl.json" "$1" \
        --new-tokens "$NEW" --threads "$THREADS"
}

# Warm-up (page cache, CPU clocks), and barl's prompt ids for llama.cpp.
PLEN=8
barl_run "$WORK/warm.barl.json"
PLEN=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["prompt_ids"]))' "$WORK/warm.barl.json")
llama_run "$WORK/warm.llama.json"

LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
export LOADAVG_BEFORE
echo "load average before: $LOADAVG_BEFORE"
barl_files=() llama_files=()
for i in $(seq "$RUNS"); do
    barl_run "$WORK/barl.$i.json"
    llama_run "$WORK/llama.$i.json"
    barl_files+=("$WORK/barl.$i.json") llama_files+=("$WORK/llama.$i.json")
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$(dirname "$OUT_JSON")"
"$VENV/bin/python" "$HELPER" report "$OUT_JSON" "${barl_files[@]}" -- "${llama_files[@]}"
echo "model $F32, $THREADS threads; JSON: $OUT_JSON"
