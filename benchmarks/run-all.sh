#!/usr/bin/env bash
# Runs every BenchmarkDotNet suite once (short job, in-process) and collects the markdown tables.
#   benchmarks/run-all.sh [OUT_DIR] [FILTER...]      (default: all suites; results under BenchmarkDotNet.Artifacts)
# OpenBLAS must load its AVX-512 kernels before the process starts (the GEMM and training-step suites check it).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-BenchmarkDotNet.Artifacts}
shift || true
filters=("$@")
if [ ${#filters[@]} -eq 0 ]; then
  filters=('*Vocabulary*' '*Gae*' '*PpoLoss*' '*AdamW*' '*Gemm*' '*TrainingStep*' '*Decode*' '*Onnx*' '*PpoIteration*' '*RewardTraining*')
fi
dotnet build benchmarks/Rlhf.Benchmarks -c Release -v quiet -nologo
for f in "${filters[@]}"; do
  OPENBLAS_CORETYPE=SkylakeX dotnet benchmarks/Rlhf.Benchmarks/bin/Release/net10.0/linux-x64/Rlhf.Benchmarks.dll \
    --filter "$f" --job short --inProcess --artifacts "$out"
done
ls "$out/results"/*.md
