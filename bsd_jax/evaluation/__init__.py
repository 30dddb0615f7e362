"""Evaluation suites behind one interface, run by `python -m bsd_jax.evaluate --suite NAME` on a
checkpoint and, from config.evals, during training.

testset.py (the test split's calibration metrics and reliability diagram, before and after
temperature scaling), ood.py, adversarial.py (attacks.py), corruptions.py (CIFAR-10/100-C,
ImageNet-C), human.py (agreement with people's label distributions, CIFAR-10H), shift.py
(natural shifts: CIFAR-10.1, ImageNet-V2/-A/-R/-Sketch); the sets in ood_sets.py,
corruption_sets.py, human_sets.py and shift_sets.py (imagenet_classes.py); the interface below in suite.py, the run a suite
evaluates and its result files in common.py, the diagram in reliability.py.

A suite is a class with
  name               the --suite value, the config.evals section of its options and the
                     metrics.jsonl split of its results during training
  file               its result file, <workdir>/eval/<file>
  FLAGS              {option: (flag name, kind, default, help)}: the evaluate command defines
                     these flags; config.evals.<name> holds the same options (lists as
                     comma-separated strings) plus every_epochs
  needs_test_images  True when it reads the test images themselves, not only predictions (such
                     a suite needs the test split in memory on one process)
  streamed_runs      True when it evaluates runs that stream their data too (ImageNet)
  check_options(options)  classmethod: UserError for bad options before any model work
  check_run(options, config)  classmethod: UserError when the run (its locked config) cannot
                     give what the options ask for, before any model work
  Suite(run, options)     may check against the run (shapes, classes); builds what it needs
  run(state, step)   -> the JSON record (plain types), also printed by report(record, path)
  write(workdir, record) -> the paths written (default: eval/<file>)
  scalars(record)    -> {key: float} for metrics.jsonl

Adding a suite: a module with the class, one entry in SUITES, its section in configs/default.py.
A checkpoint is loaded for a suite by bsd_jax/saved_run.py."""
from bsd_jax.evaluation import adversarial, corruptions, human, ood, shift, testset


SUITES = {s.name: s for s in (testset.TestSuite, ood.OODSuite, adversarial.AdversarialSuite,
                              corruptions.CorruptionsSuite, human.HumanSuite, shift.ShiftSuite)}


def scheduled(config):
  """[(suite class, options: every key of config.evals.<name> but every_epochs, every_epochs)]
  of the suites config.evals runs during training."""
  return [(SUITES[name], {k: config.evals[name][k] for k in SUITES[name].FLAGS},
           config.evals[name].every_epochs) for name in config.evals
          if config.evals[name].every_epochs > 0]
