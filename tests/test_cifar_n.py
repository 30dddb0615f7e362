"""CIFAR-N's crowd labels as the training labels (config.label_noise.kind = 'human'), on a
cifar10_n prepared by tfds's own builder from files laid out as the release's
(tests/tfds_fixtures.py): the field named is read sample by sample, the clean label stays for
the recovery statistics, the realised rate is what the fixture was made with."""
import os

import numpy as np
import pytest

from bsd_jax import data, train
from bsd_jax.data import label_noise
from bsd_jax.errors import UserError
from tests import helpers, tfds_fixtures


@pytest.fixture(scope='module')
def cifar10_n(tmp_path_factory):
  return tfds_fixtures.cifar10_n(str(tmp_path_factory.mktemp('cifar10_n')))


def _config(data_dir, field, **overrides):
  config = helpers.load_config('smoke.py')
  helpers.override(config, {'data.source': 'tfds', 'data.name': 'cifar10_n',
                            'data.tfds_data_dir': data_dir, 'data.download': False,
                            'label_noise.kind': 'human', 'label_noise.human_label': field,
                            'batch_size': 8, 'eval_batch_size': 8, 'num_epochs': 2})
  return helpers.override(config, overrides)


def _by_record(data_dir, split='train'):
  """The fixture's sample index of each record of the prepared split (tfds shuffles them)."""
  import tensorflow_datasets as tfds
  source = tfds.builder('cifar10_n', data_dir=data_dir).as_data_source(split=split)
  return np.array([int(source[i]['id'].decode().split('_')[1]) for i in range(len(source))])


@pytest.mark.parametrize('field, rate', [('aggre_label', 0.2), ('worse_label', 0.4),
                                         ('random_label3', 1.0)])
def test_the_named_field_is_the_training_label(cifar10_n, tmp_path, field, rate):
  data_dir, labels, _ = cifar10_n
  index = _by_record(data_dir)
  ds, clean, to_save = label_noise.prepare(_config(data_dir, field), data.load(
      _config(data_dir, field)), str(tmp_path))
  assert np.array_equal(clean, labels['label'][index])
  assert np.array_equal(ds.train_labels, labels[field][index])
  assert np.array_equal(to_save['noisy'], labels[field][index])
  assert np.mean(ds.train_labels != clean) == pytest.approx(rate)


def test_a_run_trains_on_the_crowd_labels_and_keeps_the_clean_ones(cifar10_n, tmp_path):
  data_dir, labels, test_labels = cifar10_n
  workdir = str(tmp_path / 'run')
  config = _config(data_dir, 'worse_label', **{'data.val_size': 10})
  train.train_and_evaluate(config, workdir)
  ds = data.load(config)
  with np.load(os.path.join(workdir, 'noisy_labels.npz')) as f:
    saved = dict(f)
  assert saved['kind'].item() == 'human' and saved['human_label'].item() == 'worse_label'
  clean, noisy = saved['clean'], saved['noisy']
  assert np.array_equal(clean, ds.train_labels)
  assert saved['realised_rate'] == pytest.approx(np.mean(noisy != clean))
  # The validation samples carry their own crowd labels (config.label_noise.clean_val off).
  assert np.array_equal(saved['val_clean'], ds.val_labels)
  assert np.array_equal(saved['val_noisy'], ds.val_human_labels)
  # Each training sample's pair (clean, crowd) is the fixture's pair for some sample: the
  # crowd label moved with its image through the validation hold-out.
  pairs = set(zip(labels['label'].tolist(), labels['worse_label'].tolist()))
  assert set(zip(clean.tolist(), noisy.tolist())) <= pairs
  assert set(zip(saved['val_clean'].tolist(), saved['val_noisy'].tolist())) <= pairs
  assert np.mean(np.r_[noisy, saved['val_noisy']] != np.r_[clean, saved['val_clean']]) == 0.4
  records = helpers.read_metrics(workdir, 'train')
  assert 'noisy_target_argmax_clean' in records[-1]  # the recovery statistics have the clean labels
  assert np.array_equal(data.load(config).test_labels, test_labels[_by_record(data_dir, 'test')])
  # Resumed with another field: refused, the workdir's labels kept.
  before = os.path.getmtime(os.path.join(workdir, 'noisy_labels.npz'))
  with pytest.raises(UserError, match=r'config\.json was written for another run \(label_noise'
                     r'\.human_label: saved "worse_label", now "aggre_label"\)'):
    train.train_and_evaluate(_config(data_dir, 'aggre_label', **{'data.val_size': 10}), workdir)
  assert os.path.getmtime(os.path.join(workdir, 'noisy_labels.npz')) == before


@pytest.mark.parametrize('overrides, match', [
    ({'label_noise.human_label': 'noise_label'},
     r"config\.label_noise\.human_label: cifar10_n has no label feature 'noise_label' over its "
     r"10 classes \(it has \['aggre_label', 'random_label1', 'random_label2', 'random_label3', "
     r"'worse_label'\]"),
    ({'label_noise.human_label': None},
     r"config\.label_noise\.kind = 'human' needs config\.label_noise\.human_label"),
    ({'label_noise.rate': 0.2}, r"config\.label_noise\.rate: kind 'human' takes the noise from"),
    ({'data.source': 'synthetic'},
     r"config\.label_noise\.kind = 'human' reads .* not from source 'synthetic'"),
    ({'label_noise.kind': 'symmetric', 'label_noise.rate': 0.2},
     r"config\.label_noise\.human_label acts only with kind 'human', got kind 'symmetric'"),
])
def test_bad_crowd_label_settings_are_one_line_errors(cifar10_n, tmp_path, overrides, match):
  config = _config(cifar10_n[0], 'aggre_label', **overrides)
  with pytest.raises(UserError, match=match) as info:
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert '\n' not in str(info.value)
  assert not (tmp_path / 'run').exists()
