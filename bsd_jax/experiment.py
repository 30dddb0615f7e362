"""What a config builds before any step runs, shared by training and the evaluate command:
mesh, model, method, optimizer, and the sharded layout of the state."""
import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from bsd_jax import config_check, methods, models, optim, sharding, step
from bsd_jax.data import mix
from bsd_jax.state import TrainState


def _stored(table, table_dtype):
  return table if isinstance(table, dict) else table.astype(table_dtype)


def make_init_state(model, method, tx, image_shape, num_classes, batch_size,
                    table_dtype=jnp.float32):
  """init_state(rng, labels [N_pad]) -> a fresh TrainState (to be jitted with out_shardings);
  an [N, W] table is stored in table_dtype, a dict of arrays (BSD's sparse posterior) as the
  method made each (it applies config.table_dtype where it can)."""
  def init_state(rng, labels):
    k_params, k_state = jax.random.split(rng)
    variables = model.init(k_params, jnp.zeros((1,) + tuple(image_shape), jnp.float32))
    params = variables['params']
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get('batch_stats', {}), opt_state=tx.init(params),
                      alpha=_stored(method.init_table(labels, num_classes), table_dtype),
                      rng=k_state,
                      carry=method.init_carry(batch_size, num_classes))

  return init_state


def state_shardings(abstract_state, mesh):
  """The table (alpha, each of its arrays) row-sharded on the data axis, everything else
  replicated."""
  return jax.tree.map(lambda _: sharding.replicated(mesh), abstract_state).replace(
      alpha=jax.tree.map(lambda _: sharding.rows_sharded(mesh), abstract_state.alpha))


@dataclasses.dataclass
class Experiment:
  mesh: Any
  model: Any
  method: methods.Method
  tx: Any
  schedule: Callable
  steps_per_epoch: int
  total_steps: int
  padded_labels: np.ndarray   # train labels padded to the table's row count
  mean: np.ndarray            # per-channel normalisation of the train split
  std: np.ndarray
  init_state: Callable        # (rng, padded_labels) -> TrainState
  abstract_state: Any         # ShapeDtypeStructs carrying the shardings
  augment_on_device: bool     # crop + flip in the step (streamed images come augmented)

  @property
  def state_shardings(self):
    return jax.tree.map(lambda a: a.sharding, self.abstract_state)


def build(config, ds, mesh=None) -> Experiment:
  """Everything `config` builds for `ds` (mean and std: a collective when ds was read by rows)."""
  config_check.check_classes(config, ds.num_classes)
  mesh = sharding.make_mesh() if mesh is None else mesh
  steps_per_epoch = -(-ds.num_train // config.batch_size)
  method = methods.get_method(config)
  model = models.get_model(config, ds.num_classes)
  tx, schedule = optim.make_optimizer(config, steps_per_epoch)
  padded_labels = np.zeros(sharding.padded_rows(ds.num_train, mesh.size), np.int32)
  padded_labels[:ds.num_train] = ds.train_labels
  init_state = make_init_state(model, method, tx, ds.image_shape, ds.num_classes,
                               config.batch_size, models.DTYPES[config.table_dtype])
  abstract = jax.eval_shape(init_state, jax.random.PRNGKey(config.seed), padded_labels)
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          abstract, state_shardings(abstract, mesh))
  mean, std = ds.channel_stats()
  return Experiment(mesh, model, method, tx, schedule, steps_per_epoch,
                    config.num_epochs * steps_per_epoch, padded_labels, mean, std, init_state,
                    abstract, augment_on_device=config.data.augment and not ds.streamed)


def _train_step(config, exp: Experiment, update_table: bool):
  return step.make_train_step(
      exp.model, exp.method, exp.tx, exp.mesh, exp.mean, exp.std,
      steps_per_epoch=exp.steps_per_epoch, augment_images=exp.augment_on_device,
      update_table=update_table, supcon=config.supcon if config.supcon.weight > 0 else None,
      mix=mix.MixConfig.from_config(config.data))


def jit_train_step(config, exp: Experiment, update_table: bool = True):
  """One jitted train step: (state, data, batch) -> (state, sums); the state is donated and
  keeps its shardings."""
  return jax.jit(_train_step(config, exp, update_table),
                 out_shardings=(exp.state_shardings, sharding.replicated(exp.mesh)),
                 donate_argnums=(0,))


def jit_train_calls(config, exp: Experiment, update_table: bool = True):
  """The trainer's jitted call of several steps (step.make_train_calls): (state, data, plan,
  carried, start, n, sums) -> (state, sums); state and sums are donated."""
  return jax.jit(step.make_train_calls(_train_step(config, exp, update_table)),
                 out_shardings=(exp.state_shardings, sharding.replicated(exp.mesh)),
                 donate_argnums=(0, 6))


class TrainSteps:
  """The loop's train steps, run by `feed`: one jitted step per call (config.steps_per_call =
  1), or calls of up to K steps (step.make_train_calls) that add their sums to the epoch's on the
  devices. `advance(state, sums, step_now, n)` runs steps step_now .. step_now + n - 1 (n = 1
  when K = 1) and returns the state and the epoch's sums so far (`sums`: None at an epoch's
  start).

  K = 1 is the single-step program; K > 1 is one loop program for every call length, so any two
  K > 1 give the same bits, and equal K = 1 to float rounding: XLA fuses the step differently
  inside a loop (docs/training.md, "Steps per call")."""

  def __init__(self, config, exp: Experiment, feed, update_table: bool = True):
    self.k, self.feed, self.spe = config.steps_per_call, feed, exp.steps_per_epoch
    self._repl = sharding.replicated(exp.mesh)
    if self.k == 1:
      self._step = jit_train_step(config, exp, update_table)
    else:
      self._calls = jit_train_calls(config, exp, update_table)

  def advance(self, state, sums, step_now: int, n: int):
    feed = self.feed
    if self.k == 1:
      state, step_sums = self._step(state, feed.train_data, feed.train_batch(step_now))
      return state, step_sums if sums is None else jax.tree.map(jnp.add, sums, step_sums)
    if sums is None:  # fresh zeros: the call donates its sums
      sums = jax.device_put(step.zero_sums(feed.train_data), self._repl)
    return self._calls(state, feed.train_data, feed.epoch_plan(step_now // self.spe),
                       feed.carried(step_now, n), step_now % self.spe, n, sums)


class Predictor:
  """Eval-mode logits and probabilities [n, K] (numpy float32) of the uint8 images of a split,
  in batches of `batch_size`; the last batch is padded, then cut off. One compiled program for
  every split and set of the same image shape (the training loop's test and validation splits
  and every evaluation suite)."""

  def __init__(self, exp: Experiment, batch_size: int):
    self.mesh, self.batch_size = exp.mesh, batch_size
    # Replicated output: every process can read the predictions (multi-process jobs).
    self._outputs = jax.jit(step.make_outputs(exp.model, exp.mesh, exp.mean, exp.std),
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
