#!/usr/bin/env bash
# Speed and agreement of `barl grade` (standard grader, release build) against the
# math-verify package (its parse + verify, one Python process, start-up and imports
# excluded) on the same 800 (gold, pred) pairs of
# shared/data/grader/qwen_math_cot_100.jsonl. Reports the median pairs/s of RUNS
# runs of each, the ratio and the verdict agreement; then the same for the subset
# of pairs whose two strings differ; then the 800 whole responses, each grader
# extracting the answer itself; then, for each case file given (default:
# crates/barl-math/tests/data/grader_families.jsonl), (gold, response) lines graded
# from the whole response by both, with the agreement of each with the file's
# hand verdicts (`equal`).
#
# Usage: bench/grade_vs_mathverify.sh [RUNS] [CASES.jsonl ...]   (default 3)
# Env: BARL_DATA_DIR (default ../shared/data), MATHVERIFY_VENV (default
# /work/venv-mathverify; created and math-verify installed from PyPI if missing).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${BARL_DATA_DIR:-$ROOT/../shared/data}
VENV=${MATHVERIFY_VENV:-/work/venv-mathverify}
RUNS=${1:-3}
shift || true
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=("$ROOT/crates/barl-math/tests/data/grader_families.jsonl")
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/barl
HELPER=$ROOT/bench/grade_mathverify.py
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# The toolkit's 800 whole responses come first: both graders extract the answer.
CASES=("$WORK/responses.jsonl" "${CASES[@]}")

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import math_verify' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q 'math-verify==0.9.0'
fi
(cd "$ROOT" && cargo build --release -q -p barl-cli)

python3 "$HELPER" pairs "$DATA/grader/qwen_math_cot_100.jsonl" "$WORK/all.jsonl" "$WORK/diff.jsonl" "$WORK/responses.jsonl"
# All 800 pairs, then only those whose strings differ (where no identical-string
# shortcut applies).
# The two alternate, one run each per round, so that a busy machine slows both.
for set in all diff; do
    : > "$WORK/$set.barl.log"; : > "$WORK/$set.mv.rates"
    for _ in $(seq "$RUNS"); do
        "$BIN" grade "$WORK/$set.jsonl" --output "$WORK/$set.barl.jsonl" 2>>"$WORK/$set.barl.log"
        "$VENV/bin/python" "$HELPER" verify "$WORK/$set.jsonl" "$WORK/$set.mv.jsonl" 1
        tail -n 1 "$WORK/$set.mv.jsonl" >> "$WORK/$set.mv.rates"
    done
    python3 "$HELPER" report "$set" "$WORK/$set.barl.log" "$WORK/$set.barl.jsonl" "$WORK/$set.mv.jsonl" "$WORK/$set.mv.rates"
done
# Case files: whole responses.
for cases in "${CASES[@]}"; do
    name=$(basename "$cases" .jsonl)
    : > "$WORK/$name.barl.log"; : > "$WORK/$name.mv.rates"
    for _ in $(seq "$RUNS"); do
        "$BIN" grade "$cases" --output "$WORK/$name.barl.jsonl" 2>>"$WORK/$name.barl.log"
        "$VENV/bin/python" "$HELPER" verify-cases "$cases" "$WORK/$name.mv.jsonl" 1
        tail -n 1 "$WORK/$name.mv.jsonl" >> "$WORK/$name.mv.rates"
    done
    python3 "$HELPER" report "$name" "$WORK/$name.barl.log" "$WORK/$name.barl.jsonl" "$WORK/$name.mv.jsonl" "$WORK/$name.mv.rates"
done
