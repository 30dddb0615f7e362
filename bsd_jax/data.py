"""Data sources -> in-memory uint8 arrays: tfds by name, an image folder, or synthetic images.

CIFAR-size datasets fit in host and device memory; the example id of a training sample is its
row number, dense 0..N-1, fixed before any shuffling. A source first gives every label and the
image shape, and reads images only afterwards: the class-balanced subset is chosen from the
labels, and a process of a multi-process job then reads only the rows its devices hold
(`load(config, rows=sharding.process_rows)`). Datasets too big for memory (ImageNet) are
streamed instead: source 'tfds_stream' (bsd_jax/stream_data.py) returns the labels and
random-access records. Everything here is checked before training starts and raises `UserError`
naming the config key or path at fault.
"""
import dataclasses
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from bsd_jax import distributed, stream_data
from bsd_jax.errors import UserError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')


@dataclasses.dataclass
class Dataset:
  """Every label of both splits, and the images of the rows this process read."""
  name: str                 # identity recorded in checkpoints
  train_images: np.ndarray  # uint8 [rows read, H, W, C]: sample ids train_ids
  train_labels: np.ndarray  # int32 [N], every sample
  test_images: np.ndarray
  test_labels: np.ndarray
  num_classes: int
  class_names: tuple = ()                 # folder names (folder source), for superclass CSVs
  train_coarse_labels: np.ndarray = None  # int32 [N] superclasses where the source has them
  train_ids: np.ndarray = None            # sample ids of train_images' rows; None: all, in order
  test_ids: np.ndarray = None
  streamed = False                        # not a field: the split is on the devices

  @property
  def num_train(self):
    return int(self.train_labels.shape[0])

  @property
  def image_shape(self):
    return self.train_images.shape[1:]

  def channel_stats(self):
    """Per-channel mean and std of all training images on the [0, 1] scale (std >= 1/255, so
    that a constant channel normalises to 0 instead of NaN). Loaded by rows, the processes' pixel
    counts are summed (a collective) and every process gets the same exact statistics."""
    counts = pixel_histogram(self.train_images)
    if self.train_ids is not None:
      counts = distributed.sum_over_processes(counts)
    return channel_stats_from_histogram(counts)


def pixel_histogram(images, chunk=1 << 22) -> np.ndarray:
  """int64 [C, 256]: how many pixels of each channel take each uint8 value (counted by chunks
  of pixels: bincount copies its input to int64)."""
  flat = images.reshape(-1, images.shape[-1])
  counts = np.zeros((flat.shape[1], 256), np.int64)
  for start in range(0, flat.shape[0], chunk):
    part = flat[start:start + chunk]
    for c in range(flat.shape[1]):
      counts[c] += np.bincount(part[:, c], minlength=256)
  return counts


def channel_stats_from_histogram(counts):
  values = np.arange(256) / 255.0
  n = np.maximum(counts.sum(1), 1)
  mean = counts @ values / n
  var = (counts * (values[None, :] - mean[:, None])**2).sum(1) / n
  return mean.astype(np.float32), np.maximum(np.sqrt(var), 1 / 255).astype(np.float32)


@dataclasses.dataclass
class _Source:
  """A source before its images are read: labels, image shape and a reader of images by id."""
  name: str
  train_labels: np.ndarray
  test_labels: np.ndarray
  num_classes: int
  image_shape: tuple
  read: Callable  # (split 'train' | 'test', sorted sample ids) -> uint8 [len(ids), H, W, C]
  class_names: tuple = ()
  train_coarse_labels: np.ndarray = None

  @property
  def num_train(self):
    return int(self.train_labels.shape[0])

  def subset(self, keep, name):
    """The training samples `keep` (sorted ids), renumbered 0..len(keep)-1."""
    read = self.read

    def read_subset(split, ids):
      return read(split, keep[ids] if split == 'train' else ids)

    return dataclasses.replace(self, name=name, train_labels=self.train_labels[keep],
                               train_coarse_labels=None if self.train_coarse_labels is None
                               else self.train_coarse_labels[keep], read=read_subset)

  def images(self, rows=None) -> Dataset:
    """The Dataset with the images of rows(num) of each split (None: all)."""
    parts = {}
    for split, labels in (('train', self.train_labels), ('test', self.test_labels)):
      ids = None if rows is None else np.asarray(rows(labels.shape[0]), np.int64)
      wanted = np.arange(labels.shape[0]) if ids is None else ids
      if wanted.size:
        images = self.read(split, wanted)
      else:  # a process whose devices hold only padding rows
        images = np.zeros((0,) + tuple(self.image_shape), np.uint8)
      parts[split] = images, ids
    return Dataset(self.name, parts['train'][0], self.train_labels, parts['test'][0],
                   self.test_labels, self.num_classes, self.class_names,
                   self.train_coarse_labels, parts['train'][1], parts['test'][1])


def load(config, rows=None):
  """The dataset named by config.data, with the optional class-balanced train subset applied.

  Every label is read. `rows`: None reads every image; else rows(num) gives the sorted sample
  ids of a split of num samples to read (sharding.process_rows: this process's rows).
  """
  d = config.data
  loaders = {'synthetic': _synthetic, 'folder': _folder, 'tfds': _tfds,
             'tfds_stream': lambda d: stream_data.load(d, d.stream.image_size)}
  if d.source not in loaders:
    raise UserError(f'config.data.source: unknown source {d.source!r}; '
                    f'choose one of {sorted(loaders)}')
  ds = loaders[d.source](d)
  if d.train_subset_per_class:
    ds = _class_balanced_subset(ds, d.train_subset_per_class, d.subset_seed)
  return ds if d.source == 'tfds_stream' else ds.images(rows)


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

  train, test = split(s.num_train), split(s.num_test)  # generated whole: one seeded stream
  images = {'train': train[0], 'test': test[0]}
  return _Source(f'synthetic-{s.num_classes}-{s.num_train}-{s.seed}', train[1], test[1],
                 s.num_classes, shape, lambda split, ids: images[split][ids])


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


def _folder_reader(paths, image_shape):
  """read(split, ids): the images at paths[split][ids], all of image_shape (one decode per id)."""
  def read(split, ids):
    chosen = [paths[split][i] for i in ids]
    with ThreadPoolExecutor(max(4, os.cpu_count() or 1)) as pool:
      images = list(pool.map(_decode, chosen, chunksize=256))
    for path, im in zip(chosen, images):
      if im.shape != image_shape:
        raise UserError(f'config.data.root: images differ in size ({paths["train"][0]} is '
                        f'{image_shape}, {path} is {im.shape}); resize them to one size first')
    return np.stack(images)

  return read


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
  paths, labels = {}, {}
  for split, files in (('train', train_files), ('test', test_files)):
    paths[split] = [p for c in train_classes for p in files[c]]
    labels[split] = np.asarray([i for i, c in enumerate(train_classes) for _ in files[c]],
                               np.int32)
  image_shape = _decode(paths['train'][0]).shape
  return _Source(f'folder:{os.path.abspath(d.root)}', labels['train'], labels['test'],
                 len(train_classes), image_shape, _folder_reader(paths, image_shape),
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
  label_keys = [d.label_key] + (['coarse_label'] if 'coarse_label' in features and
                                d.label_key != 'coarse_label' else [])
  split_name = {'train': d.train_split, 'test': d.test_split}

  def columns(split, keys, decoders=None):
    """The features `keys` of `split` (a tfds split, sliced or not) in order, as numpy."""
    ds = builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
    ds = ds.map(lambda ex: tuple(ex[k] for k in keys))
    # Batched reads: as_dataset(batch_size=-1) is slower and breaks on some builders.
    parts = list(tfds.as_numpy(ds.batch(4096)))
    return [np.concatenate([p[i] for p in parts]) for i in range(len(keys))]

  def read(split, ids):
    """Images of sorted ids: one contiguous slice of the split read, the ids kept."""
    lo, hi = int(ids[0]), int(ids[-1]) + 1
    images, = columns(f'{split_name[split]}[{lo}:{hi}]', [d.image_key])
    return images.astype(np.uint8)[ids - lo]

  # Labels without decoding the images: they decide the subset and the rows before any read.
  skip = {d.image_key: tfds.decode.SkipDecoding()}
  train = [c.astype(np.int32) for c in columns(d.train_split, label_keys, skip)]
  test, = columns(d.test_split, [d.label_key], skip)
  image_shape = features[d.image_key].shape
  if None in image_shape:
    image_shape = read('train', np.zeros(1, np.int64)).shape[1:]
  return _Source(f'tfds:{d.name}', train[0], test.astype(np.int32),
                 features[d.label_key].num_classes, tuple(image_shape), read,
                 train_coarse_labels=train[1] if len(train) == 2 else None)


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
