#!/usr/bin/env bash
# N local processes on CPU, joined over 127.0.0.1: a multi-process job without a cluster.
#   launch/cpu_processes.sh N DEVICES_PER_PROCESS CONFIG WORKDIR [overrides...]
# e.g. launch/cpu_processes.sh 2 4 configs/smoke.py runs/mp. PORT (default: random) is the
# coordinator's port; PYTHON (default: python from PATH) the interpreter, e.g. .venv/bin/python.
# SIGTERM / Ctrl-C are passed to every process: all save at the same step. When a process stops
# (killed, hung), the others exit 75 naming it, and so does this script.
set -euo pipefail
usage="usage: launch/cpu_processes.sh N DEVICES_PER_PROCESS CONFIG WORKDIR [overrides...]"
n=${1:?$usage}; devices=${2:?$usage}; config=${3:?$usage}; workdir=${4:?$usage}
shift 4
port=${PORT:-$((20000 + RANDOM % 20000))}
pids=()
forward() { kill -s "$1" "${pids[@]}" 2>/dev/null || true; }
trap 'forward TERM' TERM
trap 'forward INT' INT
for ((i = 0; i < n; i++)); do
  JAX_PLATFORMS=cpu JAX_NUM_CPU_DEVICES="$devices" "${PYTHON:-python}" -m bsd_jax.main --config "$config" \
      --workdir "$workdir" --coordinator_address="127.0.0.1:$port" --num_processes="$n" \
      --process_id="$i" "$@" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  # wait returns early when a trapped signal arrives: wait again until the process is gone.
  while true; do
    rc=0; wait "$pid" || rc=$?
    kill -0 "$pid" 2>/dev/null || break
  done
  # 75 (a process stopped; the survivors said which and where to resume) wins over a killed
  # process's signal status (> 128), so that a caller can act on it like SLURM's requeue does;
  # a process's own failure (1, 2, 3) wins over 75: the others stopped because of it.
  if [ "$rc" -ne 0 ]; then
    if [ "$status" -eq 0 ] || { [ "$rc" -eq 75 ] && [ "$status" -gt 128 ]; } \
        || { [ "$status" -eq 75 ] && [ "$rc" -lt 128 ]; }; then status=$rc; fi
  fi
done
exit $status
