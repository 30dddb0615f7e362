"""The streamed source (config.data.source = 'tfds_stream'): a prepared tfds dataset read record
by record with tfds.data_source, for datasets too big for memory (ImageNet).

Nothing is downloaded or prepared here (ImageNet is downloaded by hand and prepared for hours):
a dataset that is not prepared, or not in array_record files (random access needs them), is a
one-line error saying how to prepare it, raised in about a second. Only the labels are held in
memory: both splits' labels are read once (one pass over the records without decoding the
images) and kept next to the prepared data as bsd_jax_labels.<split>.npy; the images stay on
disk and are read per step (bsd_jax/data/stream_batches.py). The sample id of a training record
is its position in the split, dense 0..N-1, or its position in the class-balanced subset."""
import dataclasses
import logging
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from bsd_jax import distributed
from bsd_jax.data import tfds_common
from bsd_jax.errors import UserError

# torchvision's ImageNet statistics, on the [0, 1] scale: streamed data is never all in memory.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
_CHUNK = 4096  # records per read in the label pass


@dataclasses.dataclass
class StreamDataset:
  name: str                     # identity recorded in checkpoints
  train_labels: np.ndarray      # int32 [N], indexed by sample id
  test_labels: np.ndarray       # int32 [N_test]
  num_classes: int
  image_size: int               # images reach the devices as uint8 [size, size, 3]
  train_source: Any             # random-access records of the splits (tfds.data_source)
  test_source: Any
  image_key: str
  train_keys: np.ndarray = None  # record position of each sample id (a subset); None: the id
  class_names: tuple = ()
  train_coarse_labels: np.ndarray = None
  val_labels: np.ndarray = None  # the validation split (config.data.val_size), or None
  val_keys: np.ndarray = None    # its record positions in the train split
  streamed = True               # not a field: tells the trainer to stream (bsd_jax/feeds.py)

  @property
  def num_train(self):
    return int(self.train_labels.shape[0])

  @property
  def image_shape(self):
    return (self.image_size, self.image_size, 3)

  def channel_stats(self):
    return np.asarray(MEAN, np.float32), np.asarray(STD, np.float32)

  def subset(self, keep, name):
    """The training samples `keep` (sorted ids), renumbered 0..len(keep)-1."""
    keys = keep if self.train_keys is None else self.train_keys[keep]
    return dataclasses.replace(self, name=name, train_labels=self.train_labels[keep],
                               train_keys=keys)

  def hold_out(self, val, name):
    """The training samples `val` (sorted ids) as the validation split, the rest (renumbered)
    as the training split."""
    keep = np.setdiff1d(np.arange(self.num_train), val)
    keys = np.arange(self.num_train) if self.train_keys is None else self.train_keys
    return dataclasses.replace(self, name=name, train_labels=self.train_labels[keep],
                               train_keys=keys[keep], val_labels=self.train_labels[val],
                               val_keys=keys[val],
                               train_coarse_labels=None if self.train_coarse_labels is None
                               else self.train_coarse_labels[keep])


def _how_to_prepare(builder, d):
  name = d.name
  manual = tfds_common.manual_instructions(builder)
  if manual:
    steps = (f"it is downloaded by hand ({manual}): put them in a "
             f"directory M, run `python -m bsd_jax.prepare {name} --manual_dir M --data_dir D`")
  else:
    steps = (f'run `python -m bsd_jax.prepare {name} --data_dir D` where there is internet')
  return (f"config.data.name: tfds dataset {name!r} is not prepared in {builder.data_dir_root}; "
          f"{steps}, and set config.data.tfds_data_dir=D")


def load(d, image_size: int) -> StreamDataset:
  """The prepared dataset named by config.data (`d`), checked, with the labels of both splits."""
  import tensorflow_datasets as tfds
  builder = tfds_common.open_builder(d.name, d.tfds_data_dir)
  if not builder.is_prepared():
    raise UserError(_how_to_prepare(builder, d))
  if not tfds_common.random_access(builder):
    fmt = builder.info.file_format
    raise UserError(
        f"config.data.source='tfds_stream' reads records by position, but {builder.data_dir} "
        f"holds {getattr(fmt, 'value', fmt)} files; convert them with `tfds convert_format "
        f"--dataset_version_dir={builder.data_dir} --out_file_format=array_record`")
  tfds_common.check_splits_and_features(builder, d, slices=True)
  features = builder.info.features
  if not hasattr(features[d.label_key], 'num_classes'):
    raise UserError(f'config.data.label_key: feature {d.label_key!r} of {d.name} is not a '
                    'class label')
  decoders = {d.image_key: tfds.decode.SkipDecoding()}  # JPEG bytes: decoded in the workers
  train = builder.as_data_source(split=d.train_split, decoders=decoders)
  test = builder.as_data_source(split=d.test_split, decoders=decoders)
  cache = str(builder.data_dir)
  return StreamDataset(
      f'tfds:{d.name}' + (f'[{d.train_split}]' if d.train_split != 'train' else ''),
      _labels(train, d.label_key, cache, d.train_split),
      _labels(test, d.label_key, cache, d.test_split),
      int(features[d.label_key].num_classes), image_size, train, test, d.image_key,
      class_names=tfds_common.class_names(features[d.label_key]))


def _read_labels(source, label_key, chunks):
  def read(chunk):
    return [r[label_key] for r in source.__getitems__(list(range(*chunk)))]

  with ThreadPoolExecutor(8) as pool:
    return [np.asarray(v, np.int64) for v in pool.map(read, chunks)]


def _cached(path, n):
  try:
    labels = np.load(path)
  except (OSError, ValueError):
    return None
  return labels if labels.shape == (n,) else None


def _labels(source, label_key, cache_dir, split):
  """int32 labels of every record of a split, in record order: read once, then from the cache.

  In a multi-process job each process reads an equal share of the records and the shares are
  exchanged (every process takes part when any lacks the cache, so they cannot wait on each
  other); process 0 writes the cache where the data directory is writable."""
  import jax

  n = len(source)
  path = os.path.join(cache_dir, f"bsd_jax_labels.{re.sub(r'[^A-Za-z0-9_.-]', '_', split)}.npy")
  labels = _cached(path, n)
  if not distributed.any_process(labels is None):
    return labels
  start = time.perf_counter()
  if labels is None:
    chunks = [(i, min(i + _CHUNK, n)) for i in range(0, n, _CHUNK)]
    mine = chunks[jax.process_index()::jax.process_count()]
    labels = np.full(n, -1, np.int64)
    for (lo, hi), values in zip(mine, _read_labels(source, label_key, mine)):
      labels[lo:hi] = values
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    labels = np.max(multihost_utils.process_allgather(labels.astype(np.int64)), axis=0)
  labels = labels.astype(np.int32)
  logging.info('Read the labels of %d %s records in %.1f s', n, split, time.perf_counter() - start)
  if jax.process_index() == 0:
    try:
      tmp = f'{path}.tmp{os.getpid()}.npy'
      np.save(tmp, labels)
      os.replace(tmp, path)
    except OSError as e:
      logging.warning('Cannot cache the labels in %s (%s): they are read again at each start',
                      path, e)
  return labels
