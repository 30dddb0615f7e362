"""config.init_from: a run starts from weights made elsewhere. For now another bsd_jax run
directory: the model of its newest readable checkpoint (parameters and batch statistics; not its
table, optimizer state or step). The arrays are matched to the new model by name; a classifier
head whose only difference is the class count is initialised afresh (one line says so), any
other difference is a one-line error naming the first key and both shapes."""
import logging
import os

import jax

from bsd_jax.errors import UserError
from bsd_jax.rundir import checkpoints
from bsd_jax.rundir.run_config import load_run_config

MODEL = ('params', 'batch_stats')


def load(path) -> dict:
  """{'params/...': array, 'batch_stats/...': array} of a run directory's newest checkpoint
  that reads. UserError (one line) when `path` is not a run directory with one."""
  if not os.path.isdir(path):
    raise UserError(f'config.init_from: {path} is not a directory (give a bsd_jax run '
                    'directory)')
  config = load_run_config(path)
  ckpt = checkpoints.Checkpointer(path, config.keep_checkpoints, read_only=True)
  try:
    steps = ckpt.all_steps()
    if not steps:
      raise UserError(f'config.init_from: {ckpt.directory} holds no checkpoint')
    for step in reversed(steps):
      try:
        arrays = ckpt.read_arrays(step)
      except checkpoints.Damaged as e:
        logging.warning('config.init_from: checkpoint %d cannot be read (%s); trying an older '
                        'one', step, e)
        continue
      logging.info('config.init_from: the model of %s at step %d', ckpt.directory, step)
      return {name: a for name, a in arrays.items() if name.split('/')[0] in MODEL}
    raise UserError(f'config.init_from: no checkpoint of {ckpt.directory} can be read')
  finally:
    ckpt.close()


def merge(loaded: dict, abstract_state, num_classes: int) -> dict:
  """{name: array or None} for every params / batch_stats leaf of `abstract_state`: the loaded
  array, or None where the new model keeps its own initialisation (a head whose last axis is
  the class count, saved for another class count). UserError for any other difference."""
  now = {checkpoints.leaf_name(p): a for p, a in jax.tree_util.tree_leaves_with_path(
      {'params': abstract_state.params, 'batch_stats': abstract_state.batch_stats})}
  out, fresh = {}, []
  for name in sorted(set(now) | set(loaded)):
    if name not in now or name not in loaded:
      where = 'this config makes no' if name not in now else 'the checkpoint has no'
      raise UserError(f'config.init_from: {where} array {name} (the checkpoint belongs to '
                      'another model)')
    want, got = tuple(now[name].shape), tuple(loaded[name].shape)
    if want == got:
      out[name] = loaded[name].astype(now[name].dtype)
    elif want[:-1] == got[:-1] and want[-1] == num_classes and name.startswith('params/'):
      out[name] = None
      fresh.append(f'{name} {list(got)} -> {list(want)}')
    else:
      raise UserError(f'config.init_from: array {name} was saved with shape {list(got)}, this '
                      f'config makes {list(want)}')
  if fresh:
    logging.info('config.init_from: the classifier head starts afresh for %d classes: %s',
                 num_classes, ', '.join(fresh))
  return out


def apply(state, merged: dict):
  """`state` (freshly initialised, sharded) with the merged arrays in place of its own."""
  def put(path, leaf):
    array = merged.get(checkpoints.leaf_name(path))
    if array is None:
      return leaf
    return jax.make_array_from_callback(array.shape, leaf.sharding, lambda index: array[index])

  model = jax.tree_util.tree_map_with_path(
      put, {'params': state.params, 'batch_stats': state.batch_stats})
  return state.replace(params=model['params'], batch_stats=model['batch_stats'])

