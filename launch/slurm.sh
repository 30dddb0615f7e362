#!/usr/bin/env bash
# Many hosts under SLURM: one bsd_jax process per host, each driving all of the host's GPUs.
#   sbatch --nodes=4 --gpus-per-node=8 --time=24:00:00 launch/slurm.sh configs/cifar100.py runs/c100
# (any --config.key=value overrides follow the workdir; PYTHON names the interpreter, default
# python from PATH). The processes find each other from the SLURM environment
# (jax.distributed.initialize). SLURM sends SIGTERM 180 s before the time limit (--signal below); every process then checkpoints after the same step and exits with 143.
# Submitting the same command again resumes; with REQUEUE=1 the job requeues itself instead, also
# when a process of the job stopped (exit 75)
# (needs a cluster that allows `scontrol requeue`). The workdir must be on a shared filesystem.
#SBATCH --ntasks-per-node=1
#SBATCH --signal=TERM@180
#SBATCH --output=slurm-%j.out
set -uo pipefail
usage="usage: sbatch [options] launch/slurm.sh CONFIG WORKDIR [overrides...]"
config=${1:?$usage}; workdir=${2:?$usage}
shift 2
# --kill-on-bad-exit=0: when a task dies, the others end themselves with one line naming it and
# exit 75 (bsd_jax/peers.py) instead of being killed by srun without a word.
srun --ntasks-per-node=1 --kill-on-bad-exit=0 \
  "${PYTHON:-python}" -m bsd_jax.main --config "$config" --workdir "$workdir" "$@"
status=$?
# 143: stopped for the time limit; 75: a process of the job stopped (killed, OOM, node lost,
# frozen) and the others ended naming it; srun reports the highest status of its tasks, 137 when
# the stopped one was killed. All resume from the newest checkpoint; MAX_REQUEUES (default 3)
# bounds the requeues of a job that keeps failing this way.
case "$status" in 75|137|143) resumable=1 ;; *) resumable=0 ;; esac
if [ "${SLURM_RESTART_COUNT:-0}" -ge "${MAX_REQUEUES:-3}" ] && [ "$status" -ne 143 ]; then
  resumable=0
  echo "bsd_jax: exit status $status after ${SLURM_RESTART_COUNT} requeues: not requeued again"
fi
if [ "$resumable" = 1 ] && [ "${REQUEUE:-0}" = 1 ]; then
  echo "bsd_jax: stopped (exit status $status); requeueing job $SLURM_JOB_ID to resume"
  scontrol requeue "$SLURM_JOB_ID"
fi
exit $status
