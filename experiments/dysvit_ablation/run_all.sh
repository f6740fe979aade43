#!/usr/bin/env bash
# The Dy-SViT ablation (dim 256, depth 4, T=1): four runs of the same 30-epoch protocol, then
# minisnn measures every trained network on the validation split and the test batch.
#   bash experiments/dysvit_ablation/run_all.sh CIFAR_DIR [OUT_DIR]
# The four trainings run in parallel (PyTorch oracle; about 14 minutes on one H200 GPU);
# the evaluations run in minisnn on the CPU.
set -euo pipefail
DATA=${1:?usage: run_all.sh CIFAR_DIR [OUT_DIR]}
OUT=${2:-runs/dysvit_ablation}
HERE=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$HERE/../..${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
train() {
    python "$HERE/train_oracle.py" --data-dir "$DATA" --model dysvit-cifar10 --epochs 30 --warmup-epochs 1.5 \
        --out "$OUT/$1.npz" "${@:2}" > "$OUT/$1.log" 2>&1
}
train dynamic &
train static --set dynamic_slope=false &
train none_static --set dynamic_slope=false --no-stability &
train none_dynamic --no-stability &
wait
for run in dynamic static none_dynamic none_static; do
    for split in val test; do
        python -m minisnn eval "$OUT/$run.npz" --data-dir "$DATA" --split $split --no-progress
    done
done
