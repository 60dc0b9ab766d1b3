#!/usr/bin/env bash
# Wall time of the default job (`barl synthetic`: 3 methods, 1 seed), median of
# N runs (default 3), and a determinism check: every run's summary.json must be
# byte-identical. Usage: bench/synthetic.sh [N] [extra barl synthetic flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-3}"; shift || true
cargo build --release --quiet
out="$(mktemp -d)"
times=()
for i in $(seq 1 "$n"); do
  /usr/bin/time -f "%e" -o "$out/time-$i" \
    target/release/barl synthetic --quiet --out "$out/run-$i" "$@" > "$out/stdout-$i"
  t="$(cat "$out/time-$i")"
  times+=("$t")
  echo "run $i: ${t} s"
done
median="$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')"
echo "median wall time over $n runs: ${median} s"
same=yes
for i in $(seq 2 "$n"); do
  cmp -s "$out/run-1/summary.json" "$out/run-$i/summary.json" || same=no
done
echo "summary.json identical across runs: $same"
cat "$out/stdout-1"
rm -rf "$out"
[[ "$same" == yes ]]
