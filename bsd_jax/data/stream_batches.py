"""Streamed image batches (config.data.source = 'tfds_stream'): records -> host augmentation in
grain -> this process's part of each global batch.

The data order is the in-memory one, order.step_batch(seed, step): every process computes a
step's global batch of sample ids and reads, decodes and augments only the records of its own
part of it, the rows its devices hold under the batch sharding (`sharding.process_positions`);
jax.make_array_from_process_local_data joins the parts (bsd_jax/feeds.py). Each image's
augmentation draws from a generator seeded by (seed, step, sample id, view), so a step's images
depend neither on the process count nor on grain's worker count, and a resumed run reads
exactly the images an uninterrupted one would. The map functions are plain picklable objects:
grain sends them to its worker processes."""
import numpy as np

from bsd_jax.data import host_augment, order


class Records:
  """Encoded images of sample ids, read from a tfds data source in one call per batch."""

  def __init__(self, source, image_key, keys=None):
    self.source, self.image_key, self.keys = source, image_key, keys

  def __call__(self, ids):
    keys = ids if self.keys is None else self.keys[ids]
    return [r[self.image_key] for r in self.source.__getitems__([int(k) for k in keys])]


def _stack(views, size):
  out = np.empty((len(views), size, size, 3), np.uint8)
  for i, v in enumerate(views):
    out[i] = v
  return out


class TrainImages:
  """grain map: global step -> {'images'} (and 'extra_images' for a method's extra view), this
  process's rows of the step's batch, uint8 [rows, size, size, 3].

  With `augment` a random-resized crop and flip per image; without, the evaluation view."""

  def __init__(self, records, *, seed, num_train, batch_size, positions, size, resize, augment,
               extra_view=None, partners=None):
    self.records, self.seed, self.num_train = records, seed, num_train
    self.batch_size, self.positions, self.size, self.resize = batch_size, positions, size, resize
    self.augment, self.extra_view, self.partners = augment, extra_view, partners

  def _views(self, ids, step, view):
    encoded = self.records(ids)
    if not self.augment:
      return _stack([host_augment.eval_view(e, self.size, self.resize) for e in encoded], self.size)
    return _stack([host_augment.train_view(
        e, self.size, np.random.default_rng([self.seed, step, int(i), view]))
        for i, e in zip(ids, encoded)], self.size)

  def __call__(self, step):
    step = int(step)
    batch = order.step_batch(self.seed, step, self.num_train, self.batch_size,
                               self.extra_view, self.partners)
    out = {'images': self._views(batch['index'][self.positions], step, 0)}
    if self.extra_view is not None:
      out['extra_images'] = self._views(batch['extra_index'][self.positions], step, 1)
    return out


class OrderedImages:
  """grain map: batch number b -> {'images'}: this process's rows of the evaluation views of
  samples b*B .. (b+1)*B - 1, wrapping around past the last sample (`num`)."""

  def __init__(self, records, *, num, batch_size, positions, size, resize):
    self.records, self.num, self.batch_size = records, num, batch_size
    self.positions, self.size, self.resize = positions, size, resize

  def __call__(self, b):
    ids = (int(b) * self.batch_size + self.positions) % self.num
    return {'images': _stack([host_augment.eval_view(e, self.size, self.resize)
                              for e in self.records(ids)], self.size)}


def iterate(fn, start: int, stop: int, worker_count: int, threads: int, ahead: int = 1):
  """An iterator over fn(start), ..., fn(stop - 1), in order, computed ahead by grain: `threads`
  threads in each of `worker_count` worker processes (0: threads of this process), at least
  `ahead` items ahead (a call's steps). Close it with close_iterator."""
  import grain  # only runs that stream need it
  ds = grain.MapDataset.range(start, stop).map(fn).to_iter_dataset(
      grain.ReadOptions(num_threads=threads, prefetch_buffer_size=max(2 * threads, ahead)))
  if worker_count > 0:
    from absl import flags
    if not flags.FLAGS.is_parsed():  # grain's workers read its absl flags (defaults here)
      flags.FLAGS.mark_as_parsed()
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
  return iter(ds)


def close_iterator(it):
  """Stop an iterator's worker processes and threads now rather than at garbage collection."""
  close = getattr(it, 'close', None)
  if close is not None:
    close()
