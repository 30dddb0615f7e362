"""The sweep command, its results table and the report, on real smoke runs with a validation
split."""
import json
import os
import shutil

import numpy as np
import pytest

from bsd_jax.evaluation import common
from bsd_jax.studies import results_table
from tests import helpers

SWEEP = ['--config=configs/smoke.py', '--methods=ce,bsd', '--seeds=0,1',
         '--grid=bsd.label_weight_end=0.3,0.8', '--parallel=2', '--config.num_epochs=3',
         '--config.eval_every_epochs=2', '--config.data.val_size=100'] + [
             f'--config.data.synthetic.{key}' for key in ('num_train=300', 'num_test=128')]
W03, W08 = 'bsd_label_weight_end0.3', 'bsd_label_weight_end0.8'


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
  labels = {'ce': None, W03: 0.3, W08: 0.8}
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
                   if r['split'] == 'train'][-1] for label in (W03, W08)}
  assert final[W03]['target_label_weight'] < final[W08]['target_label_weight']


def test_table_is_mean_and_sample_std_of_last_test_rows(sweep_dir):
  with open(os.path.join(sweep_dir, 'table.json')) as f:
    table = json.load(f)
  assert list(table['rows']) == ['ce', W03, W08] and table['unfinished'] == []
  for label, row in table['rows'].items():
    last = [[r for r in helpers.read_metrics(os.path.join(sweep_dir, label, f'seed{s}'))
             if r['split'] == 'test'][-1] for s in (0, 1)]
    for key, title in (('accuracy', 'top-1 %'), ('ece', 'ECE-15 %'),
                       ('adaptive_ece', 'adaptive ECE %'), ('nll', 'NLL'), ('temperature', 'T'),
                       ('scaled_ece', 'ECE-15 %, T-scaled')):
      values = np.array([r[key] for r in last])
      assert row['n'] == 2
      assert row[title]['mean'] == pytest.approx(values.mean(), rel=1e-12)
      assert row[title]['std'] == pytest.approx(abs(values[0] - values[1]) / np.sqrt(2), rel=1e-9)
  with open(os.path.join(sweep_dir, 'table.md')) as f:
    assert f'| {W08} | 2 |' in f.read()


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


def test_a_second_sweep_into_the_same_workdir_keeps_the_first_ones_runs_in_the_table(
    sweep_dir, tmp_path):
  copy = str(tmp_path / 'copy')
  shutil.copytree(sweep_dir, copy)
  with open(os.path.join(copy, 'sweep.json')) as f:
    first = json.load(f)
  # Another sweep: CE alone, another override; its one run is finished already.
  proc = helpers.run_cli(['--config=configs/smoke.py', '--methods=ce', '--seeds=0',
                          '--config.num_epochs=3', '--config.eval_every_epochs=2',
                          '--config.data.val_size=100'] + SWEEP[-2:] + [
                          '--config.log_every_steps=4', f'--workdir={copy}'],
                         module='bsd_jax.sweep')
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out
  with open(os.path.join(copy, 'sweep.json')) as f:
    merged = json.load(f)
  assert merged['labels'] == first['labels'] == ['ce', W03, W08]
  assert len(merged['runs']) == 6
  ce0 = [r for r in merged['runs'] if (r['label'], r['seed']) == ('ce', 0)]
  assert len(ce0) == 1 and ce0[0]['overrides'][-1] == '--config.log_every_steps=4'
  table = results_table.write_table(copy)
  assert all(f'| {label} | 2 |' in table for label in ('ce', W03, W08))


@pytest.mark.slow
def test_rerun_keeps_finished_runs(sweep_dir):
  run_dirs = [os.path.join(sweep_dir, label, f'seed{s}') for label in ('ce', W08)
              for s in (0, 1)]
  before = [helpers.read_metrics(d) for d in run_dirs]
  code, out = _sweep(sweep_dir)
  assert code == 0, out
  assert [helpers.read_metrics(d) for d in run_dirs] == before


@pytest.mark.parametrize('arg, names', [('--methods=ce,bogus', 'bogus'),
                                        ('--bsd_label_weights=0.5,1.5', 'label_weight_end'),
                                        ('--seeds=one', '--seeds'),
                                        ('--config.data.source=folder '
                                         '--config.data.root=/no/such/folder', '/no/such/folder')])
def test_bad_grid_is_one_line_error_before_any_run(tmp_path, arg, names):
  workdir = str(tmp_path / 'new')
  code, out = _sweep(workdir, *arg.split())  # a missing data root: before the first run too
  assert code == 2
  errors = [line for line in out.splitlines() if 'error' in line]
  assert len(errors) == 1 and names in errors[0], out
  assert not os.path.exists(workdir)


def _report(directory, *extra):
  proc = helpers.run_cli([str(directory)] + list(extra), module='bsd_jax.report')
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out
  with open(os.path.join(directory, 'report.md')) as f:
    return f.read()


def _table(report):
  """{label: {column title: cell}} of the results table of a report."""
  section = report.split('## Results')[1].split('\n## ')[0]
  lines = [l for l in section.splitlines() if l.startswith('| ')]
  titles = [c.strip() for c in lines[0].strip('|').split('|')]
  return {cells[0]: dict(zip(titles, cells)) for cells in
          ([c.strip() for c in l.strip('|').split('|')] for l in lines[1:])
          if cells[0] != titles[0] and not cells[0].startswith('---')}


def test_report_table_is_the_runs_own_records_and_its_figures_exist(sweep_dir, tmp_path):
  names = tmp_path / 'names.txt'
  names.write_text(''.join(f'class_{c}\n' for c in 'abcdefghij'))
  text = _report(sweep_dir, f'--class_names={names}')
  table = _table(text)
  assert list(table) == ['ce', W03, W08]
  for label, row in table.items():
    last = [helpers.read_metrics(os.path.join(sweep_dir, label, f'seed{s}'), 'test')[-1]
            for s in (0, 1)]
    for key, title, scale, digits in (('accuracy', 'top-1 %', 100, 2), ('ece', 'ECE-15 %', 100, 2),
                                      ('nll', 'NLL', 1, 4), ('temperature', 'T', 1, 4),
                                      ('scaled_ece', 'ECE-15 %, T-scaled', 100, 2),
                                      ('scaled_nll', 'NLL, T-scaled', 1, 4)):
      values = np.array([r[key] for r in last]) * scale
      mean, std = (float(v) for v in row[title].split(' ± '))
      assert mean == pytest.approx(values.mean(), abs=0.51 * 10**-digits), (label, title)
      assert std == pytest.approx(values.std(ddof=1), abs=0.51 * 10**-digits), (label, title)
  for figure in ('curves.png', 'reliability.png', 'posterior.png', f'class_targets_{W03}.png',
                 f'class_targets_{W08}.png'):
    path = os.path.join(sweep_dir, 'report_figures', figure)
    with open(path, 'rb') as f:
      assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert os.path.getsize(path) > 10_000 and f'(report_figures/{figure})' in text
  # BSD's class pairs by the names given, the pair with the most mass between them first.
  pairs = text.split(f'## Class-by-class targets: {W03}')[1].split('\n## ')[0]
  rows = [l for l in pairs.splitlines() if l.startswith('| class_')]
  assert len(rows) == 10
  matrix = np.mean([np.load(os.path.join(sweep_dir, W03, f'seed{s}', 'eval',
                                         'class_targets.npz'))['matrix'] for s in (0, 1)], 0)
  best = max(((a, b) for a in range(10) for b in range(a + 1, 10)),
             key=lambda p: matrix[p[0], p[1]] + matrix[p[1], p[0]])
  assert rows[0].startswith(f"| class_{'abcdefghij'[best[0]]} | class_{'abcdefghij'[best[1]]} |")


def test_report_on_unfinished_and_single_runs(sweep_dir, tmp_path):
  copy = tmp_path / 'copy'
  shutil.copytree(sweep_dir, copy, ignore=shutil.ignore_patterns('checkpoints', 'report*'))
  path = copy / 'ce' / 'seed1' / 'metrics.jsonl'
  records = helpers.read_metrics(path.parent)
  with open(path, 'w') as f:  # as if still in epoch 3
    f.writelines(json.dumps(r) + '\n' for r in records if r['epoch'] < 3)
  text = _report(copy)
  assert '- ce: seed 0: finished; seed 1: **unfinished** (epoch 2/3)' in text
  assert _table(text)['ce']['seeds'] == '1'
  assert 'not finished, left out: ce seed 1 (epoch 2/3)' in text
  # `evaluate --step` of an earlier checkpoint after the run: its record takes eval/metrics.json
  # (the final one is kept as metrics.step<S>.json), and the report still finds the final one.
  run = copy / W08 / 'seed0'
  final = json.loads((run / 'eval' / 'metrics.json').read_text())
  common.write_result(str(run), dict(final, step=final['step'] // 3, epoch=1), 'metrics.json')
  assert os.path.exists(run / 'eval' / f'metrics.step{final["step"]}.json')
  single = _report(run)
  assert list(_table(single)) == ['bsd']
  assert '(report_figures/reliability.png)' in single
  assert os.path.exists(run / 'report_figures' / 'reliability.png')


@pytest.mark.parametrize('args, message', [
    (['/no/such/dir'], "give one run or sweep directory; got ['/no/such/dir']"),
    (['{empty}'], 'no run directories in it'),
    (['{empty}', '--class_names=/no/names.txt'], "--class_names: '/no/names.txt' is not a file"),
])
def test_report_bad_input_is_one_line(tmp_path, args, message):
  proc = helpers.run_cli([a.format(empty=tmp_path) for a in args], module='bsd_jax.report')
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 2, out
  assert len(out.strip().splitlines()) == 1 and message in out, out
  assert not os.path.exists(tmp_path / 'report.md')
