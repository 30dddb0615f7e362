"""Data: `load(config)` gives the dataset that config.data names.

Sources (config.data.source), one module each, each `load(config.data) -> Source`:
  synthetic.py    random images around a template per class (no download)
  folder.py       an image folder of one image size held in memory (CIFAR-size)
  folder_stream.py  an image folder of any sizes and formats (photos), read per step like
                  'tfds_stream'; both folder sources list files with folder_files.py
  tiny_imagenet.py  the official tiny-imagenet-200 directory or zip (val/ is the test split)
  tfds_source.py  a tfds dataset read whole into memory (CIFAR-size); tfds_common.py is shared
  stream_source.py  'tfds_stream': a prepared tfds dataset read record by record (ImageNet);
                  its images reach the devices through stream_batches.py (grain)
and around them: dataset.py (the Dataset record), order.py (which samples each step reads),
augment.py (on-device crop and flip), mix.py (on-device CutMix and Mixup), host_augment.py
(the streamed ImageNet recipe), label_noise.py (config.label_noise), images.py (image files).

Adding a source: a module with `load(d) -> Source` (labels first, images by id on demand) and one
entry in SOURCES. Every error is raised before training starts, as a `UserError` naming the
config key or path at fault."""
import logging

import numpy as np

from bsd_jax.data import (folder, folder_stream, stream_source, synthetic, tfds_source,
                          tiny_imagenet)
from bsd_jax.data.dataset import Dataset, Source
from bsd_jax.errors import UserError

__all__ = ['Dataset', 'Source', 'SOURCES', 'STREAMED', 'load', 'class_balanced_subset',
           'validation_split']

SOURCES = {
    'synthetic': synthetic.load,
    'folder': folder.load,
    'folder_stream': folder_stream.load,
    'tiny_imagenet': tiny_imagenet.load,
    'tfds': tfds_source.load,
    'tfds_stream': lambda d: stream_source.load(d, d.stream.image_size),
}
STREAMED = ('tfds_stream', 'folder_stream')  # sources whose images are read per step


def load(config, rows=None):
  """The dataset named by config.data: the validation split held out of the training split
  first (config.data.val_size), then the optional class-balanced subset drawn from the rest.

  Every label is read. `rows`: None reads every image; else rows(num) gives the sorted sample
  ids of a split of num samples to read (sharding.process_rows: this process's rows). The
  streamed source returns its records instead of images (stream_source.StreamDataset)."""
  d = config.data
  if d.source not in SOURCES:
    raise UserError(f'config.data.source: unknown source {d.source!r}; '
                    f'choose one of {sorted(SOURCES)}')
  n = config.label_noise
  if n.kind == 'human':  # the crowd labels of CIFAR-N, read beside the clean ones
    ds = tfds_source.load(d, n.human_label)
  else:
    ds = SOURCES[d.source](d)
  if d.val_size:
    ds = validation_split(ds, d.val_size, d.val_seed)
  if d.train_subset_per_class:
    ds = class_balanced_subset(ds, d.train_subset_per_class, d.subset_seed)
  return ds if ds.streamed else ds.images(rows)


def class_balanced_subset(ds, per_class, seed):
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


def validation_split(ds, size, seed):
  """`size` training samples held out as the validation split, class-balanced: each class with
  training samples gives size // K of them (K: the number of such classes), and size % K of
  those classes, drawn with the seed, one more; within a class the samples are the first of a
  seeded permutation of the split."""
  if size >= ds.num_train:
    raise UserError(f'config.data.val_size = {size} leaves no training samples ({ds.name} has '
                    f'{ds.num_train})')
  rng = np.random.default_rng(seed)
  order = rng.permutation(ds.num_train)
  present = np.flatnonzero(np.bincount(ds.train_labels, minlength=ds.num_classes))
  share = dict.fromkeys(present.tolist(), size // len(present))
  for c in rng.permutation(present)[:size % len(present)]:
    share[int(c)] += 1
  held = []
  for c, n in share.items():
    members = order[ds.train_labels[order] == c]
    if len(members) <= n:
      raise UserError(f'config.data.val_size = {size}: class {c} has {len(members)} training '
                      f'samples, not more than its {n} validation samples')
    held.append(members[:n])
  val = np.sort(np.concatenate(held))
  return ds.hold_out(val, f'{ds.name}[val={size},seed={seed}]')
