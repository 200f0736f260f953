#!/usr/bin/env bash
# The GPU checks docs/gpu.md reports (issue 11's and issue 14's GPU bullets, issue 12's GPU memory between warm
# trials), as one script with a deadline, for a GPU machine lent for minutes:
#   - ResNet-18 at full width on Fashion-MNIST resized to 32x32 with 3 channels, 2 epochs (the first is warm-up),
#     2 seeds: a whole GPU per trial (the seeds one after the other, in one warm worker), then half a GPU per trial
#     (both seeds at once on one GPU); then a whole GPU with TF32 on, and bf16 mixed precision;
#   - the speed_matrix suite with TF32 off, then on (its bf16 variant is bf16 mixed precision);
#   - ResNet-18 as above at batch 512 (one seed), where the GPU rather than the step's Python dispatch sets the pace:
#     fp32, TF32, bf16, and bf16 with channels_last, in ROUNDS alternating rounds (the modes in the given order, then
#     reversed, ...; each round's runs are <step>-r<round>), so drift between runs hits every mode alike.
# Usage: benchmarks/gpu_checks.sh WORK_DIR FASHION_MNIST_DIR ARCHIVE [SECONDS]
#   WORK_DIR holds the runs (WORK_DIR/runs/<step>), each step's log, facts.txt (the machine: GPU, driver, clocks,
#   CUDA, cuDNN, the frameworks' versions and whether each sees the GPU, host CPUs and memory, the tree's commit),
#   steps.txt and summary.txt (benchmarks/gpu_summary.py: per trial samples/s, gpu_peak_mib, nvidia-smi's memory and
#   utilisation over the trial; the batch-512 modes' medians over rounds; memory left between trials of a warm
#   worker). ARCHIVE (a .tar.gz) is replaced whole (written beside it, then renamed) after every step, so a step cut
#   short by the deadline, or the script killed, leaves the earlier steps' results. SECONDS is the whole script's
#   time: the steps end 45 s before it (15 s for a step that ignores SIGTERM to be killed, 30 s for the summary and
#   the archive). It defaults to the sum of the chosen steps' limits plus those 45 s, so a default run skips none:
#   with both backends and ROUNDS=3 that is 2 x 1,500 s of steps, over a lent machine's 10-minute command. One
#   torch-only command under 600 s: STEPS="resnet18-gpu1-fp32 resnet18-gpu0.5-fp32 matrix-fp32" (420 s of steps),
#   STEPS="resnet18-gpu1-tf32 resnet18-gpu1-bf16 matrix-tf32" (360 s), or the four resnet18-b512-* steps (ROUNDS=2:
#   480 s).
# Exit status: 2, and nothing run, for bad arguments or when a GPU is expected (GPU_ONE not 0) and nvidia-smi lists
#   none or a backend's framework sees none; otherwise 1 if any step exited non-zero, was skipped by the deadline, or
#   the summary found a warm worker's memory grown; else 0. The archive is written either way.
# Environment: XFBENCH (default: xfbench; `python3 -m harness.cli` where the package is not installed), PYTHON (the
#   interpreter that asks the frameworks about the GPU and runs the summary; default: XFBENCH's own, read from its
#   first line), BACKENDS (default: "torch tensorflow"), GPU_ONE and GPU_HALF (default 1 and 0.5; 0 and 0 try the
#   script on a machine without a GPU, where the --tf32 on steps exit 2, TF32 being a GPU setting, and so the script
#   exits 1), CPUS (per trial, default 4, or this machine's cores if fewer), ROUNDS (the batch-512 steps' rounds,
#   default 3), EXTRA (more options for every step, e.g. --train-limit 512), STEPS (the steps to run, by name, in
#   order; default: all, in the order above).
# Step limits: measured on torch-only runs on an H200 (docs/gpu.md) with room to spare, and multiplied by the count
#   of BACKENDS; TensorFlow's GPU steps have never run, so its share is a guess.
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
if [[ ! ${ROUNDS:-3} =~ ^[1-9][0-9]*$ ]]; then
    echo "Expected ROUNDS, a whole number of rounds >= 1. Received: '${ROUNDS:-}'. $usage" >&2
    exit 2
fi
here=$(dirname "$(realpath "$0")")
work=$(realpath -m "$1")
data=$(realpath "$2")
archive=$(realpath -m "$3")
read -r -a xfbench <<<"${XFBENCH:-xfbench}"
read -r -a extra <<<"${EXTRA:-}"
read -r -a names <<<"${BACKENDS:-torch tensorflow}"
backends=()
for name in "${names[@]}"; do backends+=(--backend "$name"); done
one=${GPU_ONE:-1}
half=${GPU_HALF:-0.5}
cores=$(nproc)
cpus=${CPUS:-$((cores < 4 ? cores : 4))}
rounds=${ROUNDS:-3}

limit_of() {  # limit_of STEP: the step's seconds for one backend
    case ${1%-r[0-9]*} in
    resnet18-gpu1-fp32 | resnet18-gpu0.5-fp32) echo 120 ;;
    matrix-fp32 | matrix-tf32) echo 180 ;;
    resnet18-gpu1-tf32 | resnet18-gpu1-bf16) echo 90 ;;
    resnet18-b512-fp32 | resnet18-b512-tf32 | resnet18-b512-bf16 | resnet18-b512-bf16-cl) echo 60 ;;
    *) return 1 ;;
    esac
}

# The plan, checked in full before anything runs: an unknown step name used to stop the script after the steps
# before it had run. The batch-512 steps run as one block of alternating rounds where the first of them is named.
all="resnet18-gpu1-fp32 resnet18-gpu0.5-fp32 matrix-fp32 resnet18-gpu1-tf32 resnet18-gpu1-bf16 matrix-tf32
    resnet18-b512-fp32 resnet18-b512-tf32 resnet18-b512-bf16 resnet18-b512-bf16-cl"
read -r -a chosen <<<"$(echo ${STEPS:-$all})"
modes=()
for name in "${chosen[@]}"; do
    if ! limit_of "$name" >/dev/null || [[ $name == *-r[0-9]* ]]; then
        echo "Expected STEPS among: $(echo $all). Received: '$name'. To fix, name steps from that list." >&2
        exit 2
    fi
    [[ $name == resnet18-b512-* ]] && modes+=("$name")
done
plan=()
for name in "${chosen[@]}"; do
    if [[ $name != resnet18-b512-* ]]; then
        plan+=("$name")
    elif [[ $name == "${modes[0]}" ]]; then
        for ((round = 1; round <= rounds; round++)); do
            order=("${modes[@]}")
            if ((round % 2 == 0)); then for ((i = ${#modes[@]} - 1, j = 0; i >= 0; i--, j++)); do
                order[j]=${modes[i]}
            done; fi
            for mode in "${order[@]}"; do plan+=("$mode-r$round"); done
        done
    fi
done
total=0
for name in "${plan[@]}"; do total=$((total + $(limit_of "$name") * ${#names[@]})); done

# The interpreter of XFBENCH's command: `python3 -m harness.cli` names it; a console script says it on its first line.
if [[ -n ${PYTHON:-} ]]; then
    python=$PYTHON
elif [[ $(basename "${xfbench[0]}") == python* ]]; then
    python=${xfbench[0]}
else
    read -r -a shebang <<<"$(head -n 1 "$(command -v "${xfbench[0]}")" 2>/dev/null | sed -n 's/^#! *//p')"
    [[ ${shebang[0]:-} == */env ]] && shebang=("${shebang[@]:1}") # #!/usr/bin/env python3
    python=${shebang[0]:-python3}
fi

# A GPU run on a machine without one used to start every step, each failing after Ray's start-up, and exit 0.
if [[ $one != 0 ]]; then
    if command -v nvidia-smi >/dev/null; then gpus=$(nvidia-smi -L 2>&1); else gpus="no nvidia-smi on PATH"; fi
    if [[ $gpus != *"GPU "* ]]; then
        echo "Expected a GPU (GPU_ONE=$one): nvidia-smi listing one. Received: ${gpus:-no output}. To fix, run on a" \
            "GPU machine, or try the script without one: GPU_ONE=0 GPU_HALF=0." >&2
        exit 2
    fi
    for name in "${names[@]}"; do
        case $name in
        torch)
            probe="import torch; assert torch.cuda.is_available(), 'torch.cuda.is_available() is False'"
            build="a CUDA build of torch"
            ;;
        tensorflow)
            probe="import tensorflow as t; assert t.config.list_physical_devices('GPU'), 'it lists no GPU'"
            build="TensorFlow's CUDA libraries (pip install 'tensorflow[and-cuda]')"
            ;;
        *) continue ;; # xfbench refuses an unknown backend itself
        esac
        if ! said=$(PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}" "$python" -c "$probe" 2>&1); then
            echo "Expected $name to see the GPU nvidia-smi lists (GPU_ONE=$one). Received: $(tail -n 1 <<<"$said")" \
                "($python). To fix, install $build, or leave $name out of BACKENDS." >&2
            exit 2
        fi
    done
fi
deadline=${4:-0} # SECONDS given: the whole script's time from its start (bash's $SECONDS), the checks included
# kept back from the deadline for the last step's kill (timeout -k 15), the summary and the archive: an outer limit
# set just above SECONDS then never cuts the archive short
finish=45
mkdir -p "$work/runs"
: >"$work/steps.txt"

# What docs/gpu.md's machine table quotes, from this machine rather than by hand.
{
    echo "date: $(date -u +%FT%TZ)"
    echo "tree: $(git -C "$here/.." describe --always --dirty 2>&1)"
    echo "host: $cores CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
    free -g | awk '/^Mem:/ {print "memory: " $2 " GiB"}'
    echo "command: ${xfbench[*]}; BACKENDS=${names[*]} CPUS=$cpus GPU_ONE=$one GPU_HALF=$half ROUNDS=$rounds"
    echo "EXTRA=${extra[*]}; deadline ${4:-$total} s"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.memory,pci.bus_id \
        --format=csv 2>&1
    PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}" "$python" "$here/gpu_summary.py" --facts 2>&1
} >"$work/facts.txt"
[[ -z ${4:-} ]] && deadline=$((SECONDS + total + finish)) # by default every step its whole limit, after the facts

# nvidia-smi's view beside the trials' own figures: the whole process's memory (CUDA context and the allocators'
# reserve included) and utilisation, every half second.
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,memory.total --format=csv -lms 500 \
        >"$work/nvidia-smi.csv" 2>&1 &
    sampler=$!
    trap 'kill "$sampler" 2>/dev/null' EXIT # the sampler ends with the script, also when the script is killed
fi

archive_now() {  # the archive replaced whole: a tar cut short (the outer limit) must not lose the earlier steps
    tar -czf "$archive.partial" -C "$work" --exclude=parts --exclude=_ray . && mv -f "$archive.partial" "$archive"
}

failed=()
step() {  # step NAME SECONDS OPTION...: one xfbench run, cut at SECONDS or at the deadline, whichever comes first
    local name=$1 limit=$2
    shift 2
    local left=$((deadline - finish - SECONDS))
    ((left < limit)) && limit=$left
    if ((limit < 20)); then
        echo "== $name skipped: $left s left before the deadline" | tee -a "$work/steps.txt"
        failed+=("$name (skipped)")
        return
    fi
    local start=$SECONDS began
    began=$(date +%s)
    timeout -k 15 "$limit" "${xfbench[@]}" run "$@" "${backends[@]}" "${extra[@]}" --results-dir "$work/runs" \
        --run-id "$name" --no-report >"$work/$name.log" 2>&1
    local status=$?
    ((status == 0)) || failed+=("$name (exit $status)")
    echo "== $name exit $status after $((SECONDS - start)) s (limit $limit s; unix time $began-$(date +%s))" |
        tee -a "$work/steps.txt"
    archive_now
}

resnet18=(--strategy scratch --model resnet18 --dataset fashion_mnist --input-size 32 --input-channels 3 --epochs 2
    --data-dir "$data" --cpus-per-trial "$cpus")
matrix=(--suite speed_matrix --cpus-per-trial "$cpus" --gpus-per-trial "$one")
large=("${resnet18[@]}" --batch-size 512 --gpus-per-trial "$one")
for name in "${plan[@]}"; do
    limit=$(($(limit_of "$name") * ${#names[@]}))
    case ${name%-r[0-9]*} in
    resnet18-gpu1-fp32) step "$name" "$limit" "${resnet18[@]}" --seeds 2 --gpus-per-trial "$one" ;;
    resnet18-gpu0.5-fp32) step "$name" "$limit" "${resnet18[@]}" --seeds 2 --gpus-per-trial "$half" ;;
    matrix-fp32) step "$name" "$limit" "${matrix[@]}" --tf32 off ;;
    resnet18-gpu1-tf32) step "$name" "$limit" "${resnet18[@]}" --gpus-per-trial "$one" --tf32 on ;;
    resnet18-gpu1-bf16) step "$name" "$limit" "${resnet18[@]}" --gpus-per-trial "$one" --precision mixed_bfloat16 ;;
    matrix-tf32) step "$name" "$limit" "${matrix[@]}" --tf32 on ;;
    resnet18-b512-fp32) step "$name" "$limit" "${large[@]}" ;;
    resnet18-b512-tf32) step "$name" "$limit" "${large[@]}" --tf32 on ;;
    resnet18-b512-bf16) step "$name" "$limit" "${large[@]}" --precision mixed_bfloat16 ;;
    resnet18-b512-bf16-cl) step "$name" "$limit" "${large[@]}" --precision mixed_bfloat16 --channels-last ;;
    esac
done
[[ -n ${sampler:-} ]] && kill "$sampler" 2>/dev/null
trap - EXIT
PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}" "$python" "$here/gpu_summary.py" "$work" >"$work/summary.txt" 2>&1 ||
    failed+=("summary (exit $?: see summary.txt)")
cat "$work/summary.txt"
archive_now
if ((${#failed[@]})); then
    echo "gpu_checks.sh: ${#failed[@]} of ${#plan[@]} steps, or the summary, did not end well: ${failed[*]}." \
        "Their logs are in $work and $archive." >&2
    exit 1
fi
