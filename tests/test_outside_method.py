"""A method registered from outside bsd_jax (tests/fixtures/outside_method_config.py, a config file
that brings its own method and section) trains, resumes and sweeps with no edit to bsd_jax: the
config check, the resume check and the sweep's grid scoping come from its registry entry."""
import json
import os
import shutil

import jax
import numpy as np
import pytest

from bsd_jax import methods, train
from bsd_jax.errors import UserError
from bsd_jax.studies import sweep_grid
from tests import helpers

CONFIG = 'tests/fixtures/outside_method_config.py'


def _cli(args, module='bsd_jax.main'):
  proc = helpers.run_cli(['--config', CONFIG] + args, module=module)
  out, _ = proc.communicate(timeout=600)
  return proc.returncode, out


def test_its_grid_key_varies_its_runs_only(monkeypatch):
  monkeypatch.setattr(methods, 'METHODS', dict(methods.METHODS))  # registered for this test only
  config = helpers.load_config(os.path.join(helpers.REPO, CONFIG))  # registers ce_ema
  assert methods.METHODS['ce_ema'].section == 'ce_ema'
  runs = sweep_grid.plan(config, ['ce_ema', 'ce'], ['0'], (), ['ce_ema.weight=0,2'])
  assert {label: args for label, _, args in runs} == {
      'ce_ema_weight0': ['--config.method=ce_ema', '--config.seed=0', '--config.ce_ema.weight=0.0'],
      'ce_ema_weight2': ['--config.method=ce_ema', '--config.seed=0', '--config.ce_ema.weight=2.0'],
      'ce': ['--config.method=ce', '--config.seed=0']}


def test_it_sweeps_resumes_and_its_own_keys_are_checked(tmp_path, monkeypatch):
  sweep = str(tmp_path / 'sweep')
  code, out = _cli([f'--workdir={sweep}', '--methods=ce_ema', '--seeds=0',
                    '--grid=ce_ema.weight=0,2', '--parallel=2'], module='bsd_jax.sweep')
  assert code == 0, out
  finals = {}
  for label, weight in (('ce_ema_weight0', 0.0), ('ce_ema_weight2', 2.0)):
    run = os.path.join(sweep, label, 'seed0')
    with open(os.path.join(run, 'config.json')) as f:
      assert json.load(f)['ce_ema'] == {'weight': weight, 'decay': 0.6}
    finals[label] = helpers.read_metrics(run, 'train')[-1]['loss']
  assert finals['ce_ema_weight0'] != finals['ce_ema_weight2']  # the key acts

  # Resume: the run without its last checkpoint ends where the sweep's run ended, table too.
  done = os.path.join(sweep, 'ce_ema_weight2', 'seed0')
  again = str(tmp_path / 'again')
  shutil.copytree(done, again)
  steps = sorted(int(s) for s in os.listdir(os.path.join(again, 'checkpoints')) if s.isdigit())
  shutil.rmtree(os.path.join(again, 'checkpoints', str(steps[-1])))
  code, out = _cli([f'--workdir={again}', '--config.ce_ema.weight=2', '--config.seed=0'])
  assert code == 0, out
  assert f'Resumed from {again}/checkpoints at step {steps[-2]}' in out
  want, _ = helpers.read_checkpoint_state(done)
  got, _ = helpers.read_checkpoint_state(again)
  jax.tree.map(np.testing.assert_array_equal, want, got)  # same machine: bit for bit
  assert not np.array_equal(want['alpha'], np.eye(10)[want['alpha'].argmax(-1)])  # it learned

  # Its section is compared on resume, and checked before any work (in this process).
  monkeypatch.setattr(methods, 'METHODS', dict(methods.METHODS))
  config = helpers.load_config(os.path.join(helpers.REPO, CONFIG))
  config.ce_ema.weight = 1.0
  with pytest.raises(UserError, match=r'ce_ema\.weight: saved 2\.0, now 1\.0'):
    train.train_and_evaluate(config, again)
  config.ce_ema.weight, config.ce_ema.decay = 2.0, 1.0
  with pytest.raises(UserError, match=r'config\.ce_ema\.decay must be in \[0, 1\), got 1'):
    train.train_and_evaluate(config, str(tmp_path / 'bad'))
  assert not (tmp_path / 'bad').exists()
