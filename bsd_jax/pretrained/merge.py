"""Loaded weights into a new model: the arrays are matched by name; a classifier head whose only
difference is the class count is initialised afresh (one line says so), any other difference is
a one-line error naming the first key and both shapes."""
import logging

import jax

from bsd_jax.errors import UserError
from bsd_jax.rundir import checkpoints


def merge(loaded: dict, abstract_state, num_classes: int) -> dict:
  """{name: array or None} for every params / batch_stats leaf of `abstract_state`: the loaded
  array, or None where the new model keeps its own initialisation (a head whose last axis is
  the class count, saved for another class count). UserError for any other difference."""
  now = {checkpoints.leaf_name(p): a for p, a in jax.tree_util.tree_leaves_with_path(
      {'params': abstract_state.params, 'batch_stats': abstract_state.batch_stats})}
  out, fresh = {}, []
  for name in sorted(set(now) | set(loaded)):
    if name not in now or name not in loaded:
      where = 'this config makes no' if name not in now else 'the weights have no'
      raise UserError(f'config.init_from: {where} array {name} (the weights are of another '
                      'model than config.model.name)')
    want, got = tuple(now[name].shape), tuple(loaded[name].shape)
    if want == got:
      out[name] = loaded[name].astype(now[name].dtype)
    elif want[:-1] == got[:-1] and want[-1] == num_classes and name.startswith('params/'):
      out[name] = None
      fresh.append(f'{name} {list(got)} -> {list(want)}')
    else:
      hint = ('; the weights were made for another image size: set config.data.stream.'
              'image_size to theirs' if name.endswith('pos_embedding') else '')
      raise UserError(f'config.init_from: array {name} was saved with shape {list(got)}, this '
                      f'config makes {list(want)}{hint}')
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

