"""The house rules the layout promises: the loop and the step name no method, every command
answers --help with its usage, and config.evals holds the same options as the evaluate flags."""
import os
import subprocess
import sys

import pytest

from bsd_jax import evaluation, methods
from tests import helpers


@pytest.mark.parametrize('module', ['train.py', 'step.py'])
def test_loop_and_step_name_no_method(module):
  with open(os.path.join(helpers.REPO, 'bsd_jax', module)) as f:
    source = f.read()
  for name in methods.METHODS:
    assert f"'{name}'" not in source and f'"{name}"' not in source, (module, name)
  assert 'config.bsd' not in source and 'methods.bsd' not in source


@pytest.mark.parametrize('module, expect', [
    ('bsd_jax.main', '--config'), ('bsd_jax.evaluate', '--adv_eps'),
    ('bsd_jax.sweep', '--methods'), ('bsd_jax.results_table', 'SWEEP_DIR'),
    ('bsd_jax.prepare', '--manual_dir'), ('bsd_jax.report', '--class_names')])
def test_every_command_answers_help_with_its_usage(module, expect):
  proc = helpers.run_cli(['--help'], module=module)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 0, out
  assert f'python -m {module}' in out and expect in out
  assert 'Traceback' not in out


def test_config_evals_holds_the_evaluate_flags_with_their_defaults():
  config = helpers.load_config('default.py')
  assert sorted(config.evals) == sorted(n for n in evaluation.SUITES if n != 'test')
  for name in config.evals:
    suite = evaluation.SUITES[name]
    section = config.evals[name]
    assert sorted(section) == sorted(list(suite.FLAGS) + ['every_epochs'])
    assert section.every_epochs == 0  # off unless asked for
    for option, (_, kind, default, _) in suite.FLAGS.items():
      value = section[option]
      if kind == 'list':  # a comma-separated string in the config
        assert evaluation.as_list(value) == evaluation.as_list(default), (name, option)
      else:
        assert value == default, (name, option)


def test_the_commands_can_be_imported_together():
  """main and sweep share the --config/--workdir flags: defined once in one process."""
  proc = subprocess.run([sys.executable, '-c', 'import bsd_jax.main, bsd_jax.sweep'],
                        cwd=helpers.REPO, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr
