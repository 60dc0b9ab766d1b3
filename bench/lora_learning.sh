#!/usr/bin/env bash
# Does GRPO with a LoRA adapter learn? Runs preset cpu-arith-grpo (30 steps,
# SmolLM2-135M-Instruct) with lora.rank=16, alpha 32, all-linear, at
# learning_rate 1e-4 (10x the preset's full fine-tuning rate, the usual
# LoRA/full ratio), once per seed, and prints per seed the mean training
# reward of steps 1-10 and 21-30 and the held-out accuracy at steps 0, 15, 30.
# LORA_ARGS replaces the LoRA overrides (LORA_ARGS= : full fine-tuning at the
# preset's rate, the comparison).
#
#   bench/lora_learning.sh [SEEDS] [MODEL]     (SEEDS "0 1 2"; MODEL $BARL_SMOLLM2)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-0 1 2}
model=${2:-${BARL_SMOLLM2:?set BARL_SMOLLM2 or pass the model path}}
barl=${BARL_BIN:-target/release/barl}
[ -n "${BARL_BIN:-}" ] || cargo build --release -q
out=$(mktemp -d /tmp/barl-lora-learning.XXXX)
lora_args=${LORA_ARGS-lora.rank=16 lora.alpha=32 learning_rate=1e-4}
for s in $seeds; do
  # shellcheck disable=SC2086
  "$barl" train --quiet --config preset:cpu-arith-grpo "model=$model" seed=$s \
    $lora_args --out "$out/seed-$s" > /dev/null
done
python3 - "$out" $seeds <<'PY'
import json, sys, pathlib
out, seeds = pathlib.Path(sys.argv[1]), sys.argv[2:]
print(f"{'seed':<6}{'reward 1-10':>13}{'reward 21-30':>14}{'held-out 0 / 15 / 30':>24}{'step s':>9}")
for s in seeds:
    lines = [json.loads(l) for l in open(out / f"seed-{s}" / "metrics.jsonl")]
    train = [l for l in lines if "critic/score/mean" in l]
    r = [l["critic/score/mean"] for l in train]
    val = [f"{v:.3f}" for l in lines for k, v in l.items() if k.startswith("val/") and k.endswith("/acc")]
    step = sorted(l["timing_s/step"] for l in train)[len(train) // 2]
    print(f"{s:<6}{sum(r[:10]) / 10:>13.3f}{sum(r[-10:]) / 10:>14.3f}{' / '.join(val):>24}{step:>9.1f}")
PY
echo "runs in $out"
