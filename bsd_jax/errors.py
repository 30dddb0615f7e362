"""Expected failures: the exception types, and the one way a command reports them.

Every expected failure is a `UserError` whose message names the config key, flag or path at
fault and fits on one line; the commands print it with `fail`, no traceback, and exit with
its `exit_status`. Exit statuses of main, evaluate and sweep (docs/training.md):
  0    done
  1    sweep: some of its runs failed (their log.txt says why); any command: a bug (traceback)
  2    bad input or a refusal: flags, config, data, workdir (in use, a file, not writable,
       written for another run), no checkpoint that can be read, a save that failed
  3    training diverged: a loss that is NaN or infinite
  128 + N  stopped by signal N (SIGTERM 143, SIGINT 130) after saving a checkpoint"""
import sys


class UserError(Exception):
  """A problem with the config, the data or the workdir that the user must fix."""
  exit_status = 2


class Diverged(UserError):
  """The training loss is NaN or infinite."""
  exit_status = 3


def require(ok, message: str):
  """UserError(message) unless `ok`: the config checks' one-line refusal."""
  if not ok:
    raise UserError(message)


def require_in(value, low, high, key, low_open=False, high_open=False):
  """low <= value <= high (or < at an open end), naming config.`key` otherwise."""
  ok = ((value > low if low_open else value >= low)
        and (value < high if high_open else value <= high))
  brackets = ('(' if low_open else '[') + f'{low}, {high}' + (')' if high_open else ']')
  require(ok, f'config.{key} must be in {brackets}, got {value}')


def require_positive(config, key, strict=True):
  """config.`key` (a dotted 'section.leaf') > 0, or >= 0 when not strict."""
  section, leaf = key.split('.')
  value = config[section][leaf]
  require(value > 0 if strict else value >= 0,
          f'config.{key} must be {">" if strict else ">="} 0, got {value}')


def fail(prog: str, message: str, status: int = 2):
  """Print `prog: error: message` on stderr and exit with `status`."""
  print(f'{prog}: error: {message}', file=sys.stderr)
  sys.exit(status)
