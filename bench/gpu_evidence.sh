#!/usr/bin/env bash
# Every GPU figure from one short call (bench/gpu_evidence.py --help; BENCHMARKS.md, "GPU").
# PYTHON names the interpreter (default: python3 from PATH).
set -euo pipefail
exec "${PYTHON:-python3}" "$(dirname "$0")/gpu_evidence.py" "$@"
