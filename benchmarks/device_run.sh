#!/usr/bin/env bash
# The GPU measurements still open, as one script for the lent GPU machine
# (one H200, JAX and PyTorch with CUDA, no TensorFlow, Keras or Jupyter),
# whose device time is short: every stage runs under its own hard time limit
# and its log goes to $OUT, so whatever finished comes back.
#
# Prepare .device/ in the checkout first, as ../shared/device/README.md says
# (wheels in .device/whl, MNIST and Boston in .device/data, bwrap in
# .device/bin), then run from the repository root there, carrying .device:
#
#     bash benchmarks/device_run.sh small pack16     # about 8 minutes
#     bash benchmarks/device_run.sh pack32           # about 5 minutes
#
# Stages:
#   small   linear_grading, boston_housing and mnist_mlp graded once each,
#           sandboxed, on the GPU: the GPU times the README lacks
#   pack16  benchmarks/gpu_pack.py --copies 1 16 (mnist_cnn, sandboxed)
#   pack32  benchmarks/gpu_pack.py --copies 1 32
# No stage runs anything in the background, so the script ends when its last
# stage does.
set -uo pipefail
OUT="${OUT:?run this where \$OUT names the folder whose files come back}"
cd "$(dirname "$0")/.."

python3 -m pip install -q --no-index --no-deps --no-compile --target /opt/site .device/whl/*.whl \
    > "$OUT/install.log" 2>&1 || { echo "installing the wheels failed: see install.log"; exit 2; }
export PYTHONPATH="/opt/site:$PWD" PATH="$PWD/.device/bin:$PATH"
export KERAS_BACKEND=jax AUTOGRADER_DATA_DIR="$PWD/.device/data" AUTOGRADER_OFFLINE=1
export TF_CPP_MIN_LOG_LEVEL=3

stage() {  # stage NAME SECONDS COMMAND...: run it under a hard limit, log to $OUT/NAME.log
    local name="$1" seconds="$2"
    shift 2
    echo "== $name (limit ${seconds} s) $(date -u +%H:%M:%S)"
    timeout -k 10 "$seconds" "$@" > "$OUT/$name.log" 2>&1
    local code=$?
    tail -n 25 "$OUT/$name.log"
    echo "== $name exit $code$([ "$code" = 124 ] && echo ' (time limit)')"
}

stage machine 60 sh -c 'nvidia-smi -L; python3 -m autograder.cli doctor'

for what in "$@"; do
    case "$what" in
        small)
            for assignment in linear_grading boston_housing mnist_mlp; do
                stage "$assignment" 150 python3 -m autograder.cli grade \
                    "solutions/$assignment/$assignment.ipynb" --assignment "$assignment" \
                    --sandbox bwrap --gpus auto --json "$OUT/$assignment.json"
            done
            ;;
        pack16) stage pack16 330 python3 benchmarks/gpu_pack.py --copies 1 16 ;;
        pack32) stage pack32 330 python3 benchmarks/gpu_pack.py --copies 1 32 ;;
        *) echo "unknown stage $what (small, pack16, pack32)"; exit 2 ;;
    esac
done
