#!/usr/bin/env bash
# Run the speed benchmarks one after another (each prints its table and writes
# benchmarks/results/NAME.json). Run on a quiet machine: each script is a few
# minutes there. Usage: benchmarks/run_all.sh [python]   (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
for script in predict_throughput precision training_precision latency large_image training_speed scaling; do
    echo "=== benchmarks/${script}.py"
    "$PY" "benchmarks/${script}.py"
done
if [ -f benchmarks/tflite_variants.py ]; then
    echo "=== benchmarks/tflite_variants.py"
    "$PY" benchmarks/tflite_variants.py
fi
