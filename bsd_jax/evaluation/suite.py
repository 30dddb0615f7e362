"""The suite interface (`Suite`, described in evaluation/__init__.py) and the option parsers the
suites share."""
from bsd_jax.errors import UserError
from bsd_jax.evaluation import common


class Suite:
  """Defaults of the suite interface (bsd_jax/evaluation/__init__.py describes it)."""
  name = ''
  file = ''
  FLAGS = {}
  needs_test_images = False
  streamed_runs = False

  def __init__(self, run, options):
    self.run_ctx, self.options = run, options

  @classmethod
  def check_options(cls, options):
    del options

  @classmethod
  def check_run(cls, options, config):
    del options, config

  def run(self, state, step: int) -> dict:
    raise NotImplementedError

  def write(self, workdir, record):
    return [common.write_result(workdir, record, self.file)]

  def report(self, record, paths):
    del record
    print(f'wrote {paths[0]}')

  def scalars(self, record) -> dict:
    raise NotImplementedError


def as_list(value):
  """A flag's list, or a config's comma-separated string, as a list of stripped strings."""
  if isinstance(value, str):
    return [v.strip() for v in value.split(',') if v.strip()]
  return [str(v) for v in value]


def numbers(value, what, kind=float):
  """as_list(value) as numbers of `kind`; UserError naming `what` otherwise."""
  try:
    return [kind(v) for v in as_list(value)]
  except ValueError as e:
    raise UserError(f'{what}: {e}') from None
