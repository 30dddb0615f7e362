"""config.evals: evaluation suites run during training, their numbers in metrics.jsonl under the
suite's name; the same numbers as the evaluate command gives on the same checkpoint."""
import json
import os

import numpy as np
import pytest

from bsd_jax import evaluate, methods, train
from bsd_jax.errors import UserError
from tests import helpers


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('evals')
  ood = str(tmp / 'ood.npy')
  np.save(ood, np.random.default_rng(0).integers(0, 256, (48, 32, 32, 3)).astype(np.uint8))
  config = helpers.load_config('smoke.py')
  config.num_epochs = 3
  config.evals.ood.every_epochs = 2
  config.evals.ood.sets = f'npy:{ood}'
  config.evals.adversarial.every_epochs = 3
  config.evals.adversarial.eps = '2'
  config.evals.adversarial.steps = 2
  config.evals.adversarial.samples = 64
  workdir = str(tmp / 'run')
  train.train_and_evaluate(config, workdir)
  return workdir, ood


def test_suites_run_at_their_epochs_and_at_the_end(run):
  workdir, ood = run
  epochs = {split: [r['epoch'] for r in helpers.read_metrics(workdir, split)]
            for split in ('test', 'ood', 'adversarial')}
  assert epochs == {'test': [1, 2, 3], 'ood': [2, 3], 'adversarial': [3]}
  last = helpers.read_metrics(workdir, 'ood')[-1]
  assert set(last) == {'step', 'epoch', 'split'} | {
      f'npy:{ood}/{k}_{s}' for k in ('auroc', 'fpr95') for s in ('msp', 'entropy')}


def test_numbers_in_training_equal_the_evaluate_command(run):
  workdir, ood = run
  logged = helpers.read_metrics(workdir, 'ood')[-1]
  record = evaluate.evaluate(workdir, 'ood', sets=[f'npy:{ood}'])
  for key, value in record['sets'][f'npy:{ood}'].items():
    if key != 'num_ood':
      assert logged[f'npy:{ood}/{key}'] == value, key
  logged = helpers.read_metrics(workdir, 'adversarial')[-1]
  record = evaluate.evaluate(workdir, 'adversarial', eps=['2'], steps=2, samples=64)
  assert logged['pgd/2/accuracy'] == record['results']['pgd']['2']['accuracy']
  assert logged['clean/ece'] == record['results']['clean']['ece']
  with open(os.path.join(workdir, 'eval', 'adversarial.json')) as f:
    assert json.load(f)['results'] == record['results']


@pytest.mark.parametrize('key, value, match', [
    ('evals.ood.every_epochs', 1, r'config\.evals\.ood: --suite ood needs --ood'),
    ('evals.ood.every_epochs', -1, r'config\.evals\.ood\.every_epochs must be >= 0'),
    ('evals.adversarial.eps', 'x', r'config\.evals\.adversarial: --adv_eps: could not convert'),
    ('evals.corruptions.every_epochs', 1, r'config\.evals\.corruptions: --suite corruptions '
     r'needs --corruptions'),
])
def test_bad_evals_are_one_line_errors_before_anything_is_written(tmp_path, key, value, match):
  config = helpers.load_config('smoke.py')
  section, option = key.rsplit('.', 1)
  config.evals[section.split('.')[1]][option] = value
  if option == 'eps':
    config.evals.adversarial.every_epochs = 1
  with pytest.raises(UserError, match=match) as info:
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert '\n' not in str(info.value)
  assert not (tmp_path / 'run').exists()


def test_a_new_method_with_its_own_statistics_needs_no_change_to_the_loop(tmp_path,
                                                                          monkeypatch):
  """A baseline registered with an epoch_stats hook: its numbers reach the train records."""
  def counting_ce(config):
    def stats(table, labels, valid, clean_labels=None, *, num_classes):
      return ({'visited_rows': (table[:, 0] * valid).sum()},)
    return methods.Method(
        'counting_ce', methods.METHODS['ce'].build(config).loss,
        init_table=lambda labels, k: np.zeros((labels.shape[0], 1), np.float32),
        update_rows=lambda rows, probs, epoch: rows + 1.0, epoch_stats=stats)

  monkeypatch.setitem(methods.METHODS, 'counting_ce', methods.Entry(counting_ce))
  config = helpers.load_config('smoke.py')
  config.method, config.num_epochs = 'counting_ce', 2
  train.train_and_evaluate(config, str(tmp_path))
  counts = [r['visited_rows'] for r in helpers.read_metrics(str(tmp_path), 'train')]
  assert counts == [1024.0, 2048.0]  # every one of the 1024 samples visited once per epoch


def test_an_unreadable_evaluation_set_stops_before_anything_is_written(tmp_path):
  bad = tmp_path / 'floats.npy'
  np.save(bad, np.zeros((4, 32, 32, 3), np.float32))  # exists (the option check passes) ...
  config = helpers.load_config('smoke.py')
  config.evals.ood.every_epochs, config.evals.ood.sets = 1, f'npy:{bad}'
  with pytest.raises(UserError, match=r'--ood npy:.*floats\.npy: expected uint8'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))  # ... reading it does not
  assert not (tmp_path / 'run').exists()


def test_suites_that_read_test_images_are_refused_in_multi_process_jobs():
  from bsd_jax.config_check import check_config
  config = helpers.load_config('smoke.py')
  config.evals.adversarial.every_epochs = 1
  check_config(config, 8, num_processes=1)
  with pytest.raises(UserError, match=r'config\.evals\.adversarial: reads the test images'):
    check_config(config, 8, num_processes=2)
  config.evals.adversarial.every_epochs, config.evals.ood.every_epochs = 0, 1
  config.evals.ood.sets = 'mnist:/no/such/file'
  with pytest.raises(UserError, match=r'config\.evals\.ood: --ood mnist:/no/such/file: '
                     r'/no/such/file does not exist'):
    check_config(config, 8, num_processes=2)  # ood predicts: allowed, its options checked
