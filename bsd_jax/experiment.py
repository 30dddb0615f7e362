"""What a config builds for a run, shared by training and the evaluate command: mesh, model,
method, optimizer, the state's initialiser and its sharded layout (`build`); nothing runs here."""
import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from bsd_jax import config_check, methods, models, optim, sharding
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
                      table=_stored(method.init_table(labels, num_classes), table_dtype),
                      rng=k_state, carry=method.init_carry(batch_size, num_classes))

  return init_state


def state_shardings(abstract_state, mesh):
  """The table (each of its arrays) row-sharded on the data axis, everything else
  replicated."""
  return jax.tree.map(lambda _: sharding.replicated(mesh), abstract_state).replace(
      table=jax.tree.map(lambda _: sharding.rows_sharded(mesh), abstract_state.table))


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
