"""Data sources: image folder, class-balanced subsets, synthetic data, tfds (real, prepared)."""
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from bsd_jax import data, train
from bsd_jax.data import order, tfds_source
from bsd_jax.errors import UserError
from tests import helpers


def _folder_config(root):
  config = helpers.load_config('smoke.py')
  config.data.source, config.data.root = 'folder', str(root)
  return config


def _make_folder(root, classes, per_class, rng, ext='png'):
  images = {}
  for split in ('train', 'test'):
    for c in classes:
      os.makedirs(root / split / c)
      for i in range(per_class):
        img = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / split / c / f'{i:03d}.{ext}')
        images[(split, c, i)] = img
  return images


def test_image_folder_reads_pixels_and_orders_classes_by_name(tmp_path):
  rng = np.random.default_rng(0)
  images = _make_folder(tmp_path, ['zebra', 'apple', 'mango'], 3, rng)
  ds = data.load(_folder_config(tmp_path))
  assert ds.num_classes == 3 and ds.num_train == 9
  np.testing.assert_array_equal(ds.train_labels, [0, 0, 0, 1, 1, 1, 2, 2, 2])
  # sorted names: apple, mango, zebra; PNG is lossless, so pixels are exact.
  np.testing.assert_array_equal(ds.train_images[0], images[('train', 'apple', 0)])
  np.testing.assert_array_equal(ds.test_images[8], images[('test', 'zebra', 2)])


def test_image_folder_accepts_jpeg(tmp_path):
  _make_folder(tmp_path, ['a', 'b'], 2, np.random.default_rng(1), ext='jpg')
  ds = data.load(_folder_config(tmp_path))
  assert ds.train_images.shape == (4, 6, 6, 3) and ds.train_images.dtype == np.uint8


def test_image_folder_with_mixed_sizes_names_the_file(tmp_path):
  _make_folder(tmp_path, ['a', 'b'], 2, np.random.default_rng(2))
  Image.fromarray(np.zeros((7, 7, 3), np.uint8)).save(tmp_path / 'train' / 'b' / 'odd.png')
  with pytest.raises(UserError, match=r'differ in size .*odd\.png'):
    data.load(_folder_config(tmp_path))


def _second_half(num):
  return np.arange(num // 2, num)


def test_image_folder_decodes_only_the_rows_asked_for(tmp_path):
  """A multi-process job's process reads only its rows (and the first file, for the image
  shape): an unreadable file elsewhere is never opened (the whole-split read names it)."""
  images = _make_folder(tmp_path, ['a', 'b'], 3, np.random.default_rng(3))
  (tmp_path / 'train' / 'a' / '001.png').write_bytes(b'not a png')  # sample 1
  part = data.load(_folder_config(tmp_path), rows=_second_half)
  np.testing.assert_array_equal(part.train_ids, [3, 4, 5])
  np.testing.assert_array_equal(part.train_images[0], images[('train', 'b', 0)])
  np.testing.assert_array_equal(part.train_labels, [0, 0, 0, 1, 1, 1])  # every label
  np.testing.assert_array_equal(part.test_images[-1], images[('test', 'b', 2)])
  with pytest.raises(UserError, match=r'cannot read image .*001\.png'):
    data.load(_folder_config(tmp_path))


def test_rows_of_a_subset_are_the_subset_rows_of_the_whole_read():
  config = helpers.load_config('smoke.py')
  config.data.train_subset_per_class = 20
  whole, part = data.load(config), data.load(config, rows=_second_half)
  np.testing.assert_array_equal(part.train_labels, whole.train_labels)
  np.testing.assert_array_equal(part.train_ids, np.arange(100, 200))
  np.testing.assert_array_equal(part.train_images, whole.train_images[100:])
  np.testing.assert_array_equal(part.test_images, whole.test_images[256:])


def test_channel_stats_equal_numpy_on_the_whole_training_set():
  ds = data.load(helpers.load_config('smoke.py'))
  x = ds.train_images.reshape(-1, 3).astype(np.float64) / 255
  mean, std = ds.channel_stats()
  np.testing.assert_allclose(mean, x.mean(0), rtol=1e-6)
  np.testing.assert_allclose(std, x.std(0), rtol=1e-6)


def test_class_balanced_subset_is_balanced_seeded_and_in_order():
  config = helpers.load_config('smoke.py')
  config.data.train_subset_per_class = 20
  a, b = data.load(config), data.load(config)
  assert np.bincount(a.train_labels, minlength=10).tolist() == [20] * 10
  np.testing.assert_array_equal(a.train_images, b.train_images)
  config.data.subset_seed = 1
  assert not np.array_equal(data.load(config).train_images, a.train_images)


def test_synthetic_data_depends_on_its_seed_only():
  config = helpers.load_config('smoke.py')
  a, b = data.load(config), data.load(config)
  np.testing.assert_array_equal(a.train_images, b.train_images)
  config.data.synthetic.seed = 3
  assert not np.array_equal(data.load(config).train_labels, a.train_labels)


def test_epoch_batches_visit_every_sample_once_with_padding_masked():
  index, mask = order.epoch_batches(seed=0, epoch=3, num_train=50, batch_size=16)
  assert index.shape == mask.shape == (4, 16)
  visited = index[mask > 0]
  np.testing.assert_array_equal(np.sort(visited), np.arange(50))
  assert mask.sum() == 50 and mask[-1, 2:].sum() == 0
  other, _ = order.epoch_batches(seed=0, epoch=4, num_train=50, batch_size=16)
  assert not np.array_equal(index, other)


@pytest.fixture(scope='module')
def dummy_mnist_dir(tmp_path_factory):
  """A real tfds dataset prepared offline by tfds's own test builder (20 + 20 images)."""
  from tensorflow_datasets import testing as tfds_testing
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  tfds_testing.DummyMnist(data_dir=data_dir).download_and_prepare()
  return data_dir


def test_tfds_source_trains_on_a_prepared_dataset(dummy_mnist_dir, tmp_path):
  config = helpers.load_config('smoke.py')
  config.data.source, config.data.name = 'tfds', 'dummy_mnist'
  config.data.tfds_data_dir = dummy_mnist_dir
  ds = data.load(config)
  assert ds.train_images.shape == (20, 28, 28, 1) and ds.num_classes == 10
  part = data.load(config, rows=_second_half)  # one slice of the split read, the same images
  np.testing.assert_array_equal(part.train_images, ds.train_images[10:])
  np.testing.assert_array_equal(part.test_images, ds.test_images[10:])
  np.testing.assert_array_equal(part.train_labels, ds.train_labels)
  config.num_epochs, config.batch_size, config.eval_batch_size = 1, 8, 8
  result = train.train_and_evaluate(config, str(tmp_path))
  assert 0.0 <= result['accuracy'] <= 1.0
  assert (tmp_path / 'metrics.jsonl').exists()


@pytest.fixture(scope='module')
def dummy_mnist_array_record_dir(tmp_path_factory):
  """The same dataset in array_record files, as bsd_jax.prepare writes them."""
  from tensorflow_datasets import testing as tfds_testing
  data_dir = str(tmp_path_factory.mktemp('tfds_ar'))
  tfds_testing.DummyMnist(data_dir=data_dir, file_format='array_record').download_and_prepare()
  return data_dir


_WITHOUT_TENSORFLOW = """
import importlib.util
import sys

# As if TensorFlow were not installed: importing it raises ModuleNotFoundError, and
# importlib.util.find_spec (how tfds and etils ask) answers None.
def tf(name):
  return name == 'tensorflow' or name.startswith('tensorflow.')


class NoTensorFlow:
  def find_spec(self, name, path=None, target=None):
    if tf(name):
      raise ModuleNotFoundError(f'No module named {name!r}')


find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, package=None: None if tf(name) else find_spec(name,
                                                                                      package)
sys.meta_path.insert(0, NoTensorFlow())
import numpy as np
from bsd_jax import data
from tests import helpers
config = helpers.load_config('smoke.py')
config.data.source, config.data.name = 'tfds', 'dummy_mnist'
config.data.tfds_data_dir = sys.argv[1]
ds = data.load(config)
np.savez(sys.argv[2], train_images=ds.train_images, train_labels=ds.train_labels,
         test_images=ds.test_images, test_labels=ds.test_labels)
assert 'tensorflow' not in sys.modules
"""


def test_array_record_files_read_the_same_without_tensorflow(
    dummy_mnist_dir, dummy_mnist_array_record_dir, tmp_path):
  config = helpers.load_config('smoke.py')
  config.data.source, config.data.name = 'tfds', 'dummy_mnist'
  config.data.tfds_data_dir = dummy_mnist_dir
  tfrecord = data.load(config)  # through tf.data
  out = tmp_path / 'read.npz'
  proc = subprocess.run([sys.executable, '-c', _WITHOUT_TENSORFLOW, dummy_mnist_array_record_dir,
                         str(out)], cwd=helpers.REPO, capture_output=True, text=True,
                        timeout=300, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stderr
  with np.load(out) as got:
    for key in ('train_images', 'train_labels', 'test_images', 'test_labels'):
      np.testing.assert_array_equal(got[key], getattr(tfrecord, key), err_msg=key)
  config.data.tfds_data_dir = dummy_mnist_array_record_dir  # a slice of the split by position
  part = data.load(config, rows=_second_half)
  np.testing.assert_array_equal(part.train_images, tfrecord.train_images[10:])


@pytest.mark.parametrize('key, value', [('train_split', 'train[:50%]'), ('test_split', 'val')])
def test_tfds_source_names_a_split_it_cannot_read(dummy_mnist_dir, key, value):
  """The in-memory source reads its own slices of whole splits: a sliced split is refused."""
  config = helpers.load_config('smoke.py')
  config.data.source, config.data.name = 'tfds', 'dummy_mnist'
  config.data.tfds_data_dir = dummy_mnist_dir
  config.data[key] = value
  with pytest.raises(UserError, match=rf"config\.data\.{key}: dummy_mnist has no split "
                     rf"'{re.escape(value)}' \(it has \['test', 'train'\]\)"):
    data.load(config)


def test_unprepared_tfds_dataset_without_download_fails_fast(tmp_path):
  config = helpers.load_config('smoke.py')
  config.data.source, config.data.name = 'tfds', 'cifar10'
  config.data.tfds_data_dir, config.data.download = str(tmp_path), False
  start = time.monotonic()
  with pytest.raises(UserError, match=r"not prepared .*manual_dir.*config\.data\.source='folder'"):
    data.load(config)
  assert time.monotonic() - start < 30


@pytest.mark.skipif(tfds_source.network_reachable(timeout=2.0),
                    reason='tfds could really download')
def test_unprepared_tfds_dataset_without_network_fails_fast(tmp_path):
  config = helpers.load_config('smoke.py')
  config.data.source, config.data.name = 'tfds', 'cifar10'
  config.data.tfds_data_dir = str(tmp_path)
  start = time.monotonic()
  with pytest.raises(UserError, match=r'cannot be downloaded here'):
    data.load(config)
  assert time.monotonic() - start < 30


def test_tfrecord_files_without_tensorflow_name_the_extra(dummy_mnist_dir, monkeypatch):
  import importlib.util
  find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, 'find_spec',
                      lambda name, *a: None if name == 'tensorflow' else find_spec(name, *a))
  config = helpers.load_config('smoke.py')
  config.data.source, config.data.name = 'tfds', 'dummy_mnist'
  config.data.tfds_data_dir = dummy_mnist_dir
  with pytest.raises(UserError, match=r'holds tfrecord files; reading them needs TensorFlow: pip '
                     r'install -e "\.\[prepare\]"') as info:
    data.load(config)
  assert '\n' not in str(info.value)
