"""The one exception type for bad user input: printed as a single line by main.py, no traceback."""


class UserError(Exception):
  """A problem with the config, the data or the workdir that the user must fix.

  The message names the config key or the path at fault and fits on one line.
  """
