"""Training under label noise: the noisy labels in the workdir, clean-label metrics, resume."""
import csv
import gzip
import json
import os
import shutil

import numpy as np
import pytest

from bsd_jax import data, posterior, train
from bsd_jax.data import label_noise
from bsd_jax.errors import UserError
from tests import helpers

SHARED_PNG = os.path.join(helpers.REPO, '..', 'shared', 'data', 'cifar100-png')


def _noisy_config(**noise):
  config = helpers.load_config('smoke.py')
  config.num_epochs = 4
  config.label_noise.kind = 'symmetric'
  config.label_noise.rate = 0.4
  for key, value in noise.items():
    config.label_noise[key] = value
  return config


@pytest.fixture(scope='module')
def noisy_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('noisy'))
  config = _noisy_config()
  train.train_and_evaluate(config, workdir)
  return config, workdir


def test_noisy_labels_are_written_and_used(noisy_run):
  config, workdir = noisy_run
  clean = data.load(config).train_labels
  with np.load(os.path.join(workdir, 'noisy_labels.npz')) as saved:
    assert np.array_equal(saved['clean'], clean)
    noisy = saved['noisy']
    assert saved['realised_rate'] == np.mean(noisy != clean)
    assert saved['kind'].item() == 'symmetric' and saved['rate'].item() == 0.4
  n = clean.size
  assert abs(np.sum(noisy != clean) - 0.4 * n) <= 4 * np.sqrt(n * 0.4 * 0.6)
  # The logged recovery of the noisy samples, recomputed from the checkpoint's posterior table.
  state, _ = helpers.read_checkpoint_state(workdir)
  t = np.asarray(posterior.posterior_mean(state['alpha'][:n]))
  wrong = noisy != clean
  last = helpers.read_metrics(workdir, 'train')[-1]
  assert last['noisy_target_argmax_clean'] == pytest.approx(
      np.mean(t[wrong].argmax(-1) == clean[wrong]), abs=1e-6)
  assert last['noisy_target_clean_weight'] == pytest.approx(
      np.mean(t[wrong, clean[wrong]]), rel=1e-5)


def test_train_accuracy_against_clean_labels(noisy_run):
  _, workdir = noisy_run
  last = helpers.read_metrics(workdir, 'train')[-1]
  # The synthetic classes are learnable templates: a model that learns them agrees with the
  # clean labels more often than with labels of which 40% were replaced.
  assert last['accuracy_clean_labels'] > last['accuracy'] + 0.05


@pytest.mark.parametrize('change, match, npz_match', [
    ({'seed': 1}, r'label_noise\.seed: saved 0, now 1',
     r"noisy_labels\.npz was made with label noise .*'seed': 0"),
    ({'kind': 'none'}, r'label_noise\.kind: saved "symmetric", now "none"',
     r'noisy_labels\.npz exists: this workdir was trained with label noise'),
])
def test_resume_with_other_noise_is_refused(noisy_run, tmp_path, change, match, npz_match):
  """config.json names the change; without it (a copy), the checkpoints' copy of the config
  does; without both, noisy_labels.npz still refuses."""
  _, workdir = noisy_run
  path = os.path.join(workdir, 'noisy_labels.npz')
  with open(path, 'rb') as f:
    before = f.read()
  with pytest.raises(UserError, match=match):
    train.train_and_evaluate(_noisy_config(**change), workdir)
  with open(path, 'rb') as f:
    assert f.read() == before
  copy = str(tmp_path / 'copy')
  shutil.copytree(workdir, copy)
  os.remove(os.path.join(copy, 'config.json'))
  with pytest.raises(UserError, match=r'\(the config of checkpoint \d+\) was written for '
                     r'another run \(' + match[:match.index(':')]):
    train.train_and_evaluate(_noisy_config(**change), copy)
  shutil.rmtree(os.path.join(copy, 'checkpoints'))
  with pytest.raises(UserError, match=npz_match):
    train.train_and_evaluate(_noisy_config(**change), copy)


def test_superclasses_from_the_shared_labels_csv():
  if not os.path.isdir(SHARED_PNG):
    pytest.skip(f'{SHARED_PNG} is not there (the workspace shared data)')
  with open(os.path.join(SHARED_PNG, 'label_names.json')) as f:
    names = json.load(f)
  fine_names = names['fine_label_names']
  coarse = label_noise.superclasses_from_csv(os.path.join(SHARED_PNG, 'labels.csv.gz'),
                                               tuple(sorted(fine_names)))
  assert np.bincount(coarse).tolist() == [5] * 20
  with gzip.open(os.path.join(SHARED_PNG, 'labels.csv.gz'), 'rt') as f:
    row = next(csv.DictReader(f))  # train/cattle/...: fine 19, coarse 11
  fine_name = row['path'].split('/')[1]
  assert coarse[sorted(fine_names).index(fine_name)] == int(row['coarse_label'])


def test_superclass_csv_missing_class(tmp_path):
  path = tmp_path / 'sc.csv'
  path.write_text('class,coarse_label\na,0\n')
  with pytest.raises(UserError, match=r"has no superclass for class folder\(s\) \['b'\]"):
    label_noise.superclasses_from_csv(str(path), ('a', 'b'))
