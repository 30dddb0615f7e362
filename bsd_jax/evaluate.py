"""python -m bsd_jax.evaluate --workdir runs/x [--step N] [--suite NAME]

Loads the run's config and a checkpoint (the latest unless --step) and runs one suite
(bsd_jax/evaluation/):
  test         the test split: <workdir>/eval/metrics.json and reliability.png; with a
               validation split (config.data.val_size) also the temperature T fitted on it and
               every metric after scaling, and reliability_scaled.png (--temperature_scaling)
  ood          OOD detection against the --ood sets: <workdir>/eval/ood.json
  adversarial  FGSM and PGD (L-inf) on the first --adv_samples test images:
               <workdir>/eval/adversarial.json
  corruptions  CIFAR-10-C / CIFAR-100-C / ImageNet-C (--corruptions):
               <workdir>/eval/corruptions.json
  human        agreement with people's label distributions (--human_labels, CIFAR-10H):
               <workdir>/eval/human.json
  shift        natural shifts (--shift_sets: CIFAR-10.1, ImageNet-V2/-A/-R/-Sketch):
               <workdir>/eval/shift.json
Results of another checkpoint already there are kept under names carrying their step. Bad input
is one line on stderr and exit status 2, before the model runs."""
import logging

from absl import flags

from bsd_jax import cli, data, saved_run
from bsd_jax.errors import UserError, fail
from bsd_jax.evaluation import SUITES
from bsd_jax.rundir.run_config import load_run_config

_WORKDIR = flags.DEFINE_string('workdir', None, 'A bsd_jax run directory.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
_SUITE = flags.DEFINE_enum('suite', 'test', list(SUITES), 'What to evaluate.')

_DEFINE = {'list': flags.DEFINE_list, 'integer': flags.DEFINE_integer,
           'float': flags.DEFINE_float, 'bool': flags.DEFINE_bool, 'string': flags.DEFINE_string}
for _suite in SUITES.values():  # each suite's own flags (bsd_jax/evaluation/__init__.py)
  for _name, _kind, _default, _help in _suite.FLAGS.values():
    _DEFINE[_kind](_name, _default, _help)


def evaluate(workdir, suite_name='test', step=None, **options) -> dict:
  """Run one suite on one checkpoint of a run and write its results; returns the record.
  `options`: the suite's options (its FLAGS table), the flags' defaults where not given."""
  suite_cls = SUITES[suite_name]
  unknown = sorted(set(options) - set(suite_cls.FLAGS))
  if unknown:
    raise TypeError(f'suite {suite_name!r} has no option(s) {unknown}')
  options = {k: options.get(k, spec[2]) for k, spec in suite_cls.FLAGS.items()}
  run_config = load_run_config(workdir)
  if not suite_cls.streamed_runs and run_config.data.source in data.STREAMED:
    raise UserError(f'--suite {suite_name} needs a test split held in memory; this run streams '
                    f"its data (config.data.source = '{run_config.data.source}'): use --suite "
                    'test, shift or corruptions (ImageNet-C)')
  suite_cls.check_options(options)
  suite_cls.check_run(options, run_config)
  config, ds, exp, state, step = saved_run.load_checkpoint(workdir, step)
  suite = suite_cls(saved_run.checkpoint_run(config, ds, exp), options)
  record = suite.run(state, step)
  suite.report(record, suite.write(workdir, record))
  return record


def main(argv):
  del argv
  if not _WORKDIR.value:
    fail('bsd_jax.evaluate', '--workdir is required')
  logging.getLogger('absl').setLevel(logging.WARNING)
  try:
    evaluate(_WORKDIR.value, _SUITE.value, _STEP.value, **{
        option: flags.FLAGS[spec[0]].value for option, spec in SUITES[_SUITE.value].FLAGS.items()})
  except UserError as e:
    fail('bsd_jax.evaluate', str(e), e.exit_status)


if __name__ == '__main__':
  cli.run(main)
