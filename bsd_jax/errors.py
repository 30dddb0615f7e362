"""Bad user input: the one exception type, and the one way a command reports it.

Every expected failure is a `UserError` whose message names the config key, flag or path at
fault and fits on one line; the commands print it with `fail` (exit status 2, no traceback).
"""
import sys


class UserError(Exception):
  """A problem with the config, the data or the workdir that the user must fix."""


def fail(prog: str, message: str, status: int = 2):
  """Print `prog: error: message` on stderr and exit with `status`."""
  print(f'{prog}: error: {message}', file=sys.stderr)
  sys.exit(status)
