"""Orbax checkpoints of the whole TrainState plus a JSON record of what the run was made for.

Layout: <workdir>/checkpoints/<step>/{state,meta}. The state is saved sharded (alpha stays
row-split) and restored onto the current mesh, whatever device count wrote it. `meta` holds the
dataset identity and size, the class count, the method, and the running epoch sums, so that a
resumed run can refuse a workdir made for other data before it writes anything.
"""
import os

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Find, read and restore checkpoints; save (also on a stop request); keep the last `keep`.
  Whether to restore or to start fresh is the caller's decision (train.py)."""

  def __init__(self, workdir: str, keep: int):
    self.directory = os.path.abspath(os.path.join(workdir, 'checkpoints'))
    self._keep = keep
    self._manager = None

  def _mngr(self):
    if self._manager is None:
      options = ocp.CheckpointManagerOptions(max_to_keep=self._keep, create=True,
                                             cleanup_tmp_directories=True)
      self._manager = ocp.CheckpointManager(self.directory, options=options)
    return self._manager

  def latest_step(self):
    """The newest complete checkpoint's step, or None (reads only; creates nothing)."""
    if not os.path.isdir(self.directory):
      return None
    return self._mngr().latest_step()

  def all_steps(self):
    """Steps of the complete checkpoints, oldest first (reads only)."""
    if not os.path.isdir(self.directory):
      return []
    return sorted(self._mngr().all_steps())

  def read_meta(self, step) -> dict:
    return self._mngr().restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']

  def restore(self, step, abstract_state):
    """The state saved at `step`, laid out like `abstract_state` (shapes and shardings)."""
    restore_args = jax.tree.map(
        lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding, global_shape=x.shape, strict=False),
        abstract_state)
    out = self._mngr().restore(step, args=ocp.args.Composite(
        state=ocp.args.PyTreeRestore(abstract_state, restore_args=restore_args),
        meta=ocp.args.JsonRestore()))
    return out['state'], out['meta']

  def save(self, step: int, state, meta: dict):
    """Write a checkpoint and wait until it is complete on disk."""
    self._mngr().save(int(step), args=ocp.args.Composite(
        state=ocp.args.PyTreeSave(state), meta=ocp.args.JsonSave(meta)), force=True)
    self._mngr().wait_until_finished()

  def close(self):
    if self._manager is not None:
      self._manager.close()
      self._manager = None
