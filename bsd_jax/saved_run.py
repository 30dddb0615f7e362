"""A run directory's checkpoint, loaded to be evaluated: its config as the run was made, its data,
the experiment and the state (`load_checkpoint`), and the evaluation suites' view of it
(`checkpoint_run`). The evaluate command's work before a suite runs."""
import logging
import os

from bsd_jax import data, experiment, feeds
from bsd_jax.data import label_noise
from bsd_jax.errors import UserError
from bsd_jax.evaluation import common
from bsd_jax.rundir import checkpoints
from bsd_jax.rundir.run_config import load_run_config


def load_checkpoint(workdir, step=None):
  """(config, dataset, experiment, state, step) of a run's checkpoint; UserError if unusable."""
  config = load_run_config(workdir)
  ckpt = checkpoints.Checkpointer(workdir, config.keep_checkpoints, read_only=True)
  available = ckpt.all_steps()
  if not available:
    raise UserError(f'{ckpt.directory}: no checkpoint to evaluate')
  if step is not None and step not in available:
    raise UserError(f'--step {step}: no such checkpoint in {ckpt.directory} (have {available})')
  ds = label_noise.with_saved_val_labels(config, data.load(config), workdir)
  try:
    exp = experiment.build(config, ds)
  except KeyError as e:  # a name or key this version does not know (a config.json edited by hand)
    raise UserError(f'{os.path.join(workdir, "config.json")}: {e} is unknown to this version of '
                    'bsd_jax') from None
  # The asked-for checkpoint, or the newest that can be read (a reading command moves nothing).
  try:
    for candidate in ([step] if step is not None else reversed(available)):
      try:
        state = ckpt.restore(candidate, exp.abstract_state)
        return config, ds, exp, state, int(candidate)
      except checkpoints.Damaged as e:
        if step is not None:
          raise UserError(f'cannot read the checkpoint ({e})') from None
        logging.warning('Checkpoint %d cannot be read (%s); trying an older one', candidate, e)
    raise UserError(f'{ckpt.directory}: no checkpoint can be read (have {available})')
  finally:
    ckpt.close()


def checkpoint_run(config, ds, exp) -> common.Run:
  """The Run of a checkpoint loaded whole by the evaluate command (every row on this process)."""
  predict = feeds.Predictor(exp, config.eval_batch_size)

  def predictions(state, split):
    if ds.streamed:
      with feeds.make(config, ds, exp) as feed:
        return feed.predictions(state, split)
    return predict.outputs(state, ds.val_images if split == 'val' else ds.test_images)

  return common.Run(config, ds, exp, predict, predictions)
