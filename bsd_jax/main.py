"""Command line: python -m bsd_jax.main --config configs/cifar100.py --workdir runs/x

Any config key can be overridden, e.g. --config.bsd.gamma=0.95 --config.num_epochs=2; a key that
does not exist is an error. Bad input is reported as one line (exit status 2) before any work.
"""
import signal
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from bsd_jax.errors import UserError

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Path to a config file (configs/*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints and metrics.jsonl.')


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
  from bsd_jax import train  # imported after flag parsing: jax picks up --jax_* flags
  try:
    result = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except UserError as e:
    _fail(str(e))
  if result.get('stopped_by'):
    sys.exit(128 + signal.Signals[result['stopped_by']].value)


def run():
  app.run(main, flags_parser=parse_flags)


if __name__ == '__main__':
  run()
