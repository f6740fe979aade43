#!/usr/bin/env bash
# The Dy-SViT ablation (dim 256, depth 4, T=1): four runs of the same 30-epoch protocol with minisnn's PyTorch
# engine (minisnn.torch.train), then minisnn measures every trained network on the validation split and the
# test batch, on the CPU.
#   bash experiments/dysvit_ablation/run_all.sh CIFAR_DIR [OUT_DIR]
# The four trainings share one GPU, in parallel; each writes OUT_DIR/<run>/ (last.npz, best.npz,
# metrics.jsonl, curves.png) and OUT_DIR/<run>.log.  Run the script again to resume interrupted trainings.
set -euo pipefail
DATA=${1:?usage: run_all.sh CIFAR_DIR [OUT_DIR]}
OUT=${2:-runs/dysvit_ablation}
HERE=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$HERE/../..${PYTHONPATH:+:$PYTHONPATH}"
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
mkdir -p "$OUT"
train() {
    python "$HERE/train_oracle.py" --data-dir "$DATA" --model dysvit-cifar10 --epochs 30 --warmup-epochs 1.5 \
        --out "$OUT/$1" "${@:2}" > "$OUT/$1.log" 2>&1
}
train dynamic &
train static --set dynamic_slope=false &
train none_static --set dynamic_slope=false --no-stability &
train none_dynamic --no-stability &
wait
for run in dynamic static none_dynamic none_static; do
    for split in val test; do
        python -m minisnn eval "$OUT/$run/last.npz" --data-dir "$DATA" --split $split --no-progress
    done
done
