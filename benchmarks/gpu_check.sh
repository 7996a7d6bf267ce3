#!/usr/bin/env bash
# The one prepared GPU check (~6-8 min on an H100-class GPU; nothing is downloaded, the weights are random):
#   1. benchmarks.bench: SD 1.5's architecture in fp16, batched against one call per frame, fraction of the peak;
#   2. benchmarks.gpu: one SDXL walk at 1024x1024 and one Karlo morph at 256x256, s/frame and peak GPU memory.
# Results: benchmarks/RESULTS.md and benchmarks/GPU.md (commit both).
#
# On the lent H200 (its python3 has CUDA torch and transformers, no diffusers), carry diffusers as a wheel:
#   here:  echo /.whl/ >> .git/info/exclude
#          python3 -m pip download --no-deps --only-binary=:all: -d .whl "$(grep '^diffusers==' requirements/lock.txt)"
#   there: run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
"$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU: nothing to measure')"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
"$py" -m benchmarks.bench --out benchmarks/RESULTS.md
"$py" -m benchmarks.gpu --out benchmarks/GPU.md
mkdir -p "${OUT:-/tmp/gpu-out}" && cp benchmarks/RESULTS.md benchmarks/GPU.md "${OUT:-/tmp/gpu-out}/"
