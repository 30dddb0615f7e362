"""config.data.val_size: the validation split held out of the training split, and the temperature
scaling fitted on it by the final evaluation and the evaluate command."""
import json
import os
import shutil

import numpy as np
import pytest

from bsd_jax import data, evaluate, feeds, metrics, saved_run, train
from bsd_jax.errors import UserError
from tests import helpers

VAL = 100


def _config(**data_keys):
  config = helpers.load_config('smoke.py')
  for key, value in data_keys.items():
    config.data[key] = value
  return config


def _rows(images):
  return {im.tobytes() for im in images}


def test_validation_split_is_class_balanced_seeded_and_disjoint():
  whole = data.load(_config())
  ds = data.load(_config(val_size=VAL))
  assert ds.num_train == whole.num_train - VAL and ds.val_labels.shape == (VAL,)
  assert np.bincount(ds.val_labels, minlength=10).tolist() == [10] * 10
  # Every image comes from the original training split, none is in both new splits.
  original = _rows(whole.train_images)
  val, kept = _rows(ds.val_images), _rows(ds.train_images)
  assert len(val) == VAL and val <= original and kept <= original and not val & kept
  # The labels follow their images.
  label_of = {im.tobytes(): y for im, y in zip(whole.train_images, whole.train_labels)}
  assert [label_of[im.tobytes()] for im in ds.val_images] == ds.val_labels.tolist()
  assert [label_of[im.tobytes()] for im in ds.train_images] == ds.train_labels.tolist()
  # The same seed gives the same split, another seed another.
  again, other = data.load(_config(val_size=VAL)), data.load(_config(val_size=VAL, val_seed=1))
  np.testing.assert_array_equal(again.val_images, ds.val_images)
  assert _rows(other.val_images) != val


def test_a_remainder_goes_to_seeded_classes_and_the_subset_comes_from_the_rest():
  ds = data.load(_config(val_size=105, train_subset_per_class=30))
  counts = np.bincount(ds.val_labels, minlength=10)
  assert sorted(counts.tolist()) == [10] * 5 + [11] * 5
  assert np.bincount(ds.train_labels).tolist() == [30] * 10
  assert not _rows(ds.val_images) & _rows(ds.train_images)
  # The validation split does not depend on the subset drawn after it.
  alone = data.load(_config(val_size=105))
  np.testing.assert_array_equal(alone.val_images, ds.val_images)


@pytest.mark.parametrize('size, message', [
    (1024, r'val_size = 1024 leaves no training samples'),
    (1000, r'val_size = 1000: class \d has \d+ training samples, not more than its 100'),
])
def test_too_large_a_validation_split_is_one_line(size, message):
  with pytest.raises(UserError, match=message) as info:
    data.load(_config(val_size=size))
  assert '\n' not in str(info.value)


@pytest.fixture(scope='module')
def val_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('val_run'))
  config = _config(val_size=VAL)
  config.num_epochs = 2
  train.train_and_evaluate(config, workdir)
  return workdir


def test_held_out_images_have_no_table_rows(val_run):
  with open(os.path.join(val_run, 'eval', 'class_targets.npz'), 'rb') as f:
    counts = np.load(f)['counts']
  assert counts.sum() == 1024 - VAL  # the table's valid rows: the training samples only
  _, meta_step = helpers.read_checkpoint_state(val_run)
  with open(os.path.join(val_run, 'checkpoints', str(meta_step), 'meta', 'metadata')) as f:
    assert json.load(f)['num_train'] == 1024 - VAL


def _scaled_by_hand(workdir):
  """T minimising the validation NLL and the test NLL after scaling, from the checkpoint's own
  logits (the model run again, not the suite's numbers)."""
  config, ds, exp, state, _ = saved_run.load_checkpoint(workdir)
  predictor = feeds.Predictor(exp, 256)
  val_logits, _ = predictor.outputs(state, ds.val_images)
  test_logits, _ = predictor.outputs(state, ds.test_images)
  return val_logits, ds.val_labels, test_logits, ds.test_labels


def _nll(logits, labels, t):
  z = np.asarray(logits, np.float64) / t
  z = z - z.max(1, keepdims=True)
  return float(-np.mean(z[np.arange(len(labels)), labels] - np.log(np.exp(z).sum(1))))


def test_final_evaluation_fits_t_on_the_validation_split(val_run):
  with open(os.path.join(val_run, 'eval', 'metrics.json')) as f:
    record = json.load(f)
  assert record['val_samples'] == VAL and record['epoch'] == 2
  t = record['temperature']
  val_logits, val_labels, test_logits, test_labels = _scaled_by_hand(val_run)
  best = _nll(val_logits, val_labels, t)
  for factor in (0.98, 1.02, 0.8, 1.25):
    assert _nll(val_logits, val_labels, t * factor) > best
  assert record['scaled_metrics']['nll'] == pytest.approx(_nll(test_logits, test_labels, t),
                                                           rel=1e-4)
  assert record['metrics']['nll'] == pytest.approx(_nll(test_logits, test_labels, 1.0), rel=1e-4)
  assert sum(record['scaled_reliability']['count']) == sum(record['reliability']['count']) == 512
  # The same numbers are the last test record of metrics.jsonl.
  last = helpers.read_metrics(val_run, 'test')[-1]
  assert last['temperature'] == t and last['scaled_ece'] == record['scaled_metrics']['ece']
  assert not os.path.exists(os.path.join(val_run, 'eval', 'reliability.png'))  # training draws none


def test_evaluate_scales_or_refuses(val_run, tmp_path):
  record = evaluate.evaluate(val_run, temperature_scaling='on')
  # The evaluate command's T minimises the validation NLL of the checkpoint's own logits, and
  # is the T the training's final evaluation logged.
  t = record['temperature']
  val_logits, val_labels, _, _ = _scaled_by_hand(val_run)
  for factor in (0.98, 1.02):
    assert _nll(val_logits, val_labels, t * factor) > _nll(val_logits, val_labels, t)
  assert t == pytest.approx(helpers.read_metrics(val_run, 'test')[-1]['temperature'], rel=1e-6)
  assert os.path.exists(os.path.join(val_run, 'eval', 'reliability_scaled.png'))
  record = evaluate.evaluate(val_run, temperature_scaling='off')
  assert 'temperature' not in record and 'scaled_metrics' not in record
  assert not os.path.exists(os.path.join(val_run, 'eval', 'reliability_scaled.png'))
  # A run without a validation split: one line, exit status 2, before any model work.
  plain = tmp_path / 'plain'
  shutil.copytree(val_run, plain, ignore=shutil.ignore_patterns('eval'))
  with open(plain / 'config.json') as f:
    config = json.load(f)
  config['data']['val_size'] = 0
  with open(plain / 'config.json', 'w') as f:
    json.dump(config, f)
  proc = helpers.run_cli(['--workdir', str(plain), '--temperature_scaling=on'],
                         module='bsd_jax.evaluate')
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 2
  assert out.strip().splitlines() == [
      'bsd_jax.evaluate: error: --temperature_scaling=on needs a validation split to fit T on, '
      'and this run has none (config.data.val_size = 0): train with data.val_size > 0']
  assert not (plain / 'eval').exists()


def test_fit_temperature_minimises_the_nll_and_scaled_metrics_are_those_of_scaled_probs():
  rng = np.random.default_rng(3)
  logits = rng.normal(0, 4, (300, 5))
  labels = np.argmax(logits + rng.normal(0, 4, (300, 5)), 1)  # over-confident logits: T > 1
  t = metrics.fit_temperature(logits, labels)
  grid = np.exp(np.linspace(np.log(0.2), np.log(20), 2001))
  best = grid[np.argmin([_nll(logits, labels, g) for g in grid])]
  assert t > 1 and t == pytest.approx(best, rel=0.01)  # the grid's spacing is 0.23%
  probs = metrics.softmax(logits, t)
  e = np.exp(logits / t - (logits / t).max(1, keepdims=True))  # computed here, in float64
  np.testing.assert_allclose(probs, e / e.sum(1, keepdims=True), rtol=1e-6)
  np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-6)
  assert metrics.nll(probs, labels) == pytest.approx(_nll(logits, labels, t), rel=1e-5)
