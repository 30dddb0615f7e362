"""The in-memory dataset record (`Dataset`) and a source before its images are read (`Source`).

A source first gives every label and the image shape, and reads images only afterwards: the
validation split and the class-balanced subset are chosen from the labels, and a process of a
multi-process job then reads only the rows its devices hold
(`Source.images(rows=sharding.process_rows)`). The sample id of a training sample is its row number,
dense 0..N-1, fixed before any shuffling.

The validation split (config.data.val_size) is a third split held out of the training split: its
images are never trained on and have no rows in the per-sample table; its ids are dense
0..N_val-1 like the other splits'."""
import dataclasses
from typing import Callable

import numpy as np

from bsd_jax import distributed


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
  val_images: np.ndarray = None           # the validation split (config.data.val_size), or None
  val_labels: np.ndarray = None
  val_ids: np.ndarray = None
  train_human_labels: np.ndarray = None   # int32 [N]: a second label per sample read from the
  val_human_labels: np.ndarray = None     # dataset (CIFAR-N, config.label_noise.kind = 'human')
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
class Source:
  """A source before its images are read: labels, image shape and a reader of images by id."""
  name: str
  train_labels: np.ndarray
  test_labels: np.ndarray
  num_classes: int
  image_shape: tuple
  read: Callable  # (split 'train' | 'test', sorted sample ids) -> uint8 [len(ids), H, W, C]
  class_names: tuple = ()
  train_coarse_labels: np.ndarray = None
  val_labels: np.ndarray = None  # the validation split held out of the train split, or None
  train_human_labels: np.ndarray = None  # a second label per training sample (CIFAR-N), or None
  val_human_labels: np.ndarray = None
  streamed = False  # not a field: images are read into memory by images()

  @property
  def num_train(self):
    return int(self.train_labels.shape[0])

  def subset(self, keep, name):
    """The training samples `keep` (sorted ids), renumbered 0..len(keep)-1."""
    read = self.read

    def read_subset(split, ids):
      return read(split, keep[ids] if split == 'train' else ids)

    def kept(labels):
      return None if labels is None else labels[keep]

    return dataclasses.replace(self, name=name, train_labels=self.train_labels[keep],
                               train_coarse_labels=kept(self.train_coarse_labels),
                               train_human_labels=kept(self.train_human_labels), read=read_subset)

  def hold_out(self, val, name):
    """The training samples `val` (sorted ids) as the validation split, the rest (renumbered)
    as the training split."""
    read, rest = self.read, self.subset(np.setdiff1d(np.arange(self.num_train), val), name)
    human = self.train_human_labels

    def read_split(split, ids):
      return read('train', val[ids]) if split == 'val' else rest.read(split, ids)

    return dataclasses.replace(rest, val_labels=self.train_labels[val], read=read_split,
                               val_human_labels=None if human is None else human[val])

  def images(self, rows=None) -> Dataset:
    """The Dataset with the images of rows(num) of each split (None: all)."""
    parts = {}
    splits = [('train', self.train_labels), ('test', self.test_labels)]
    if self.val_labels is not None:
      splits.append(('val', self.val_labels))
    for split, labels in splits:
      ids = None if rows is None else np.asarray(rows(labels.shape[0]), np.int64)
      wanted = np.arange(labels.shape[0]) if ids is None else ids
      if wanted.size:
        images = self.read(split, wanted)
      else:  # a process whose devices hold only padding rows
        images = np.zeros((0,) + tuple(self.image_shape), np.uint8)
      parts[split] = images, ids
    val_images, val_ids = parts.get('val', (None, None))
    return Dataset(self.name, parts['train'][0], self.train_labels, parts['test'][0],
                   self.test_labels, self.num_classes, self.class_names,
                   self.train_coarse_labels, parts['train'][1], parts['test'][1], val_images,
                   self.val_labels, val_ids, self.train_human_labels, self.val_human_labels)
