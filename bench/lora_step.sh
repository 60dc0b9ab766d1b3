#!/usr/bin/env bash
# LoRA against full fine-tuning, barl against PyTorch + PEFT: one training
# step (BATCH x LEN tokens, mean NLL, backward, AdamW) of MODEL (default
# $BARL_SMOLLM2, converted to a Hugging Face folder for both) with all
# weights and with a rank-RANK all-linear adapter. ROUNDS alternating rounds,
# each configuration in its own process (so peak RSS is its own) timing RUNS
# steps; prints the median over rounds of each one's median step time and
# its peak RSS, and the ratios. PyTorch and PEFT come from the venv of
# scripts/vllm-cpu.sh install.
#
#   bench/lora_step.sh [ROUNDS] [RUNS] [MODEL]     (defaults 3 3; batch 4 x 256, rank 16)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
runs=${2:-3}
model=${3:-${BARL_SMOLLM2:?set BARL_SMOLLM2 or pass the model path}}
batch=${BATCH:-4}
len=${LEN:-256}
rank=${RANK:-16}
scripts/vllm-cpu.sh install > /dev/null
py=${BARL_VLLM_VENV:-$HOME/.cache/barl/vllm-venv}/bin/python
cargo build --release -q
out=$(mktemp -d /tmp/barl-lora-step.XXXX)
target/release/barl convert "$model" "$out/hf" > /dev/null
for r in $(seq "$rounds"); do
  for cfg in full lora; do
    extra=""
    [ "$cfg" = lora ] && extra="--lora-rank $rank"
    # shellcheck disable=SC2086
    target/release/barl bench engine --model "$out/hf" --train-only --runs "$runs" \
      --train-batch "$batch" --train-len "$len" $extra --json "$out/barl-$cfg-$r.json" > /dev/null
    lr=0
    [ "$cfg" = lora ] && lr=$rank
    "$py" bench/torch_train_step.py "$out/hf" "$batch" "$len" "$runs" "$lr" > "$out/torch-$cfg-$r.json"
  done
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys, pathlib
out, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])
def med(who, cfg, key):
    vals = []
    for r in range(1, rounds + 1):
        d = json.load(open(out / f"{who}-{cfg}-{r}.json"))
        vals.append((d["train_step"] if who == "barl" else d)[key])
    return statistics.median(vals)
print(f"{'':<22}{'step s':>8}{'peak RSS GB':>13}{'trainable':>12}")
t = {}
for who in ["barl", "torch"]:
    for cfg in ["full", "lora"]:
        t[who, cfg] = med(who, cfg, "seconds")
        name = ("barl " if who == "barl" else "PyTorch ") + ("full" if cfg == "full" else "LoRA" if who == "barl" else "+ PEFT LoRA")
        print(f"{name:<22}{t[who, cfg]:>8.2f}{med(who, cfg, 'peak_rss_bytes') / 1e9:>13.2f}"
              f"{med(who, cfg, 'trainable_parameters') / 1e6:>11.2f}M")
print(f"barl LoRA / PyTorch+PEFT LoRA: {t['barl', 'lora'] / t['torch', 'lora']:.2f}x")
print(f"barl full / PyTorch full:      {t['barl', 'full'] / t['torch', 'full']:.2f}x")
print(f"barl LoRA / barl full:         {t['barl', 'lora'] / t['barl', 'full']:.2f}x")
PY
echo "results in $out"
