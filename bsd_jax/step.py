"""The train step: its factory, its jit, and the K steps per call the loop runs (`TrainSteps`).

The step function closes over static pieces (model, method, optimizer, mesh) and takes arrays
only; `jit_train_step` jits one step, `TrainSteps` the loop's calls of one or K steps, both with
the state's shardings and the state donated. The training labels live on device
(`data['labels']`, int32 [N], replicated); a batch is the sample indices `index` [B] (sharded on
the data axis) and a `mask` [B] that is 0 for the wrap-around padding of an epoch's last batch.
The images come one of two ways (bsd_jax/feeds.py): a CIFAR-size split lives on the devices too
(`data['images']`, uint8 [N_pad, H, W, C], split by rows like the table) and is gathered by index;
a streamed split's images (already augmented on the host) arrive in the batch, `images`
[B, H, W, C] (and `extra_images` for a method's extra view). Which one is a matter of the batch's
keys, fixed when the step is traced. The eval forward and the table-refresh step are in
eval_step.py."""
import jax
import jax.numpy as jnp
import numpy as np

from bsd_jax import eval_step, losses, methods, sharding
from bsd_jax.data import augment
from bsd_jax.data import mix as mix_lib


def make_train_step(model, method, tx, mesh, mean, std, *, steps_per_epoch: int,
                    augment_images: bool, update_table: bool, supcon=None, mix=None):
  """train_step(state, data, batch) -> (state, sums of loss/count/correct/confidence).

  A method with an extra view gets `extra_index` / `extra_mask` in the batch; the extra images
  go through the same forward pass (and BatchNorm batch) as the batch itself. With `supcon`
  (config.supcon, weight > 0) a second augmentation of the batch goes through the same pass too,
  and supcon.weight x the SupCon loss of the two views' projections is added to the method's
  loss, which sees the first view only. With `mix` (data/mix.py MixConfig: CutMix or Mixup;
  neither extra views nor SupCon, config_check.py) the batch is mixed with a permutation of
  itself after augmentation, the loss mixed with the same lambda, and a visited row is updated
  from the prediction on its mixed image (as PS-KD's code stores the prediction on the image it
  trained on; bsd.prediction_source = 'eval_pass' updates from clean images instead)."""
  update = (None if method.update_rows is None else
            sharding.per_device_rows(method.update_rows, mesh))

  def train_step(state, data, batch):
    index, mask = batch['index'], batch['mask']
    batch_size = index.shape[0]
    labels = jnp.take(data['labels'], index, axis=0)
    images = eval_step.images_of(data, batch, 'index', mesh)
    extra = {}
    if method.extra_view is not None:
      extra = {'extra_labels': jnp.take(data['labels'], batch['extra_index'], axis=0),
               'extra_mask': batch['extra_mask']}
      images = jnp.concatenate([images, eval_step.images_of(data, batch, 'extra_index', mesh)])
    key = jax.random.fold_in(state.rng, state.step)
    views = [images]
    if supcon is not None:  # the second view: another crop and flip of the same batch
      views.append(augment.crop_and_flip(images[:batch_size], jax.random.fold_in(key, 1)))
    if augment_images:
      views[0] = augment.crop_and_flip(images, key)
    x = augment.normalize(jnp.concatenate(views), mean, std)
    if mix is not None:
      x, perm, lam = mix_lib.mix_batch(jax.random.fold_in(key, 2), x, mix)
    rows = sharding.gather_rows(state.table, index, mesh)
    epoch = state.step // steps_per_epoch
    num_main = images.shape[0]  # the batch and the method's extra view, if any

    def tails_of(probs):  # what the method's row functions get (Method.row_profile)
      return eval_step.tails_of(method, state, data, batch, probs)

    def loss_fn(params):
      variables = {'params': params, 'batch_stats': state.batch_stats}
      if supcon is None:
        logits, new_vars = model.apply(variables, x, train=True, mutable=['batch_stats'])
      else:
        (logits, z), new_vars = model.apply(variables, x, train=True, project=True,
                                            mutable=['batch_stats'])
      inputs = methods.StepInputs(
          logits=logits[:batch_size], labels=labels, mask=mask, rows=rows, epoch=epoch,
          extra_logits=logits[batch_size:num_main] if extra else None, carry=state.carry,
          **extra)
      loss = (method.loss(inputs) if mix is None else
              mix_lib.mixed_loss(method.loss, inputs, perm, lam))
      if supcon is not None:  # 'target_argmax': a method with row_targets (config_check.py)
        positives = (labels if supcon.positives == 'labels' else jnp.argmax(
            method.row_targets(rows, logits.shape[-1], tails_of(jax.nn.softmax(
                jax.lax.stop_gradient(logits[:batch_size].astype(jnp.float32)), axis=-1))),
            axis=-1))
        pair = jnp.concatenate([z[:batch_size], z[num_main:]])
        loss = loss + supcon.weight * losses.supcon(
            pair, jnp.concatenate([positives, positives]), jnp.concatenate([mask, mask]),
            supcon.temperature, supcon.base_temperature)
      return loss, (inputs, new_vars['batch_stats'])

    (loss, (inputs, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = jax.tree.map(lambda p, u: p + u, state.params, updates)
    probs = jax.nn.softmax(inputs.logits.astype(jnp.float32), axis=-1)
    table, visited = state.table, None
    if update_table and update is not None:
      # Update at visit (docs/method.md, "The posterior"): the same train-pass forward gives the loss and the update.
      visited = update(rows, tails_of(probs), epoch)
      table = sharding.scatter_rows(table, index, visited, mask > 0, mesh)
    carry = state.carry if method.next_carry is None else method.next_carry(inputs)
    count = jnp.sum(mask)
    sums = {  # the names of step.zero_sums
        'loss_sum': loss * count,
        'count': count,
        'correct': jnp.sum(mask * (jnp.argmax(probs, -1) == labels)),
        'confidence_sum': jnp.sum(mask * jnp.max(probs, -1)),
    }
    clean = None
    if 'clean_labels' in data:  # label noise: accuracy against the labels before corruption
      clean = jnp.take(data['clean_labels'], index, axis=0)
      sums['correct_clean'] = jnp.sum(mask * (jnp.argmax(probs, -1) == clean))
    if method.visit_sums is not None and visited is not None:
      sums.update(method.visit_sums(visited, tails_of(probs), labels, mask, clean))
    new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                              opt_state=opt_state, table=table, carry=carry)
    return new_state, sums

  return train_step


def zero_sums(data, method=None, num_classes: int = 2):
  """Zeros named like a train step's sums (a method's visit sums too, named as it makes them
  for one row of its table)."""
  names = ['loss_sum', 'count', 'correct', 'confidence_sum']
  if 'clean_labels' in data:
    names.append('correct_clean')
  if method is not None and method.visit_sums is not None:
    one = jnp.zeros((1,), jnp.int32)
    rows = jax.eval_shape(lambda labels: method.init_table(labels, num_classes), one)
    clean = one if 'clean_labels' in data else None
    tails = jnp.zeros((1, num_classes))
    if method.row_profile is not None:
      tails = {'probs': tails, 'profile': tails}
    names += list(jax.eval_shape(method.visit_sums, rows, tails, one, jnp.ones((1,)), clean))
  return {k: np.zeros((), np.float32) for k in names}


def merge_sums(a, b):
  """Two sums of steps as one: added, but a name ending in '_max' is the larger."""
  return {k: jnp.maximum(a[k], b[k]) if k.endswith('_max') else a[k] + b[k] for k in a}


# The loop's running totals of the step's sums: the epoch's (its train record) and those since
# the last progress line (its loss). Each is a dict of float32 totals with 'count', mergeable by
# addition; the steps add to them on the devices, and the loop reads one and starts it again
# (`TrainSteps.take`) instead of subtracting what it logged before.
TOTALS = ('epoch', 'interval')


def add_step(totals, step_sums):
  """Every running total of `totals` plus one step's sums."""
  return {k: merge_sums(v, step_sums) for k, v in totals.items()}


def make_train_calls(train_step):
  """train_calls(state, data, plan, carried, start, n, totals) -> (state, totals): `n` train
  steps in one call (config.steps_per_call), each step's sums added to `totals` on the way.

  `plan` holds the epoch's batches, [steps_per_epoch, B] arrays sent once per epoch; the call
  runs its steps `start` .. `start + n - 1`. `carried` holds what a streamed batch carries
  ([K, B, ...] images, rows 0 .. n-1 used; {} for an in-memory source). `n` is a traced number:
  one compiled program serves every call length, so runs with any two K > 1 execute the same
  program and arithmetic, bit for bit."""
  def train_calls(state, data, plan, carried, start, n, totals):
    def one_step(i, state_totals):
      state, totals = state_totals
      batch = {k: jax.lax.dynamic_index_in_dim(v, start + i, keepdims=False)
               for k, v in plan.items()}
      batch.update({k: jax.lax.dynamic_index_in_dim(v, i, keepdims=False)
                    for k, v in carried.items()})
      state, step_sums = train_step(state, data, batch)
      return state, add_step(totals, step_sums)

    return jax.lax.fori_loop(0, n, one_step, (state, totals))

  return train_calls


def _train_step(config, exp, update_table: bool):
  return make_train_step(
      exp.model, exp.method, exp.tx, exp.mesh, exp.mean, exp.std,
      steps_per_epoch=exp.steps_per_epoch, augment_images=exp.augment_on_device,
      update_table=update_table, supcon=config.supcon if config.supcon.weight > 0 else None,
      mix=mix_lib.MixConfig.from_config(config.data))


def jit_train_step(config, exp, update_table: bool = True):
  """One jitted train step: (state, data, batch) -> (state, sums); the state is donated and
  keeps its shardings."""
  return jax.jit(_train_step(config, exp, update_table),
                 out_shardings=(exp.state_shardings, sharding.replicated(exp.mesh)),
                 donate_argnums=(0,))


def make_one_call(train_step, steps_per_epoch: int):
  """one_call(state, data, plan, carried, totals) -> (state, totals): train step `state.step`,
  its batch taken from the epoch's `plan` on the devices (nothing is sent per step; `carried`:
  [1, B, ...] streamed images, or {}), its sums added to `totals`."""
  def one_call(state, data, plan, carried, totals):
    i = state.step % steps_per_epoch
    batch = {k: jax.lax.dynamic_index_in_dim(v, i, keepdims=False) for k, v in plan.items()}
    batch.update({k: v[0] for k, v in carried.items()})
    state, step_sums = train_step(state, data, batch)
    return state, add_step(totals, step_sums)

  return one_call


class TrainSteps:
  """The loop's train steps, run by `feed`: one jitted step per call (config.steps_per_call =
  1, make_one_call), or calls of up to K steps (make_train_calls); the batches come from the
  epoch's plan, on the devices since the epoch began. `advance(state, step_now, n)` runs steps
  step_now .. step_now + n - 1 (n = 1 when K = 1); the steps add their sums to the running
  totals on the devices, and `take(name)` returns one of them (host float32) and starts it again
  from zero: 'interval' at a progress line, 'epoch' (and with it 'interval') at an epoch's end.
  `epoch_sums` (from a checkpoint made mid-epoch) is where the epoch's totals start. `call` is
  the jitted call itself, (state, data, plan, carried[, start, n], totals) -> (state, totals).

  K = 1 is the single-step program; K > 1 is one loop program for every call length, so any two
  K > 1 give the same bits, and equal K = 1 to float rounding: XLA fuses the step differently
  inside a loop (docs/training.md, "Steps per call")."""

  def __init__(self, config, exp, feed, update_table: bool = True, epoch_sums=None):
    self.k, self.feed, self.spe = config.steps_per_call, feed, exp.steps_per_epoch
    self._repl = sharding.replicated(exp.mesh)
    self._zeros = zero_sums(feed.train_data, exp.method, feed.ds.num_classes)
    train_step = _train_step(config, exp, update_table)
    calls = (make_one_call(train_step, self.spe) if self.k == 1 else make_train_calls(train_step))
    self.call = jax.jit(calls, out_shardings=(exp.state_shardings, self._repl),
                         donate_argnums=0)
    epoch = None if epoch_sums is None else {k: np.float32(v) for k, v in epoch_sums.items()}
    self.totals = jax.device_put({'epoch': epoch or self._zeros, 'interval': self._zeros},
                                 self._repl)

  def advance(self, state, step_now: int, n: int):
    """Steps step_now .. step_now + n - 1 (the host sends the epoch's plan once an epoch)."""
    plan = self.feed.epoch_plan(step_now // self.spe)
    carried = self.feed.carried(step_now, n)
    where = () if self.k == 1 else (step_now % self.spe, n)
    previous = self.totals
    state, self.totals = self.call(state, self.feed.train_data, plan, carried, *where, previous)
    # The call before this one has finished: the host stays one call ahead of the devices (they
    # never wait for it), so a progress line's time is the devices' and a stop is prompt.
    jax.block_until_ready(previous)
    return state

  def peek(self, name: str) -> dict:
    """Running total `name` on the host (float32), left running (a checkpoint mid-epoch)."""
    return jax.device_get(self.totals[name])

  def take(self, name: str) -> dict:
    """Running total `name` on the host (float32); it starts again from zero ('epoch': both
    do)."""
    out = self.peek(name)
    restart = TOTALS if name == 'epoch' else (name,)
    self.totals = dict(self.totals, **jax.device_put({k: self._zeros for k in restart}, self._repl))
    return out
