"""The data order: which samples each step reads, as a pure function of (seed, epoch, step).

Because the order is a function and not an iterator's position, a resumed run reads exactly the
batches an uninterrupted run would. Besides the batch, some methods need an extra view, built
here as a pipeline feature and not inside the step: CS-KD a same-class partner of every sample
('class_pair'), DLB the previous step's batch ('previous_batch')."""
import functools

import numpy as np


@functools.lru_cache(maxsize=4)
def epoch_batches(seed: int, epoch: int, num_train: int, batch_size: int):
  """Sample indices and masks of every batch of one epoch: [steps, batch] each.

  A seeded permutation of 0..N-1 (the same for any device count or restart); the last batch
  is filled up with samples from the start of the permutation at mask 0, so every sample is
  visited exactly once per epoch and no batch has a different shape."""
  steps = -(-num_train // batch_size)
  perm = np.random.default_rng([seed, epoch]).permutation(num_train).astype(np.int32)
  fill = steps * batch_size - num_train
  index = np.concatenate([perm, np.resize(perm, fill)])
  mask = np.concatenate([np.ones(num_train, np.float32), np.zeros(fill, np.float32)])
  index, mask = index.reshape(steps, batch_size), mask.reshape(steps, batch_size)
  index.flags.writeable = mask.flags.writeable = False  # cached: shared between callers
  return index, mask


def batch_for_step(seed, step, num_train, batch_size):
  """(index, mask) of global step `step`."""
  steps_per_epoch = -(-num_train // batch_size)
  epoch, s = divmod(step, steps_per_epoch)
  index, mask = epoch_batches(seed, epoch, num_train, batch_size)
  return index[s], mask[s]


def step_batch(seed, step, num_train, batch_size, extra_view_kind=None, partners=None):
  """The host batch of global step `step`: 'index' and 'mask', and for a method with an extra
  view (`extra_view_kind`) 'extra_index' and 'extra_mask'; numpy arrays of [batch_size]."""
  index, mask = batch_for_step(seed, step, num_train, batch_size)
  batch = {'index': index, 'mask': mask}
  if extra_view_kind is not None:
    batch['extra_index'], batch['extra_mask'] = extra_view(
        extra_view_kind, seed, step, index, mask, num_train, batch_size, partners)
  return batch


class ClassPartners:
  """For each sample a random different sample of the same class (itself if it is alone)."""

  def __init__(self, labels):
    labels = np.asarray(labels)
    self._members = np.argsort(labels, kind='stable').astype(np.int32)
    counts = np.bincount(labels)
    self._start = np.concatenate([[0], np.cumsum(counts)[:-1]])[labels]
    self._count = counts[labels]
    self._pos = np.empty(len(labels), np.int64)
    self._pos[self._members] = np.arange(len(labels)) - np.concatenate(
        [[0], np.cumsum(counts)[:-1]])[labels[self._members]]

  def __call__(self, index, rng):
    count = self._count[index]
    shift = 1 + rng.integers(0, np.maximum(count - 1, 1))
    return self._members[self._start[index] + (self._pos[index] + shift) % count]


def extra_view(kind, seed, step, index, mask, num_train, batch_size, partners=None):
  """The extra (index, mask) that a method's `extra_view` asks for at global step `step`."""
  if kind == 'class_pair':
    rng = np.random.default_rng([seed, step, 7])
    return partners(index, rng), mask
  if kind == 'previous_batch':
    if step == 0:
      return np.zeros_like(index), np.zeros_like(mask)
    return batch_for_step(seed, step - 1, num_train, batch_size)
  raise ValueError(f'unknown extra view {kind!r}')
