#!/usr/bin/env bash
# The one prepared GPU check (nothing is downloaded, the weights are random):
#   1. benchmarks.bench: SD 1.5's architecture in fp16, batched against one call per frame, fraction of the peak;
#   2. benchmarks.gpu: one SDXL walk at 1024x1024 and one Karlo morph at 256x256, then an SD 3.5 medium and a
#      FLUX.1 [schnell] walk at 1024x1024 (bf16, T5-XXL included) with helpers' memory plan, uncapped and under a
#      24 GiB cap: s/frame and peak GPU memory.
# Results: benchmarks/RESULTS.md and benchmarks/GPU.md (commit both).
# `bash benchmarks/gpu_check.sh flow` runs only the two flow walks (step 2's sd35,flux: about 3 min planned on an
# H100, not yet measured); with no argument everything runs (6-8 min planned before the flow walks, plus theirs).
# The capped FLUX.1 walk offloads through accelerate: carry its wheel too where python3 lacks it (below).
#
# On the lent H200 (its python3 has CUDA torch and transformers, no diffusers), carry diffusers as a wheel:
#   here:  echo /.whl/ >> .git/info/exclude
#          python3 -m pip download --no-deps --only-binary=:all: -d .whl "$(grep '^diffusers==' requirements/lock.txt)" \
#            "$(grep '^accelerate==' requirements/lock.txt)"
#   there: run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=600)
set -euo pipefail
what=${1:-all}
case "$what" in all|flow) ;; *) echo "usage: bash benchmarks/gpu_check.sh [all|flow]" >&2; exit 2 ;; esac
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
case "$what" in
  all)
    "$py" -m benchmarks.bench --out benchmarks/RESULTS.md
    "$py" -m benchmarks.gpu --out benchmarks/GPU.md
    files=(benchmarks/RESULTS.md benchmarks/GPU.md) ;;
  flow)
    "$py" -m benchmarks.gpu --out benchmarks/GPU.md --models sd35,flux
    files=(benchmarks/GPU.md) ;;
esac
mkdir -p "${OUT:-/tmp/gpu-out}" && cp "${files[@]}" "${OUT:-/tmp/gpu-out}/"
