"""Command line: python -m bsd_jax.main --config configs/cifar100.py --workdir runs/x

Any config key can be overridden, e.g. --config.bsd.gamma=0.95 --config.num_epochs=2; a key that
does not exist is an error. Bad input is reported as one line (exit status 2) before any work.
A run stopped by SIGTERM or SIGINT saves a checkpoint and exits with 128 + the signal number.

Multi-process (one process per host): --coordinator_address host:port --num_processes N
--process_id i on every process, or nothing under `srun` with several SLURM tasks (launch/)."""
import signal
import sys

from absl import flags, logging

from bsd_jax import cli, peers
from bsd_jax.errors import UserError, fail

cli.define_config_flags()
_COORDINATOR = flags.DEFINE_string('coordinator_address', None,
                                   'host:port of process 0, for a multi-process job.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Processes in the job.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process, 0..num_processes-1.')


def main(argv):
  del argv
  # Libraries (orbax, tfds) log every operation through absl at INFO; bsd_jax logs through the
  # root logger, so quieting the 'absl' logger keeps only our progress lines and their warnings.
  logging.logging.getLogger('absl').setLevel(logging.logging.WARNING)
  if not cli.WORKDIR.value:
    fail('bsd_jax', '--workdir is required')
  from bsd_jax import distributed, train  # imported after flag parsing: jax reads --jax_* flags
  try:
    timeout = peers.check_timeout(cli.CONFIG.value.get('peer_timeout_s', 60.0))
    joined = distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                                    timeout)
    if not distributed.is_main():  # process 0 reports for the job; the others only warn
      logging.logging.getLogger().setLevel(logging.logging.WARNING)
    logging.logging.info('bsd_jax: %s', joined)
    result = train.train_and_evaluate(cli.CONFIG.value, cli.WORKDIR.value)
  except UserError as e:
    fail('bsd_jax', str(e), e.exit_status)
  except KeyboardInterrupt:  # Ctrl-C outside the step loop (which saves and exits 130 itself)
    fail('bsd_jax', 'interrupted before training started or after it ended', 130)
  except Exception as e:  # a collective that failed because another process stopped: one line
    lost = peers.lost_after_failure(e)
    if lost:
      peers.end(lost)
    raise
  if result.get('stopped_by'):
    sys.exit(128 + signal.Signals[result['stopped_by']].value)


def run():
  cli.run(main, flags_parser=cli.parse_flags)


if __name__ == '__main__':
  run()
