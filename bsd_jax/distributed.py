"""Joining a multi-process job, and the few things processes must agree on.

A job is one process per host (or, on CPU, N local processes: launch/cpu_processes.sh). Every
process runs the same program on the same global arrays; process 0 alone writes metrics, logs
and files other than checkpoints, which orbax writes from all processes together."""
import os

from bsd_jax import peers
from bsd_jax.errors import UserError


def _timeouts(peer_timeout_s):
  """The distributed service's own timeouts, set around bsd_jax's peer watch (bsd_jax/peers.py):
  its heartbeat outlasts the watch (which reports a stopped peer in one line, where the service
  would abort the process), and so does its shutdown barrier (process 0 writes the final
  evaluation while the others wait there). Only those this jax version takes."""
  import inspect
  import jax
  wanted = {'heartbeat_timeout_seconds': int(peer_timeout_s) + 60,
            'shutdown_timeout_seconds': int(peer_timeout_s) + 60}
  known = inspect.signature(jax.distributed.initialize).parameters
  return {k: v for k, v in wanted.items() if k in known}


def initialize(coordinator_address=None, num_processes=None, process_id=None, peer_timeout_s=60.0):
  """jax.distributed.initialize from explicit flags, or from SLURM when the job has several
  tasks, then the watch of the other processes (bsd_jax/peers.py); nothing for a single
  process. Returns a line saying what was done."""
  explicit = {'--coordinator_address': coordinator_address, '--num_processes': num_processes,
              '--process_id': process_id}
  given = [k for k, v in explicit.items() if v is not None]
  import jax
  if given:
    missing = [k for k, v in explicit.items() if v is None]
    if missing:
      raise UserError(f'{", ".join(given)} given without {", ".join(missing)}: a multi-process '
                      'job needs all three')
    if not 0 <= process_id < num_processes:
      raise UserError(f'--process_id {process_id} must be in [0, --num_processes {num_processes})')
    if num_processes > 1:
      jax.distributed.initialize(coordinator_address, num_processes, process_id,
                                 **_timeouts(peer_timeout_s))
  elif int(os.environ.get('SLURM_NTASKS', '1')) > 1 and 'SLURM_STEP_ID' in os.environ:
    # coordinator, count and id from the SLURM environment
    jax.distributed.initialize(**_timeouts(peer_timeout_s))
  else:
    return 'single process'
  peers.start(peer_timeout_s)
  return (f'process {jax.process_index()} of {jax.process_count()}, '
          f'{jax.local_device_count()} local of {jax.device_count()} devices')


def is_main() -> bool:
  import jax
  return jax.process_index() == 0


def any_process(flag: bool) -> bool:
  """True on every process if `flag` is true on any (a collective: all processes must call)."""
  import jax
  if jax.process_count() == 1:
    return bool(flag)
  import numpy as np
  from jax.experimental import multihost_utils
  return bool(np.any(multihost_utils.process_allgather(np.array([bool(flag)]))))


def barrier(name: str):
  """Wait until every process gets here (no-op for one process)."""
  import jax
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def sum_over_processes(counts):
  """The exact sum over processes of non-negative integer counts below 2**47 (a collective;
  int32 halves keep it exact without jax's 64-bit mode)."""
  import jax
  import numpy as np
  counts = np.asarray(counts, np.int64)
  if jax.process_count() == 1:
    return counts
  from jax.experimental import multihost_utils
  halves = np.stack([counts >> 16, counts & 0xFFFF]).astype(np.int32)
  gathered = np.asarray(multihost_utils.process_allgather(halves)).astype(np.int64)
  return (gathered[:, 0].sum(0) << 16) + gathered[:, 1].sum(0)
