"""Weights from another bsd_jax run directory: the model of its newest readable checkpoint
(parameters and batch statistics; not its table, optimizer state or step)."""
import logging

from bsd_jax.errors import UserError
from bsd_jax.rundir import checkpoints
from bsd_jax.rundir.run_config import load_run_config


def load(path) -> dict:
  """{'params/...': array, 'batch_stats/...': array} of a run directory's newest checkpoint
  that reads. UserError (one line) when the directory `path` is not a run with one."""
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
      return {name: a for name, a in arrays.items()
              if name.split('/')[0] in ('params', 'batch_stats')}
    raise UserError(f'config.init_from: no checkpoint of {ckpt.directory} can be read')
  finally:
    ckpt.close()
