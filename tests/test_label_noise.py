"""Synthetic label noise: realised rates, where labels may move, determinism, errors."""
import csv
import gzip
import os

import numpy as np
import pytest

from bsd_jax.config_check import check_config
from bsd_jax.data import label_noise
from bsd_jax.errors import UserError
from tests import helpers

LABELS_CSV = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data',
                          'cifar100-png', 'labels.csv.gz')


def _within_binomial(count, n, p, sigmas=4):
  return abs(count - n * p) <= sigmas * np.sqrt(n * p * (1 - p))


@pytest.mark.parametrize('rate', [0.2, 0.5])
def test_symmetric_rate_and_uniform_other_classes(rate):
  rng = np.random.default_rng(1)
  clean = rng.integers(0, 10, 50_000)
  noisy = label_noise.corrupt_labels(clean, 10, 'symmetric', rate, seed=3)
  changed = noisy != clean
  # Never "replaced" by the same class: the realised rate is the asked rate, not rate * 9/10.
  assert _within_binomial(changed.sum(), clean.size, rate)
  offsets = (noisy[changed] - clean[changed]) % 10
  counts = np.bincount(offsets, minlength=10)
  assert counts[0] == 0
  assert all(_within_binomial(c, changed.sum(), 1 / 9) for c in counts[1:])


def test_asymmetric_cifar10_moves_only_along_the_map():
  rng = np.random.default_rng(2)
  clean = rng.integers(0, 10, 40_000)
  noisy = label_noise.corrupt_labels(clean, 10, 'asymmetric', 0.4, seed=0)
  expected_map = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}  # truck->auto, bird->plane, deer->horse, cat<->dog
  for c in range(10):
    moved = noisy[clean == c] != c
    if c in expected_map:
      assert set(noisy[clean == c][moved]) <= {expected_map[c]}
      assert _within_binomial(moved.sum(), (clean == c).sum(), 0.4)
    else:
      assert not moved.any()


def test_asymmetric_cifar100_stays_in_superclass_cyclically():
  if not os.path.exists(LABELS_CSV):
    pytest.skip(f'{LABELS_CSV} is not there (the workspace shared data)')
  with gzip.open(LABELS_CSV, 'rt') as f:
    rows = [r for r in csv.DictReader(f) if r['split'] == 'train']
  fine = np.array([int(r['fine_label']) for r in rows])
  coarse = np.array([int(r['coarse_label']) for r in rows])
  mapping = label_noise.asymmetric_map(100, coarse, fine)
  coarse_of = dict(zip(fine.tolist(), coarse.tolist()))
  for c in range(100):
    assert mapping[c] != c and coarse_of[mapping[c]] == coarse_of[c]
    cycle, x = [c], mapping[c]
    while x != c:
      cycle.append(x)
      x = mapping[x]
    assert len(cycle) == 5  # each superclass of 5 fine classes is one cycle
  noisy = label_noise.corrupt_labels(fine, 100, 'asymmetric', 0.4, seed=0, coarse_labels=coarse)
  moved = noisy != fine
  assert np.array_equal(noisy[moved], mapping[fine[moved]])
  assert _within_binomial(moved.sum(), fine.size, 0.4)


def test_seeded_and_none():
  clean = np.arange(1000) % 10
  a = label_noise.corrupt_labels(clean, 10, 'symmetric', 0.3, seed=5)
  assert np.array_equal(a, label_noise.corrupt_labels(clean, 10, 'symmetric', 0.3, seed=5))
  assert not np.array_equal(a, label_noise.corrupt_labels(clean, 10, 'symmetric', 0.3, seed=6))
  assert np.array_equal(label_noise.corrupt_labels(clean, 10, 'none', 0.3, seed=5), clean)


def test_asymmetric_noise_beyond_cifar10_needs_superclasses():
  with pytest.raises(UserError, match=r'needs superclasses for 100 classes .*superclass_csv'):
    label_noise.corrupt_labels(np.zeros(10, int), 100, 'asymmetric', 0.4, seed=0)


@pytest.mark.parametrize('kind, rate, match', [
    ('pairflip', 0.2, r'config\.label_noise\.kind: unknown kind'),
    ('symmetric', 1.5, r'config\.label_noise\.rate must be in \[0, 1\]'),
])
def test_bad_noise_settings(kind, rate, match):
  config = helpers.load_config('smoke.py')
  config.label_noise.kind, config.label_noise.rate = kind, rate
  with pytest.raises(UserError, match=match):
    check_config(config, 1)


def _noisy_with_val(**noise):
  """(the smoke config with 40% symmetric noise and a 500-sample validation split, its data)."""
  from bsd_jax import data
  config = helpers.load_config('smoke.py')
  config.label_noise.kind, config.label_noise.rate = 'symmetric', 0.4
  config.data.val_size = 500
  for key, value in noise.items():
    config.label_noise[key] = value
  return config, data.load(config)


def test_validation_labels_carry_the_same_noise_and_are_saved_and_read_back(tmp_path):
  config, ds = _noisy_with_val()
  clean_val = ds.val_labels.copy()
  noisy_ds, clean, to_save = label_noise.prepare(config, ds, str(tmp_path))
  n = clean_val.size
  assert _within_binomial(np.sum(noisy_ds.val_labels != clean_val), n, 0.4)
  # its own stream: not the first n of the training labels' draw
  assert not np.array_equal(noisy_ds.val_labels != clean_val,
                            (noisy_ds.train_labels != clean)[:n])
  label_noise.save(config, str(tmp_path), clean, to_save)
  again, _, nothing = label_noise.prepare(config, ds, str(tmp_path))  # a resume reads them back
  assert nothing is None and np.array_equal(again.val_labels, noisy_ds.val_labels)
  # the evaluate command's dataset: the same noisy validation labels
  read = label_noise.with_saved_val_labels(config, ds, str(tmp_path))
  assert np.array_equal(read.val_labels, noisy_ds.val_labels)


def test_clean_val_keeps_the_validation_labels_clean(tmp_path):
  config, ds = _noisy_with_val(clean_val=True)
  noisy_ds, clean, to_save = label_noise.prepare(config, ds, str(tmp_path))
  assert np.array_equal(noisy_ds.val_labels, ds.val_labels)
  assert np.mean(noisy_ds.train_labels != clean) > 0.3
  assert set(to_save) == {'noisy'}
  assert label_noise.with_saved_val_labels(config, ds, str(tmp_path)) is ds
