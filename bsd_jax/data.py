"""Data sources -> in-memory uint8 arrays: tfds by name, an image folder, or synthetic images.

CIFAR-size datasets fit in host and device memory, so a source returns whole splits; the
example id of a training sample is its row number, dense 0..N-1, fixed before any shuffling.
Datasets too big for that (ImageNet) are streamed instead: source 'tfds_stream'
(bsd_jax/stream_data.py) returns the labels and random-access records. Everything here is
checked before training starts and raises `UserError` naming the config key or path at fault.
"""
import dataclasses
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bsd_jax import stream_data
from bsd_jax.errors import UserError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')


@dataclasses.dataclass
class Dataset:
  name: str                 # identity recorded in checkpoints
  train_images: np.ndarray  # uint8 [N, H, W, C]
  train_labels: np.ndarray  # int32 [N]
  test_images: np.ndarray
  test_labels: np.ndarray
  num_classes: int
  class_names: tuple = ()                 # folder names (folder source), for superclass CSVs
  train_coarse_labels: np.ndarray = None  # int32 [N] superclasses where the source has them
  streamed = False                        # not a field: the whole split is on the devices

  @property
  def num_train(self):
    return int(self.train_labels.shape[0])

  @property
  def image_shape(self):
    return self.train_images.shape[1:]

  def subset(self, keep, name):
    """The training samples `keep` (sorted ids), renumbered 0..len(keep)-1."""
    return dataclasses.replace(self, name=name, train_images=self.train_images[keep],
                               train_labels=self.train_labels[keep],
                               train_coarse_labels=None if self.train_coarse_labels is None
                               else self.train_coarse_labels[keep])

  def channel_stats(self):
    """Per-channel mean and std of the training images on the [0, 1] scale (std >= 1/255, so
    that a constant channel normalises to 0 instead of NaN)."""
    x = self.train_images.reshape(-1, self.train_images.shape[-1]).astype(np.float64) / 255.0
    return x.mean(0).astype(np.float32), np.maximum(x.std(0), 1 / 255).astype(np.float32)


def load(config) -> Dataset:
  """The dataset named by config.data, with the optional class-balanced train subset applied."""
  d = config.data
  loaders = {'synthetic': _synthetic, 'folder': _folder, 'tfds': _tfds,
             'tfds_stream': lambda d: stream_data.load(d, d.stream.image_size)}
  if d.source not in loaders:
    raise UserError(f'config.data.source: unknown source {d.source!r}; '
                    f'choose one of {sorted(loaders)}')
  ds = loaders[d.source](d)
  if d.train_subset_per_class:
    ds = _class_balanced_subset(ds, d.train_subset_per_class, d.subset_seed)
  return ds


def _synthetic(d):
  """Random images around one random template per class (fixed seed): learnable, no download."""
  s = d.synthetic
  rng = np.random.default_rng(s.seed)
  shape = (s.image_size, s.image_size, 3)
  templates = rng.uniform(0, 255, (s.num_classes,) + shape)

  def split(n):
    labels = rng.integers(0, s.num_classes, n).astype(np.int32)
    noise = rng.uniform(0, 255, (n,) + shape)
    images = (0.5 * templates[labels] + 0.5 * noise).astype(np.uint8)
    return images, labels

  train = split(s.num_train)
  test = split(s.num_test)
  return Dataset(f'synthetic-{s.num_classes}-{s.num_train}-{s.seed}', *train, *test,
                 s.num_classes)


def _list_folder_split(root, split):
  path = os.path.join(root, split)
  if not os.path.isdir(path):
    raise UserError(f'config.data.root: {path} is missing (expected {split}/<class>/*.png|jpg)')
  classes = sorted(e.name for e in os.scandir(path) if e.is_dir())
  if not classes:
    raise UserError(f'config.data.root: {path} has no class folders')
  files = {}
  for c in classes:
    cdir = os.path.join(path, c)
    names = sorted(n for n in os.listdir(cdir) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
      raise UserError(f'config.data.root: class folder {cdir} holds no .png/.jpg images')
    files[c] = [os.path.join(cdir, n) for n in names]
  return classes, files


def _decode(path):
  from PIL import Image
  try:
    with Image.open(path) as im:
      return np.asarray(im.convert('RGB'))
  except OSError as e:
    raise UserError(f'config.data.root: cannot read image {path}: {e}') from None


def _read_split(classes, files):
  paths = [p for c in classes for p in files[c]]
  labels = np.asarray([i for i, c in enumerate(classes) for _ in files[c]], np.int32)
  with ThreadPoolExecutor(max(4, os.cpu_count() or 1)) as pool:
    images = list(pool.map(_decode, paths, chunksize=256))
  first = images[0].shape
  for path, im in zip(paths, images):
    if im.shape != first:
      raise UserError(f'config.data.root: images differ in size ({paths[0]} is {first}, {path} '
                      f'is {im.shape}); resize them to one size first')
  return np.stack(images), labels


def _folder(d):
  """<root>/{train,test}/<class>/*.{png,jpg}; class order = sorted folder names."""
  if not d.root:
    raise UserError("config.data.root must be set for config.data.source = 'folder'")
  if not os.path.isdir(d.root):
    raise UserError(f'config.data.root: {d.root} is not a directory')
  train_classes, train_files = _list_folder_split(d.root, 'train')
  test_classes, test_files = _list_folder_split(d.root, 'test')
  if train_classes != test_classes:
    only_train = sorted(set(train_classes) - set(test_classes))
    only_test = sorted(set(test_classes) - set(train_classes))
    raise UserError(f'config.data.root: class folders differ between {d.root}/train and /test '
                    f'(only in train: {only_train[:5]}, only in test: {only_test[:5]})')
  logging.info('Reading image folder %s (%d classes)', d.root, len(train_classes))
  train = _read_split(train_classes, train_files)
  test = _read_split(test_classes, test_files)
  return Dataset(f'folder:{os.path.abspath(d.root)}', *train, *test, len(train_classes),
                 class_names=tuple(train_classes))


# tfds downloads from its GCS mirror first, then from the dataset's own site (CIFAR: Toronto).
_DOWNLOAD_HOSTS = ('storage.googleapis.com', 'www.cs.toronto.edu')


def _network_reachable(timeout=5.0) -> bool:
  """True when a download host answers; fails in milliseconds where DNS is unavailable."""
  for host in _DOWNLOAD_HOSTS:
    try:
      socket.create_connection((host, 443), timeout=timeout).close()
      return True
    except OSError:
      pass
  return False


def _tfds(d):
  """A tfds dataset by name; prepared in data.tfds_data_dir, or downloaded when that can work."""
  import tensorflow_datasets as tfds  # heavy import: only when this source is used
  try:
    builder = tfds.builder(d.name, data_dir=d.tfds_data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise UserError(f'config.data.name: unknown tfds dataset {d.name!r}') from None
  if not builder.is_prepared():
    how = (f"tfds dataset {d.name!r} is not prepared in {builder.data_dir_root} and cannot be "
           f"downloaded here; build it where there is internet (tfds build {d.name} --data_dir "
           f"DIR) and set config.data.tfds_data_dir=DIR, put the downloaded archives in "
           f"config.data.manual_dir, or use config.data.source='folder' with config.data.root")
    if not d.download:
      raise UserError(how + ' (config.data.download is False)')
    if d.manual_dir is None and not _network_reachable():
      raise UserError(how)
    logging.info('Preparing tfds dataset %s in %s', d.name, builder.data_dir_root)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=d.manual_dir))
  splits = builder.info.splits
  for key in ('train_split', 'test_split'):
    if d[key] not in splits:
      raise UserError(f'config.data.{key}: {d.name} has no split {d[key]!r} '
                      f'(it has {sorted(splits)})')
  features = builder.info.features
  for key in ('image_key', 'label_key'):
    if d[key] not in features:
      raise UserError(f'config.data.{key}: {d.name} has no feature {d[key]!r} '
                      f'(it has {sorted(features.keys())})')

  # CIFAR-100's superclasses, for asymmetric label noise.
  keys = [d.image_key, d.label_key] + (['coarse_label'] if 'coarse_label' in features and
                                       d.label_key != 'coarse_label' else [])

  def arrays(split):
    ds = builder.as_dataset(split=split, shuffle_files=False)
    ds = ds.map(lambda ex: tuple(ex[k] for k in keys))
    # Batched reads: as_dataset(batch_size=-1) is slower and breaks on some builders.
    parts = list(tfds.as_numpy(ds.batch(4096)))
    return [np.concatenate([p[i] for p in parts]).astype(np.uint8 if i == 0 else np.int32)
            for i in range(len(keys))]

  num_classes = features[d.label_key].num_classes
  train, test = arrays(d.train_split), arrays(d.test_split)
  return Dataset(f'tfds:{d.name}', train[0], train[1], test[0], test[1], num_classes,
                 train_coarse_labels=train[2] if len(keys) == 3 else None)


def _class_balanced_subset(ds, per_class, seed):
  """The first `per_class` samples of each class in a seeded permutation, in original order."""
  rng = np.random.default_rng(seed)
  order = rng.permutation(ds.num_train)
  keep = []
  for k in range(ds.num_classes):
    members = order[ds.train_labels[order] == k]
    if len(members) < per_class:
      logging.warning('class %d has only %d training samples (< %d)', k, len(members), per_class)
    keep.append(members[:per_class])
  keep = np.sort(np.concatenate(keep))
  return ds.subset(keep, f'{ds.name}[{per_class}/class,seed={seed}]')
