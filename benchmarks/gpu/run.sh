#!/usr/bin/env bash
# GPU kernels: parity with the CPU path (every kernel, the model's logits/loss/gradients, an SFT step and a PPO
# rollout pass + minibatch update, full and LoRA, and the device-resident rollout: KL rewards, GAE, whitening and a
# minibatch gathered from it), then timings beside a device-to-device copy and PyTorch.
#
#   benchmarks/gpu/run.sh publish                 # here (needs the .NET SDK): self-contained, trimmed runner
#   benchmarks/gpu/run.sh run --device cuda       # on the GPU machine (no .NET needed): parity + timings + torch peer
#   benchmarks/gpu/run.sh all --device cpu        # both, on ILGPU's CPU accelerator at small shapes (no GPU)
#
# Writes device-report.md (and torch-peer.txt when PyTorch with CUDA is present) to --out (default: $OUT or ./gpu-out).
set -euo pipefail
cd "$(dirname "$0")/../.."

mode=${1:-all}; shift || true
device=cuda
out=${OUT:-./gpu-out}
scale=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$scale" ]; then
  if [ "$device" = cuda ]; then scale=full; else scale=small; fi
fi
publish_dir=benchmarks/gpu/publish

publish() {
  dotnet publish benchmarks/Rlhf.DeviceBench/Rlhf.DeviceBench.csproj -c Release -r linux-x64 --self-contained \
    -p:PublishTrimmed=true -p:TrimMode=partial -o "$publish_dir" -v quiet -nologo
  du -sh "$publish_dir"
}

# cuBLAS is loaded at run time; without a system CUDA toolkit, use the copy inside PyTorch's nvidia-cublas wheel.
find_cublas() {
  if [ -n "${RLHF_CUBLAS:-}" ] || ldconfig -p 2>/dev/null | grep -q 'libcublas\.so'; then return; fi
  local dir
  dir=$(python3 -c "import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], 'lib'))" 2>/dev/null) || return 0
  local lib
  lib=$(ls "$dir"/libcublas.so.* 2>/dev/null | head -n 1)
  if [ -n "$lib" ]; then export RLHF_CUBLAS="$lib"; echo "cuBLAS: $lib"; fi
}

run() {
  mkdir -p "$out"
  if [ "$device" = cuda ]; then find_cublas; fi
  "$publish_dir/Rlhf.DeviceBench" --device "$device" --scale "$scale" --out "$out"
  if [ "$device" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1 || true
    if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
      python3 benchmarks/gpu/torch_peer.py | tee "$out/torch-peer.txt"
    else
      echo "PyTorch with CUDA not found: no peer timings" | tee "$out/torch-peer.txt"
    fi
  fi
}

case "$mode" in
  publish) publish ;;
  run) run ;;
  all) publish; run ;;
  *) echo "mode must be publish, run or all" >&2; exit 2 ;;
esac
