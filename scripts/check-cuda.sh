#!/usr/bin/env bash
# Type-checks the workspace with the `cuda` feature (candle's CUDA backend)
# on a machine with no GPU and no system CUDA. Not part of CI (.ci/run).
#
# The CUDA compiler comes from PyPI. The CUDA 12 wheels
# (nvidia-cuda-nvcc-cu12) ship only ptxas, so this uses the CUDA 13 wheels,
# which hold the full nvcc and lay out one CUDA root under nvidia/cu13/.
# candle-kernels' build script runs nvcc (PTX and a static lib of MoE/GGUF
# kernels) and cudarc's reads `nvcc --version`; no driver is needed to check.
#
# CUDA 13.0 is the oldest CUDA 13 and needs NVIDIA driver >= 580 at run time.
#
#   BARL_CUDA_VENV    venv holding the wheels (default: <cache>/cuda-venv)
#   BARL_CACHE_DIR    cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/barl)
#   CUDA_COMPUTE_CAP  target GPU (default 90: H100/H200)
#   Extra arguments go to `cargo check` (e.g. --all-targets).
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${BARL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/barl}"
venv="${BARL_CUDA_VENV:-$cache/cuda-venv}"
# One CUDA release; the wheels must agree on it.
wheels=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85
)

if [[ ! -f "$venv/.complete" ]]; then
  python=${PYTHON:-python3}
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet "${wheels[@]}"
  touch "$venv/.complete"
fi

root="$(echo "$venv"/lib/python3*/site-packages/nvidia/cu13)"
if [[ ! -x "$root/bin/nvcc" ]]; then
  echo "check-cuda: no nvcc under $root; delete $venv and rerun" >&2
  exit 1
fi

export CUDA_ROOT="$root" CUDA_PATH="$root" CUDA_HOME="$root"
export NVCC="$root/bin/nvcc"
export PATH="$root/bin:$PATH"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
# Own target dir, so the main one keeps its (CPU) build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cuda-check}"

nvcc --version | tail -n 2
"$venv/bin/python" -m pip list 2>/dev/null | grep -i '^nvidia' || true

start=$SECONDS
cargo check --workspace --features cuda "$@"
echo "check-cuda: passed in $((SECONDS - start)) s (compute cap $CUDA_COMPUTE_CAP)"
