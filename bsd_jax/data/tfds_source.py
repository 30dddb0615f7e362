"""config.data.source = 'tfds': a tfds dataset by name, read whole into memory (CIFAR-size).

Prepared in config.data.tfds_data_dir (python -m bsd_jax.prepare), or downloaded and prepared
(in array_record files, with TensorFlow) on first use where that can work (internet, or the
archives in config.data.manual_dir); otherwise a one-line error in about a second saying how to
provide the data. Labels are read first without decoding the images; images are read as one
contiguous slice of the rows asked for."""
import logging
import socket

import numpy as np

from bsd_jax.data import tfds_common
from bsd_jax.data.dataset import Source
from bsd_jax.errors import UserError


# tfds downloads from its GCS mirror first, then from the dataset's own site (CIFAR: Toronto).
_DOWNLOAD_HOSTS = ('storage.googleapis.com', 'www.cs.toronto.edu')


def network_reachable(timeout=5.0) -> bool:
  """True when a download host answers; fails in milliseconds where DNS is unavailable."""
  for host in _DOWNLOAD_HOSTS:
    try:
      socket.create_connection((host, 443), timeout=timeout).close()
      return True
    except OSError:
      pass
  return False


def load(d, human_label=None) -> Source:
  """A tfds dataset by name; prepared in data.tfds_data_dir, or downloaded when that can work.
  `human_label`: a second label feature of the training split to read as train_human_labels
  (CIFAR-N's crowd labels, config.label_noise.human_label)."""
  import tensorflow_datasets as tfds  # heavy import: only when this source is used
  builder = tfds_common.open_builder(d.name, d.tfds_data_dir)
  if not builder.is_prepared():
    how = (f"tfds dataset {d.name!r} is not prepared in {builder.data_dir_root} and cannot be "
           f"downloaded here; prepare it where there is internet (python -m bsd_jax.prepare "
           f"{d.name} --data_dir DIR) and set config.data.tfds_data_dir=DIR, put the downloaded "
           f"archives in config.data.manual_dir, or use config.data.source='folder' with "
           f"config.data.root")
    if not d.download:
      raise UserError(how + ' (config.data.download is False)')
    if d.manual_dir is None and not network_reachable():
      raise UserError(how)
    tfds_common.require_tensorflow(f'tfds dataset {d.name!r} is not prepared in '
                                   f'{builder.data_dir_root}; preparing it')
    logging.info('Preparing tfds dataset %s in %s (array_record)', d.name, builder.data_dir_root)
    builder = tfds_common.open_builder(d.name, d.tfds_data_dir, file_format='array_record')
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=d.manual_dir))
  tfds_common.check_splits_and_features(builder, d, slices=False)
  features = builder.info.features
  if human_label is not None:
    check_human_label(features, d, human_label)

  # CIFAR-100's superclasses, for asymmetric label noise.
  label_keys = [d.label_key] + (['coarse_label'] if 'coarse_label' in features and
                                d.label_key != 'coarse_label' else [])
  split_name = {'train': d.train_split, 'test': d.test_split}  # 'val' is held out of 'train'

  def columns(split, keys, decoders=None):
    return tfds_common.read_columns(builder, split, keys, decoders)

  def read(split, ids):
    """Images of sorted ids: one contiguous slice of the split read, the ids kept."""
    lo, hi = int(ids[0]), int(ids[-1]) + 1
    images, = columns(f'{split_name[split]}[{lo}:{hi}]', [d.image_key])
    return images.astype(np.uint8)[ids - lo]

  # Labels without decoding the images: they decide the subset and the rows before any read.
  skip = {d.image_key: tfds.decode.SkipDecoding()}
  train = [c.astype(np.int32) for c in columns(
      d.train_split, label_keys + ([human_label] if human_label else []), skip)]
  human = train.pop() if human_label else None
  test, = columns(d.test_split, [d.label_key], skip)
  image_shape = features[d.image_key].shape
  if None in image_shape:
    image_shape = read('train', np.zeros(1, np.int64)).shape[1:]
  return Source(f'tfds:{d.name}', train[0], test.astype(np.int32),
                features[d.label_key].num_classes, tuple(image_shape), read,
                class_names=tfds_common.class_names(features[d.label_key]),
                train_coarse_labels=train[1] if len(train) == 2 else None,
                train_human_labels=human)


def check_human_label(features, d, key):
  """UserError naming config.label_noise.human_label when the dataset has no such class-label
  feature over the label's classes."""
  def is_label(name):
    return (getattr(features[name], 'num_classes', None) == features[d.label_key].num_classes
            and name != d.label_key)

  found = [n for n in sorted(features.keys()) if is_label(n)]
  if key not in features or not is_label(key):
    raise UserError(f'config.label_noise.human_label: {d.name} has no label feature {key!r} '
                    f'over its {features[d.label_key].num_classes} classes (it has '
                    f'{found or "none"}; CIFAR-N: tfds cifar10_n, cifar100_n)')
