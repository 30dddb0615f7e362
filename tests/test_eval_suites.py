"""The ood, adversarial and corruptions suites of the evaluate command, on a real smoke run."""
import json
import os
import re

import numpy as np
import pytest

from bsd_jax import data, evaluate, train
from bsd_jax.evaluation import ood_sets
from bsd_jax.errors import UserError
from tests import helpers

MNIST = os.path.join(helpers.REPO, '..', 'shared', 'data', 'mnist', 't10k-images-idx3-ubyte.gz')


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('run'))
  config = helpers.load_config('smoke.py')
  train.train_and_evaluate(config, workdir)
  return workdir, data.load(config)


def test_ood_against_itself_is_chance_and_noise_is_written(run, tmp_path):
  workdir, ds = run
  same = tmp_path / 'same.npy'
  np.save(same, ds.test_images)  # the test set as its own "OOD" set: identical score lists
  grey = tmp_path / 'grey.npy'
  np.save(grey, np.random.default_rng(0).integers(0, 256, (300, 28, 28), dtype=np.uint8))
  record = evaluate.evaluate(workdir, 'ood', sets=[f'npy:{same}', f'npy:{grey}'])
  with open(os.path.join(workdir, 'eval', 'ood.json')) as f:
    saved = json.load(f)
  assert saved == json.loads(json.dumps(record))
  chance = saved['sets'][f'npy:{same}']
  assert chance['auroc_msp'] == pytest.approx(0.5, abs=1e-12)
  assert chance['auroc_entropy'] == pytest.approx(0.5, abs=1e-12)
  assert 0.95 <= chance['fpr95_msp'] <= 0.96  # the same threshold keeps ~95% of both
  noise = saved['sets'][f'npy:{grey}']
  assert noise['num_ood'] == 300 and 0.0 <= noise['auroc_msp'] <= 1.0


def test_adversarial_accuracy_falls_with_eps(run):
  workdir, _ = run
  record = evaluate.evaluate(workdir, 'adversarial', eps=[2.0, 16.0], steps=5, samples=256)
  with open(os.path.join(workdir, 'eval', 'adversarial.json')) as f:
    saved = json.load(f)
  assert saved['num_samples'] == 256 and saved['attack']['pgd_steps'] == 5
  r = record['results']
  assert r['clean']['accuracy'] > 0.2  # above chance (0.1): the model has something to lose
  assert r['pgd']['16']['accuracy'] <= r['pgd']['2']['accuracy'] <= r['clean']['accuracy']
  assert r['fgsm']['16']['accuracy'] < r['clean']['accuracy']
  assert r['pgd']['16']['accuracy'] < 0.5 * r['clean']['accuracy']


def test_mnist_reader_on_the_real_file():
  if not os.path.exists(MNIST):
    pytest.skip(f'{MNIST} is not there (the workspace shared data)')
  images = ood_sets.load(f'mnist:{MNIST}', (32, 32, 3), max_samples=50)
  assert images.shape == (50, 32, 32, 3) and images.dtype == np.uint8
  assert np.array_equal(images[..., 0], images[..., 2])  # grey repeated to RGB
  assert images.max() > 200 and np.median(images) < 50  # white digits on black


@pytest.mark.parametrize('args, match', [
    (['--suite=ood'], r'--suite ood needs --ood'),
    (['--suite=ood', '--ood=svhn'], r"--ood 'svhn': give KIND:PATH"),
    (['--suite=ood', '--ood=folder:/no/such/dir'], r'/no/such/dir does not exist'),
    (['--suite=adversarial', '--adv_eps=0'], r'--adv_eps must be positive'),
])
def test_bad_suite_arguments_are_one_line_errors(run, args, match):
  workdir, _ = run
  before = sorted(os.listdir(workdir))
  proc = helpers.run_cli([f'--workdir={workdir}'] + args, module='bsd_jax.evaluate')
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 2, out
  errors = [line for line in out.splitlines() if 'error' in line]
  assert len(errors) == 1 and re.search(match, errors[0]), out
  assert sorted(os.listdir(workdir)) == before


def _tree(path):
  return sorted((d, sorted(files)) for d, _, files in os.walk(path))


def _cifar_c_folder(path, labels, blocks):
  """An official-layout CIFAR-C folder: <name>.npy = severities 1..5 stacked, labels.npy."""
  os.makedirs(path, exist_ok=True)
  np.save(os.path.join(path, 'labels.npy'), np.tile(labels, 5).astype(np.int64))
  for name, per_severity in blocks.items():
    np.save(os.path.join(path, f'{name}.npy'), np.concatenate(per_severity))
  return str(path)


def test_corruptions_suite_on_npy_fixtures(run, tmp_path):
  workdir, ds = run
  images, labels = ds.test_images, ds.test_labels
  rng = np.random.default_rng(0)
  noisy = [np.clip(images + rng.normal(0, sigma, images.shape), 0, 255).astype(np.uint8)
           for sigma in (0, 20, 40, 80, 400)]
  folder = _cifar_c_folder(tmp_path / 'c', labels,
                           {'gaussian_noise': noisy, 'unchanged': [images] * 5})
  clean = evaluate.evaluate(workdir)['metrics']  # the test suite, on its own path
  record = evaluate.evaluate(workdir, 'corruptions', source=f'npy:{folder}',
                             names=['gaussian_noise', 'unchanged'])
  with open(os.path.join(workdir, 'eval', 'corruptions.json')) as f:
    assert json.load(f) == json.loads(json.dumps(record))
  r = record['results']
  assert record['num_samples_per_severity'] == len(labels)
  # Uncorrupted blocks score as the test set does: severities and labels are aligned.
  for severity in '12345':
    assert r['unchanged'][severity]['accuracy'] == pytest.approx(clean['accuracy'], abs=1e-6)
    assert r['unchanged'][severity]['ece'] == pytest.approx(clean['ece'], abs=1e-5)
  assert r['gaussian_noise']['1']['accuracy'] == pytest.approx(clean['accuracy'], abs=1e-6)
  assert clean['accuracy'] > 0.5  # the model has something to lose to noise
  assert r['gaussian_noise']['5']['accuracy'] < 0.5 * clean['accuracy']
  assert r['gaussian_noise']['5']['nll'] > r['gaussian_noise']['1']['nll']
  cells = [v['accuracy'] for name in r for v in r[name].values()]
  assert record['mean']['accuracy'] == pytest.approx(np.mean(cells), abs=1e-9)
  assert record['mean_by_severity']['5']['accuracy'] == pytest.approx(
      (r['gaussian_noise']['5']['accuracy'] + r['unchanged']['5']['accuracy']) / 2, abs=1e-9)

  part = evaluate.evaluate(workdir, 'corruptions', source=f'npy:{folder}',
                           names=['gaussian_noise'], severities=[5], samples=40)
  assert part['num_samples_per_severity'] == 40 and list(part['results']['gaussian_noise']) == ['5']


def test_corruptions_suite_on_tfds_equals_npy(run, tmp_path):
  """The tfds source, prepared by tfds's own cifar10_corrupted builder from the same fixtures
  (only the 2.9 GB download is replaced by the fixture folder), scores as the npy source does."""
  from unittest import mock

  import tensorflow_datasets as tfds
  workdir, ds = run
  images, labels = ds.test_images, ds.test_labels
  rng = np.random.default_rng(1)
  noisy = [np.clip(images + rng.normal(0, sigma, images.shape), 0, 255).astype(np.uint8)
           for sigma in (0, 30, 60, 120, 240)]
  folder = _cifar_c_folder(tmp_path / 'download' / 'CIFAR-10-C', labels,
                           {'gaussian_noise': noisy, 'glass_blur': noisy[::-1]})
  data_dir = str(tmp_path / 'tfds')
  names, severities = ['gaussian_noise', 'glass_blur'], [1, 5]
  with mock.patch.object(tfds.download.DownloadManager, 'download_and_extract',
                         lambda self, url: str(tmp_path / 'download')):
    for config in ('gaussian_noise', 'frosted_glass_blur'):
      for severity in severities:
        tfds.builder(f'cifar10_corrupted/{config}_{severity}',
                     data_dir=data_dir).download_and_prepare()
  from_npy = evaluate.evaluate(workdir, 'corruptions', source=f'npy:{folder}', names=names,
                               severities=severities)
  from_tfds = evaluate.evaluate(workdir, 'corruptions', source=f'tfds:{data_dir}', names=names,
                                severities=severities)
  assert from_tfds['num_samples_per_severity'] == len(labels)
  for name in names:
    for severity in '15':
      for metric, value in from_npy['results'][name][severity].items():
        assert from_tfds['results'][name][severity][metric] == pytest.approx(value, abs=1e-5)
  # glass_blur is tfds's frosted_glass_blur: its severity 1 is gaussian_noise's severity 5.
  assert from_tfds['results']['glass_blur']['1']['accuracy'] == pytest.approx(
      from_tfds['results']['gaussian_noise']['5']['accuracy'], abs=1e-6)
  assert (from_tfds['results']['gaussian_noise']['1']['accuracy'] >
          from_tfds['results']['gaussian_noise']['5']['accuracy'])


@pytest.mark.parametrize('case, match', [
    ('no_folder', r'/no/such/dir is not a directory'),
    ('no_labels', r'labels\.npy is missing'),
    ('no_file', r'fog\.npy is missing'),
    ('wrong_size', r'fog\.npy: expected uint8 \(2000, 32, 32, 3\)'),
    ('cifar100_labels', r'labels 0\.\.99 do not fit the model\'s 10 classes'),
    ('severity', r'--corruption_severities: \[6\]'),
])
def test_bad_corruption_sets_are_named_before_anything_is_written(run, tmp_path, case, match):
  workdir, _ = run
  labels = np.arange(400) % (100 if case == 'cifar100_labels' else 10)
  size = 28 if case == 'wrong_size' else 32
  folder = _cifar_c_folder(tmp_path / 'c', labels,
                           {} if case == 'no_file' else
                           {'fog': [np.zeros((400, size, size, 3), np.uint8)] * 5})
  if case == 'no_labels':
    os.remove(os.path.join(folder, 'labels.npy'))
  spec = 'npy:/no/such/dir' if case == 'no_folder' else f'npy:{folder}'
  before = _tree(workdir)
  with pytest.raises(UserError, match=match):
    evaluate.evaluate(workdir, 'corruptions', source=spec, names=['fog'],
                      severities=[6] if case == 'severity' else [1, 2])
  assert _tree(workdir) == before


@pytest.mark.parametrize('args, match', [
    ([], r'--suite corruptions needs --corruptions tfds'),
    (['--corruptions=svhn'],
     r"--corruptions 'svhn': give tfds, tfds:DATA_DIR, npy:DIR, imagenet_c or imagenet_c:DATA_DIR"),
    (['--corruptions=tfds:{tmp}', '--corruption_names=fog,snow', '--corruption_severities=3'],
     r'cifar10_corrupted/fog_3 \(and 1 more\) is not prepared in .*zenodo'),
])
def test_corruptions_cli_errors_are_one_line(run, tmp_path, args, match):
  workdir, _ = run
  before = sorted(os.listdir(workdir))
  proc = helpers.run_cli([f'--workdir={workdir}', '--suite=corruptions'] +
                         [a.format(tmp=tmp_path) for a in args], module='bsd_jax.evaluate')
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 2, out
  errors = [line for line in out.splitlines() if 'error' in line]
  assert len(errors) == 1 and re.search(match, errors[0]), out
  assert sorted(os.listdir(workdir)) == before
