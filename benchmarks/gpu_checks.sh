#!/usr/bin/env bash
# The GPU checks docs/gpu.md reports (issue 11's and issue 14's GPU bullets), as one script with a deadline, for a
# GPU machine lent for minutes:
#   - ResNet-18 at full width on Fashion-MNIST resized to 32x32 with 3 channels, 2 epochs (the first is warm-up),
#     2 seeds: a whole GPU per trial (the seeds one after the other), then half a GPU per trial (both seeds at once
#     on one GPU); then a whole GPU with TF32 on, and bf16 mixed precision;
#   - the speed_matrix suite with TF32 off, then on (its bf16 variant is bf16 mixed precision);
#   - ResNet-18 as above at batch 512 (one seed), where the GPU rather than the step's Python dispatch sets the pace:
#     fp32, TF32, bf16, and bf16 with channels_last.
# Usage: benchmarks/gpu_checks.sh WORK_DIR FASHION_MNIST_DIR ARCHIVE [SECONDS]
#   WORK_DIR holds the runs (WORK_DIR/runs/<step>) and each step's log; ARCHIVE (a .tar.gz) is rewritten after every
#   step, so a step cut short by the deadline (SECONDS, default 540) leaves the earlier steps' results.
# Environment: XFBENCH (default: xfbench; `python3 -m harness.cli` where the package is not installed), BACKENDS
#   (default: "torch tensorflow"), GPU_ONE and GPU_HALF (default 1 and 0.5; 0 and 0 try the script on a machine
#   without a GPU, where the --tf32 on steps exit 2, TF32 being a GPU setting), CPUS (per trial, default 4), EXTRA
#   (more options for every step, e.g. --train-limit 512), STEPS (the steps to run, by name, in order; default: all,
#   in the order above).
set -u
# Checked here, not inside the $(...) below: an unset $1 there ended only the subshell, and the script went on with
# an empty WORK_DIR, writing its runs and logs under / and starting every step.
usage="usage: benchmarks/gpu_checks.sh WORK_DIR FASHION_MNIST_DIR ARCHIVE [SECONDS]"
if (($# < 3 || $# > 4)) || [[ -z $1 || -z $3 ]]; then
    echo "$usage (received $# argument(s))" >&2
    exit 2
fi
if [[ ! -d $2 ]]; then
    echo "Expected FASHION_MNIST_DIR, a folder of Fashion-MNIST's IDX files. Received: '$2', not a folder. $usage" >&2
    exit 2
fi
if [[ -n ${4:-} && ! $4 =~ ^[0-9]+$ ]]; then
    echo "Expected SECONDS, a whole number of seconds. Received: '$4'. $usage" >&2
    exit 2
fi
work=$(realpath -m "$1")
data=$(realpath "$2")
archive=$(realpath -m "$3")
deadline=$((SECONDS + ${4:-540}))
read -r -a xfbench <<<"${XFBENCH:-xfbench}"
read -r -a extra <<<"${EXTRA:-}"
backends=()
for name in ${BACKENDS:-torch tensorflow}; do backends+=(--backend "$name"); done
one=${GPU_ONE:-1}
half=${GPU_HALF:-0.5}
mkdir -p "$work/runs"

# nvidia-smi's view beside the trials' own figures: the whole process's memory (CUDA context and the allocators'
# reserve included) and utilisation, every half second.
if command -v nvidia-smi >/dev/null; then
    nvidia-smi -L >"$work/device.txt" 2>&1
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,memory.total --format=csv -lms 500 \
        >"$work/nvidia-smi.csv" 2>&1 &
    sampler=$!
    trap 'kill "$sampler" 2>/dev/null' EXIT # the sampler ends with the script, also when the script is killed
fi

step() {  # step NAME SECONDS OPTION...: one xfbench run, cut at SECONDS or at the deadline, whichever comes first
    local name=$1 limit=$2
    shift 2
    local left=$((deadline - SECONDS))
    ((left < limit)) && limit=$left
    if ((limit < 20)); then
        echo "== $name skipped: $left s left before the deadline" | tee -a "$work/steps.txt"
        return
    fi
    local start=$SECONDS
    timeout -k 15 "$limit" "${xfbench[@]}" run "$@" "${backends[@]}" "${extra[@]}" --results-dir "$work/runs" \
        --run-id "$name" --no-report >"$work/$name.log" 2>&1
    echo "== $name exit $? after $((SECONDS - start)) s (limit $limit s)" | tee -a "$work/steps.txt"
    tar -czf "$archive" -C "$work" --exclude=parts --exclude=_ray .
}

resnet18=(--strategy scratch --model resnet18 --dataset fashion_mnist --input-size 32 --input-channels 3 --epochs 2
    --data-dir "$data" --cpus-per-trial "${CPUS:-4}")
matrix=(--suite speed_matrix --cpus-per-trial "${CPUS:-4}" --gpus-per-trial "$one")
large=("${resnet18[@]}" --batch-size 512 --gpus-per-trial "$one")
all="resnet18-gpu1-fp32 resnet18-gpu0.5-fp32 matrix-fp32 resnet18-gpu1-tf32 resnet18-gpu1-bf16 matrix-tf32
    resnet18-b512-fp32 resnet18-b512-tf32 resnet18-b512-bf16 resnet18-b512-bf16-cl"
for name in ${STEPS:-$all}; do
    case $name in
    resnet18-gpu1-fp32) step "$name" 120 "${resnet18[@]}" --seeds 2 --gpus-per-trial "$one" ;;
    resnet18-gpu0.5-fp32) step "$name" 120 "${resnet18[@]}" --seeds 2 --gpus-per-trial "$half" ;;
    matrix-fp32) step "$name" 180 "${matrix[@]}" --tf32 off ;;
    resnet18-gpu1-tf32) step "$name" 90 "${resnet18[@]}" --gpus-per-trial "$one" --tf32 on ;;
    resnet18-gpu1-bf16) step "$name" 90 "${resnet18[@]}" --gpus-per-trial "$one" --precision mixed_bfloat16 ;;
    matrix-tf32) step "$name" 180 "${matrix[@]}" --tf32 on ;;
    resnet18-b512-fp32) step "$name" 60 "${large[@]}" ;;
    resnet18-b512-tf32) step "$name" 60 "${large[@]}" --tf32 on ;;
    resnet18-b512-bf16) step "$name" 60 "${large[@]}" --precision mixed_bfloat16 ;;
    resnet18-b512-bf16-cl) step "$name" 60 "${large[@]}" --precision mixed_bfloat16 --channels-last ;;
    *) echo "unknown step $name (expected one of: $all)" >&2 && exit 2 ;;
    esac
done
[[ -n ${sampler:-} ]] && kill "$sampler"
trap - EXIT
tar -czf "$archive" -C "$work" --exclude=parts --exclude=_ray .
