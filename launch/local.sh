#!/usr/bin/env bash
# One host, all of its accelerators: the mesh spans every local device, nothing else to set.
#   launch/local.sh configs/cifar100.py runs/c100 [--config.key=value ...]
# PYTHON (default: python from PATH) names the interpreter, e.g. .venv/bin/python.
set -euo pipefail
config=${1:?usage: launch/local.sh CONFIG WORKDIR [overrides...]}
workdir=${2:?usage: launch/local.sh CONFIG WORKDIR [overrides...]}
shift 2
exec "${PYTHON:-python}" -m bsd_jax.main --config "$config" --workdir "$workdir" "$@"
