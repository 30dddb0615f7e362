"""Evaluation suites behind one interface, run by `python -m bsd_jax.evaluate --suite NAME` on a
checkpoint and, from config.evals, during training.

  testset.py      the test split: every calibration metric, the reliability diagram, and
                  both after temperature scaling fitted on the validation split
  ood.py          OOD detection (sets read by ood_sets.py)
  adversarial.py  FGSM and PGD (attacks.py)
  corruptions.py  CIFAR-10-C / CIFAR-100-C (sets read by corruption_sets.py)
and common.py (the run's config and checkpoint, result files), reliability.py (the diagram).

A suite is a class with
  name               the --suite value, the config.evals section of its options and the
                     metrics.jsonl split of its results during training
  file               its result file, <workdir>/eval/<file>
  FLAGS              {option: (flag name, kind, default, help)}: the evaluate command defines
                     these flags; config.evals.<name> holds the same options (lists as
                     comma-separated strings) plus every_epochs
  needs_test_images  True when it reads the test images themselves, not only predictions (such
                     a suite needs the test split in memory on one process)
  check_options(options)  classmethod: UserError for bad options before any model work
  check_run(options, config)  classmethod: UserError when the run (its locked config) cannot
                     give what the options ask for, before any model work
  Suite(run, options)     may check against the run (shapes, classes); builds what it needs
  run(state, step)   -> the JSON record (plain types), also printed by report(record, path)
  write(workdir, record) -> the paths written (default: eval/<file>)
  scalars(record)    -> {key: float} for metrics.jsonl

Adding a suite: a module with the class, one entry in SUITES, its section in configs/default.py.
"""
from bsd_jax.errors import UserError


class Suite:
  """Defaults of the suite interface (see the module docstring)."""
  name = ''
  file = ''
  FLAGS = {}
  needs_test_images = False

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
    from bsd_jax.evaluation import common
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


from bsd_jax.evaluation import adversarial, corruptions, ood, testset  # noqa: E402

SUITES = {s.name: s for s in (testset.TestSuite, ood.OODSuite, adversarial.AdversarialSuite,
                              corruptions.CorruptionsSuite)}


def options_from_config(config, name) -> dict:
  """The options of suite `name` from config.evals.<name> (every key but every_epochs)."""
  section = config.evals[name]
  return {k: section[k] for k in SUITES[name].FLAGS}


def scheduled(config):
  """[(suite class, options, every_epochs)] of the suites config.evals runs during training."""
  return [(SUITES[name], options_from_config(config, name), config.evals[name].every_epochs)
          for name in config.evals if config.evals[name].every_epochs > 0]
