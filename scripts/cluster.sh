#!/usr/bin/env bash
# A whole cluster on this machine's loopback: the Ray head, the Serve applications (models/ray_app.py: 2 replicas
# of the classifier and of SmolLM2, 1 onnxruntime thread each; 1 translator) and the Gradio front pointed at it.
#   scripts/cluster.sh start [--no-front]   (make cluster)       scripts/cluster.sh status
#   scripts/cluster.sh stop                 (make cluster-stop)  stops the front, then `ray stop --force`
# Settings: LAB_RAY_PORT (6379), GRADIO_SERVER_PORT (7860), LAB_RAY_CPUS (logical CPUs the head offers: more
# than this box's 2 cores so every replica fits; on real machines leave it unset there and Ray counts cores),
# LAB_RAY_<DECODER|CLASSIFIER|TRANSLATOR>_REPLICAS / _THREADS / _AUTOSCALE=min:max. More machines: docs/scale-out.md.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=$VENV/bin/python
RAY=$VENV/bin/ray
PORT=${LAB_RAY_PORT:-6379}
ADDRESS=127.0.0.1:$PORT
FRONT_PORT=${GRADIO_SERVER_PORT:-7860}
RUN_DIR=${LAB_CLUSTER_DIR:-artifacts/cluster}
export LAB_RAY_ADDRESS=$ADDRESS HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
export RAY_USAGE_STATS_ENABLED=0
# replicas import the repo's packages: workers inherit the raylet's environment
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

start() {
  mkdir -p "$RUN_DIR"
  if "$RAY" status --address "$ADDRESS" >/dev/null 2>&1; then
    echo "a Ray cluster already answers at $ADDRESS (scripts/cluster.sh stop first)"; exit 1
  fi
  # small object store: only prompts and token deltas travel through it
  "$RAY" start --head --node-ip-address=127.0.0.1 --port="$PORT" --num-cpus="${LAB_RAY_CPUS:-8}" \
    --include-dashboard=false --disable-usage-stats --object-store-memory=200000000 >"$RUN_DIR/ray.log" 2>&1 \
    || { cat "$RUN_DIR/ray.log"; exit 1; }
  echo "ray head at $ADDRESS"
  "$PY" -m models.ray_app deploy --address "$ADDRESS" --apps "${LAB_RAY_APPS:-decoder,classifier,translator}" || { stop; exit 1; }
  if [[ "${1:-}" != "--no-front" ]]; then
    LAB_BACKEND=ray nohup "$PY" app.py --no-export --host 127.0.0.1 --port "$FRONT_PORT" >"$RUN_DIR/front.log" 2>&1 &
    echo $! >"$RUN_DIR/front.pid"
    for _ in $(seq 120); do
      if curl -fsS "http://127.0.0.1:$FRONT_PORT/health" >/dev/null 2>&1; then
        echo "site (thin Gradio front, LAB_BACKEND=ray) at http://127.0.0.1:$FRONT_PORT/ · health: /health"; return 0
      fi
      kill -0 "$(cat "$RUN_DIR/front.pid")" 2>/dev/null || { tail -20 "$RUN_DIR/front.log"; stop; exit 1; }
      sleep 1
    done
    echo "the front did not answer /health in 120 s; see $RUN_DIR/front.log"; stop; exit 1
  fi
}

stop() {
  if [[ -f "$RUN_DIR/front.pid" ]]; then
    kill "$(cat "$RUN_DIR/front.pid")" 2>/dev/null || true
    rm -f "$RUN_DIR/front.pid"
  fi
  "$RAY" stop --force >/dev/null 2>&1 || true
  echo "cluster stopped"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) "$PY" -m models.ray_app status --address "$ADDRESS" ;;
  *) echo "usage: $0 start [--no-front] | stop | status"; exit 2 ;;
esac
