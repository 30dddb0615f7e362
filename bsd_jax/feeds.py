"""What the loop feeds the steps: device-resident data, the batch of each step, the ordered pass
over the training set (a method's refresh pass) and the test and validation splits' predictions
(`Predictor`: clean images in eval batches, also for the evaluation suites).

`InMemoryFeed` (CIFAR-size sources): every split lives on the devices, split by rows like the
posterior table (each process holds, and has read, only its devices' rows); a batch is sample
indices and the step gathers the images. `StreamFeed` (source 'tfds_stream'): only the labels
live on the devices; each process streams its part of every batch's images through grain
(bsd_jax/data/stream_batches.py) and the parts are joined into global arrays carried by the
batch. Both follow data.order.step_batch, so the data order, the table rows a step touches and
resuming are the same; the source decides which feed, not the step.

The loop's calls of one or K steps (step.TrainSteps) take their batches from `epoch_plan`, the
epoch's batches of sample indices, sent to the devices once per epoch, and `carried`, what a
call's steps carry besides (a streamed source's images, a call's steps at a time)."""
import jax
import numpy as np

from bsd_jax import eval_step, sharding
from bsd_jax.data import order, stream_batches


def make(config, ds, exp, clean_labels=None):
  """The feed for `ds` (`clean_labels`: the labels before label noise, or None)."""
  return (StreamFeed if ds.streamed else InMemoryFeed)(config, ds, exp, clean_labels)


class _Feed:

  def __init__(self, config, ds, exp, clean_labels, train_images=None):
    self.config, self.ds, self.exp = config, ds, exp
    self.batch_sh = sharding.batch_sharded(exp.mesh)
    self.repl = sharding.replicated(exp.mesh)
    self.extra_view = exp.method.extra_view
    self.partners = (order.ClassPartners(ds.train_labels) if self.extra_view == 'class_pair'
                     else None)
    labels = {'labels': ds.train_labels}
    if clean_labels is not None:  # label noise: train accuracy is also measured on clean labels
      labels['clean_labels'] = clean_labels
    self.train_data = jax.device_put(labels, self.repl)
    if train_images is not None:
      self.train_data['images'] = train_images
    self._plan_epoch, self._plan = None, None

  def epoch_plan(self, epoch):
    """Every batch of `epoch` on the devices: [steps_per_epoch, B] arrays, split on the batch
    axis (kept until the next epoch's plan is asked for)."""
    if self._plan_epoch != epoch:
      spe = self.exp.steps_per_epoch
      c = self.config
      steps = [order.step_batch(c.seed, s, self.ds.num_train, c.batch_size, self.extra_view,
                                self.partners) for s in range(epoch * spe, (epoch + 1) * spe)]
      self._plan = jax.device_put({k: np.stack([b[k] for b in steps]) for k in steps[0]},
                                  sharding.steps_batch_sharded(self.exp.mesh))
      self._plan_epoch = epoch
    return self._plan

  def carried(self, step_now, n):
    """What the n steps from `step_now` carry besides their plan ({}: nothing)."""
    return {}

  def predictions(self, state, split):
    """Eval-mode (logits, probabilities) [n, K] (numpy float32) of the whole split 'test' or
    'val'."""
    raise NotImplementedError

  def _ordered_host_batches(self):
    """Every training sample once, in order (the last batch wraps around at mask 0)."""
    b, n = self.config.batch_size, self.ds.num_train
    order = np.arange(self.exp.steps_per_epoch * b) % n
    keep = (np.arange(order.size) < n).astype(np.float32)
    for i in range(self.exp.steps_per_epoch):
      yield {'index': order[i * b:(i + 1) * b], 'mask': keep[i * b:(i + 1) * b]}

  def close(self):
    pass

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


class InMemoryFeed(_Feed):
  """Every split on the devices, split by rows; batches of sample indices (the step gathers and
  augments)."""

  def __init__(self, config, ds, exp, clean_labels=None):
    super().__init__(config, ds, exp, clean_labels, sharding.put_rows(
        ds.train_images, ds.train_ids, ds.num_train, exp.mesh))
    self._eval = {'test': (sharding.put_rows(ds.test_images, ds.test_ids,
                                             ds.test_labels.shape[0], exp.mesh),
                           ds.test_labels.shape[0])}
    if ds.val_labels is not None:
      self._eval['val'] = (sharding.put_rows(ds.val_images, ds.val_ids, ds.val_labels.shape[0],
                                             exp.mesh), ds.val_labels.shape[0])
    self.predictor = Predictor(exp, config.eval_batch_size)

  def ordered_batches(self):
    for batch in self._ordered_host_batches():
      yield jax.device_put(batch, self.batch_sh)

  def predictions(self, state, split):
    return self.predictor.on_device(state, *self._eval[split])


class StreamFeed(_Feed):
  """Labels on every device; each step's images streamed, this process reading only its rows."""

  def __init__(self, config, ds, exp, clean_labels=None):
    super().__init__(config, ds, exp, clean_labels)
    s = config.data.stream
    self._workers, self._threads = s.worker_count, s.worker_threads
    self._train_rows = sharding.this_process_positions(config.batch_size, exp.mesh)
    self._eval_rows = sharding.this_process_positions(config.eval_batch_size, exp.mesh)
    self._train_records = stream_batches.Records(ds.train_source, ds.image_key, ds.train_keys)
    self._eval_records = {'test': stream_batches.Records(ds.test_source, ds.image_key)}
    if ds.val_labels is not None:
      self._eval_records['val'] = stream_batches.Records(ds.train_source, ds.image_key, ds.val_keys)
    self._view = dict(size=ds.image_size, resize=s.eval_resize)
    self._train_images = stream_batches.TrainImages(
        self._train_records, seed=config.seed, num_train=ds.num_train,
        batch_size=config.batch_size, positions=self._train_rows, augment=config.data.augment,
        extra_view=self.extra_view, partners=self.partners, **self._view)
    self._outputs = jax.jit(eval_step.make_outputs_images(exp.model, exp.mean, exp.std),
                            out_shardings=self.repl)
    self.predictor = Predictor(exp, config.eval_batch_size)  # host images: the shift suite
    self._iter, self._next_step = None, None

  def _global(self, local, batch_size):
    """This process's rows -> global batch-sharded arrays of `batch_size` rows."""
    return {k: jax.make_array_from_process_local_data(self.batch_sh, v,
                                                      (batch_size,) + v.shape[1:])
            for k, v in local.items()}

  def _local_images(self, step_now, n):
    """This process's rows of the images of the n steps from `step_now`, one dict a step."""
    if self._next_step != step_now:  # first call, or a jump: restart the stream at this step
      self.close()
      self._iter = stream_batches.iterate(self._train_images, step_now, self.exp.total_steps,
                                          self._workers, self._threads,
                                          ahead=self.config.steps_per_call)
      self._next_step = step_now
    steps = [next(self._iter) for _ in range(n)]
    self._next_step += n
    return steps

  def carried(self, step_now, n):
    """The images of the n steps from `step_now`: [K, B, ...] global arrays (K =
    config.steps_per_call; rows past n repeat the last step's and are not used)."""
    steps = self._local_images(step_now, n)
    steps += steps[-1:] * (self.config.steps_per_call - n)
    k, b = len(steps), self.config.batch_size
    return {key: jax.make_array_from_process_local_data(
        sharding.steps_batch_sharded(self.exp.mesh), np.stack([s[key] for s in steps]),
        (k, b) + steps[0][key].shape[1:]) for key in steps[0]}

  def _ordered(self, records, num, batch_size, rows):
    fn = stream_batches.OrderedImages(records, num=num, batch_size=batch_size, positions=rows,
                              **self._view)
    it = stream_batches.iterate(fn, 0, -(-num // batch_size), self._workers, self._threads)
    try:
      for local in it:
        yield self._global(local, batch_size)['images']
    finally:
      stream_batches.close_iterator(it)

  def ordered_batches(self):
    images = self._ordered(self._train_records, self.ds.num_train, self.config.batch_size,
                           self._train_rows)
    try:
      for batch in self._ordered_host_batches():
        batch = jax.device_put(batch, self.batch_sh)
        batch['images'] = next(images)
        yield batch
    finally:
      images.close()

  def predictions(self, state, split):
    n = (self.ds.val_labels if split == 'val' else self.ds.test_labels).shape[0]
    out = [self._outputs(state, images) for images in self._ordered(
        self._eval_records[split], n, self.config.eval_batch_size, self._eval_rows)]
    return tuple(np.concatenate([np.asarray(o[i]) for o in out])[:n] for i in (0, 1))

  def close(self):
    if self._iter is not None:
      stream_batches.close_iterator(self._iter)
    self._iter, self._next_step = None, None


class Predictor:
  """Eval-mode logits and probabilities [n, K] (numpy float32) of the uint8 images of a split,
  in batches of `batch_size`; the last batch is padded, then cut off. One compiled program for
  every split and set of the same image shape (the training loop's test and validation splits
  and every evaluation suite)."""

  def __init__(self, exp, batch_size: int):
    self.mesh, self.batch_size = exp.mesh, batch_size
    # Replicated output: every process can read the predictions (multi-process jobs).
    self._outputs = jax.jit(eval_step.make_outputs(exp.model, exp.mesh, exp.mean, exp.std),
                            out_shardings=sharding.replicated(exp.mesh))

  def on_device(self, state, images, num: int):
    """(logits, probabilities) of samples 0..num-1 of `images`, split by rows on the devices
    (sharding.put_rows)."""
    batches = -(-num // self.batch_size)
    index = np.zeros(batches * self.batch_size, np.int32)
    index[:num] = np.arange(num)
    out = []
    for b in range(batches):
      idx = jax.device_put(index[b * self.batch_size:(b + 1) * self.batch_size],
                           sharding.batch_sharded(self.mesh))
      out.append(self._outputs(state, {'images': images}, idx))
    return tuple(np.concatenate([np.asarray(o[i]) for o in out])[:num] for i in (0, 1))

  def outputs(self, state, images: np.ndarray):
    """(logits, probabilities) of host images uint8 [n, H, W, C] (all rows, every process)."""
    num = images.shape[0]
    return self.on_device(state, sharding.put_rows(images, None, num, self.mesh), num)

  def __call__(self, state, images: np.ndarray) -> np.ndarray:
    """Probabilities of host images uint8 [n, H, W, C]."""
    return self.outputs(state, images)[1]
