"""The ood and adversarial suites of the evaluate command, on a real smoke run."""
import json
import os
import re

import numpy as np
import pytest

from bsd_jax import data, evaluate, ood_data, train
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
  record = evaluate.evaluate_ood(workdir, [f'npy:{same}', f'npy:{grey}'])
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
  record = evaluate.evaluate_adversarial(workdir, [2.0, 16.0], steps=5, num_samples=256)
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
  images = ood_data.load(f'mnist:{MNIST}', (32, 32, 3), max_samples=50)
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
