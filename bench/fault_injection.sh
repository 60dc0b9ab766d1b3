#!/usr/bin/env bash
# Fault injection (issue 15): kill -9 at seeded random moments of RUNS runs of the
# tiny preset then --resume, a corrupt newest checkpoint, Ctrl-C, barl eval resumed
# with changed settings, barl grade on bad lines, learning_rate=1e6 on SmolLM2.
# Prints the table (scenario, expected, observed, pass) and writes it to TABLE;
# exits non-zero when a row fails. The scenarios live in
# crates/barl-cli/tests/fault_injection.rs, which the test suite also runs.
#
#   bench/fault_injection.sh [RUNS] [SEED] [TABLE]   (defaults 20, 15, fault-injection.md)
#   BARL_SMOLLM2 must name the SmolLM2 GGUF (scripts/fetch-smollm2.sh prints it).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
seed=${2:-15}
table=$(realpath -m "${3:-fault-injection.md}")
: "${BARL_SMOLLM2:?set BARL_SMOLLM2 (scripts/fetch-smollm2.sh prints the path)}"
BARL_FAULT_RUNS=$runs BARL_FAULT_SEED=$seed BARL_FAULT_TABLE=$table BARL_REQUIRE_DATA=1 \
  cargo test --release -q -p barl-cli --test fault_injection -- --nocapture 2>&1 |
  grep -E '^(\||reference run|test result)'
echo "table written to $table"
