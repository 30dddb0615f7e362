"""What the command lines share: running one with absl (`run`: --help prints the usage and exits
with status 0), and the --config and --workdir flags of main and sweep, parsed with one-line
errors (errors.fail: exit status 2, no traceback)."""
import sys

from absl import app, flags
from ml_collections import config_flags

from bsd_jax.errors import fail

CONFIG = WORKDIR = None  # flag holders, set by define_config_flags()
HELP_FLAGS = ('-h', '--help', '-?', '--helpshort', '--helpfull', '--helpxml')


def define_config_flags():
  """Define --config (a config file, locked: an unknown key is an error) and --workdir."""
  global CONFIG, WORKDIR
  if CONFIG is not None:  # main and sweep both define them; one process may import both
    return
  CONFIG = config_flags.DEFINE_config_file('config', None, 'Path to a config file '
                                           '(configs/*.py).', lock_config=True)
  WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints and metrics.jsonl.')


def run(main, flags_parser=None):
  """absl's app.run; after --help (absl exits with status 1) the exit status is 0."""
  try:
    app.run(main, **({} if flags_parser is None else {'flags_parser': flags_parser}))
  except SystemExit as e:
    if e.code == 1 and any(a in HELP_FLAGS for a in sys.argv[1:]):
      sys.exit(0)
    raise


def parse_flags(argv, prog='bsd_jax'):
  """absl flag parsing with one-line errors (ml_collections raises multi-line tracebacks).

  The config file is loaded and the overrides applied here, so a missing file or an unknown key
  stops the program before jax starts."""
  try:
    rest = flags.FLAGS(argv)
    if CONFIG.value is None:
      fail(prog, '--config is required (e.g. --config configs/smoke.py)')
    CONFIG.value.to_dict()  # a config file that failed to load raises here
    return rest
  except OSError as e:
    fail(prog, f'--config: {str(e).strip().splitlines()[-1].strip()}')
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    text = str(e).replace('\\n', ' ').replace('\n', ' ').replace("\\'", '')
    text = ' '.join(text.replace('"', "'").split())
    if isinstance(e, (AttributeError, KeyError)):
      text = text.strip("'")
      text = f'unknown config key {text} (in {" ".join(a for a in argv if "--config." in a)})'
    fail(prog, text)


def config_file() -> str:
  """The path given to --config."""
  return flags.FLAGS['config'].config_filename
