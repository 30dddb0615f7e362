"""Command line: python -m bsd_jax.main --config configs/cifar100.py --workdir runs/x

Any config key can be overridden, e.g. --config.bsd.gamma=0.95 --config.num_epochs=2; a key that
does not exist is an error. Bad input is reported as one line (exit status 2) before any work.

Multi-process (one process per host): --coordinator_address host:port --num_processes N
--process_id i on every process, or nothing under `srun` with several SLURM tasks (launch/).
"""
import signal
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from bsd_jax.errors import UserError

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Path to a config file (configs/*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints and metrics.jsonl.')
_COORDINATOR = flags.DEFINE_string('coordinator_address', None,
                                   'host:port of process 0, for a multi-process job.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Processes in the job.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process, 0..num_processes-1.')


def _fail(message):
  print(f'bsd_jax: error: {message}', file=sys.stderr)
  sys.exit(2)


def parse_flags(argv):
  """absl flag parsing with one-line errors (ml_collections raises multi-line tracebacks).

  The config file is loaded and the overrides applied here, so a missing file or an unknown key
  stops the program before jax starts.
  """
  try:
    rest = flags.FLAGS(argv)
    if _CONFIG.value is None:
      _fail('--config is required (e.g. --config configs/smoke.py)')
    _CONFIG.value.to_dict()  # a config file that failed to load raises here
    return rest
  except OSError as e:
    _fail(f'--config: {str(e).strip().splitlines()[-1].strip()}')
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    text = str(e).replace('\\n', ' ').replace('\n', ' ').replace("\\'", '')
    text = ' '.join(text.replace('"', "'").split())
    if isinstance(e, (AttributeError, KeyError)):
      text = text.strip("'")
      text = f'unknown config key {text} (in {" ".join(a for a in argv if "--config." in a)})'
    _fail(text)


def main(argv):
  del argv
  # Libraries (orbax, tfds) log every operation through absl at INFO; bsd_jax logs through the
  # root logger, so quieting the 'absl' logger keeps only our progress lines and their warnings.
  logging.logging.getLogger('absl').setLevel(logging.logging.WARNING)
  if _CONFIG.value is None:
    _fail('--config is required (e.g. --config configs/smoke.py)')
  if not _WORKDIR.value:
    _fail('--workdir is required')
  from bsd_jax import distributed, train  # imported after flag parsing: jax reads --jax_* flags
  try:
    joined = distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    if not distributed.is_main():  # process 0 reports for the job; the others only warn
      logging.logging.getLogger().setLevel(logging.logging.WARNING)
    logging.logging.info('bsd_jax: %s', joined)
    result = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except UserError as e:
    _fail(str(e))
  if result.get('stopped_by'):
    sys.exit(128 + signal.Signals[result['stopped_by']].value)


def run():
  app.run(main, flags_parser=parse_flags)


if __name__ == '__main__':
  run()
