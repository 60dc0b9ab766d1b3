#!/usr/bin/env bash
# Step-time breakdown of `barl train` (gen / probe / update) for GRPO, Progress
# and BARL on the same setting: the cpu-arith presets with SmolLM2-135M-Instruct,
# STEPS steps each (same seed, so step 1 samples the same rollouts for all
# three), no evaluation. Prints the median of each timing over the steps and
# BARL's and Progress's step time as a ratio of GRPO's.
#
#   bench/train_steps.sh [STEPS] [MODEL]     (MODEL defaults to $BARL_SMOLLM2)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-3}
model=${2:-${BARL_SMOLLM2:?set BARL_SMOLLM2 or pass the model path}}
cargo build --release -q
out=$(mktemp -d /tmp/barl-train-steps.XXXX)
for m in grpo progress barl; do
  target/release/barl train --quiet --config "preset:cpu-arith-$m" "model=$model" \
    "num_steps=$steps" "eval_data=[]" save_every=0 --out "$out/$m" > /dev/null
done
python3 - "$out" <<'PY'
import json, statistics, sys, pathlib
out = pathlib.Path(sys.argv[1])
keys = ["timing_s/gen", "timing_s/probe", "timing_s/update", "timing_s/step", "perf/throughput"]
med = {}
print(f"{'method':<10}" + "".join(f"{k:>18}" for k in keys))
for m in ["grpo", "progress", "barl"]:
    lines = [json.loads(l) for l in open(out / m / "metrics.jsonl")]
    lines = [l for l in lines if "timing_s/step" in l]
    med[m] = {k: statistics.median(l[k] for l in lines) for k in keys}
    print(f"{m:<10}" + "".join(f"{med[m][k]:>18.2f}" for k in keys))
for m in ["progress", "barl"]:
    print(f"{m} step / grpo step: {med[m]['timing_s/step'] / med['grpo']['timing_s/step']:.2f}x")
PY
echo "runs in $out"
