"""The sweep command and its results table, on real smoke runs."""
import json
import os
import shutil

import numpy as np
import pytest

from bsd_jax import results_table
from tests import helpers

SWEEP = ['--config=configs/smoke.py', '--methods=ce,bsd', '--seeds=0,1',
         '--bsd_label_weights=0.3,0.8', '--parallel=2', '--config.num_epochs=3',
         '--config.eval_every_epochs=2']


def _sweep(workdir, *extra):
  proc = helpers.run_cli(SWEEP + [f'--workdir={workdir}'] + list(extra), module='bsd_jax.sweep')
  out, _ = proc.communicate(timeout=600)
  return proc.returncode, out


@pytest.fixture(scope='module')
def sweep_dir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('sweep'))
  code, out = _sweep(workdir)
  assert code == 0, out
  return workdir


def test_grid_runs_every_variant_and_seed(sweep_dir):
  labels = {'ce': None, 'bsd_w0.3': 0.3, 'bsd_w0.8': 0.8}
  for label, weight in labels.items():
    for seed in (0, 1):
      run_dir = os.path.join(sweep_dir, label, f'seed{seed}')
      with open(os.path.join(run_dir, 'config.json')) as f:
        config = json.load(f)
      assert config['seed'] == seed and config['num_epochs'] == 3
      assert config['method'] == ('ce' if weight is None else 'bsd')
      if weight is not None:
        assert config['bsd']['label_weight_end'] == weight
      # eval_every_epochs=2 of 3 epochs: the test set at epoch 2 and at the end.
      assert [r['epoch'] for r in helpers.read_metrics(run_dir) if r['split'] == 'test'] == [2, 3]
  # The label weight reaches the targets: BSD's posterior puts less mass on the label at w=0.3.
  final = {label: [r for r in helpers.read_metrics(os.path.join(sweep_dir, label, 'seed0'))
                   if r['split'] == 'train'][-1] for label in ('bsd_w0.3', 'bsd_w0.8')}
  assert final['bsd_w0.3']['target_label_weight'] < final['bsd_w0.8']['target_label_weight']


def test_table_is_mean_and_sample_std_of_last_test_rows(sweep_dir):
  with open(os.path.join(sweep_dir, 'table.json')) as f:
    table = json.load(f)
  assert list(table['rows']) == ['ce', 'bsd_w0.3', 'bsd_w0.8'] and table['unfinished'] == []
  for label, row in table['rows'].items():
    last = [[r for r in helpers.read_metrics(os.path.join(sweep_dir, label, f'seed{s}'))
             if r['split'] == 'test'][-1] for s in (0, 1)]
    for key, title in (('accuracy', 'top-1 %'), ('ece', 'ECE-15 %'),
                       ('adaptive_ece', 'adaptive ECE %'), ('nll', 'NLL')):
      values = np.array([r[key] for r in last])
      assert row['n'] == 2
      assert row[title]['mean'] == pytest.approx(values.mean(), rel=1e-12)
      assert row[title]['std'] == pytest.approx(abs(values[0] - values[1]) / np.sqrt(2), rel=1e-9)
  with open(os.path.join(sweep_dir, 'table.md')) as f:
    assert '| bsd_w0.8 | 2 |' in f.read()


def test_unfinished_runs_are_listed_not_averaged(sweep_dir, tmp_path):
  copy = str(tmp_path / 'copy')
  shutil.copytree(sweep_dir, copy, ignore=shutil.ignore_patterns('checkpoints'))
  path = os.path.join(copy, 'ce', 'seed1', 'metrics.jsonl')
  records = helpers.read_metrics(os.path.dirname(path))
  with open(path, 'w') as f:  # as if stopped during epoch 3
    f.writelines(json.dumps(r) + '\n' for r in records if r['epoch'] < 3)
  rows, unfinished = results_table.summarize(results_table.collect(copy))
  assert unfinished == ['ce seed 1 (epoch 2/3)']
  assert rows['ce']['n'] == 1 and rows['ce']['seeds'] == [0]
  seed0 = helpers.read_metrics(os.path.join(copy, 'ce', 'seed0'), 'test')[-1]
  assert rows['ce']['top-1 %']['mean'] == seed0['accuracy']


def test_rerun_keeps_finished_runs(sweep_dir):
  run_dirs = [os.path.join(sweep_dir, label, f'seed{s}') for label in ('ce', 'bsd_w0.8')
              for s in (0, 1)]
  before = [helpers.read_metrics(d) for d in run_dirs]
  code, out = _sweep(sweep_dir)
  assert code == 0, out
  assert [helpers.read_metrics(d) for d in run_dirs] == before


@pytest.mark.parametrize('arg, names', [('--methods=ce,bogus', 'bogus'),
                                        ('--bsd_label_weights=0.5,1.5', 'label_weight_end'),
                                        ('--seeds=one', '--seeds')])
def test_bad_grid_is_one_line_error_before_any_run(tmp_path, arg, names):
  workdir = str(tmp_path / 'new')
  code, out = _sweep(workdir, arg)
  assert code == 2
  errors = [line for line in out.splitlines() if 'error' in line]
  assert len(errors) == 1 and names in errors[0], out
  assert not os.path.exists(workdir)
