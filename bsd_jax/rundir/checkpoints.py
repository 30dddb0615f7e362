"""Orbax checkpoints of the whole TrainState plus a JSON record of what the run was made for.

Layout: <workdir>/checkpoints/<step>/{state,meta}. The state is saved sharded (the table stays
row-split) and restored onto the current mesh, whatever device count wrote it. Restore is strict
about every array's shape except the padded row axis of the row-split table (a mismatch is a
one-line error naming the array). `meta` holds the dataset identity and size, the class count,
the method, and the running epoch sums, so that a resumed run can refuse a workdir made for
other data before it writes anything.

A checkpoint that cannot be read (a truncated or missing file) raises `Damaged`; the training
loop moves it to <workdir>/damaged_checkpoints/ (it is never deleted) and takes the next newest.
Orbax writes a checkpoint to a temporary directory and renames it when complete, so a save that
fails (a full disk) leaves the previous checkpoints as they were."""
import contextlib
import dataclasses
import logging
import os
import sys
import tempfile
import time
from typing import Any

import flax.struct
import jax
import numpy as np
import orbax.checkpoint as ocp

from bsd_jax import distributed, peers
from bsd_jax.errors import UserError
from bsd_jax.state import TrainState

TABLE = 'alpha'  # TrainState.table on disk, the name every run directory has used. Its row
                 # count follows the device count (padding); a dict of arrays: 'alpha/ids', ...


def _is_table(name: str) -> bool:
  return name == TABLE or name.startswith(TABLE + '/')


# TrainState as orbax stores it: the same fields in the same order, the table named TABLE.
_Stored = flax.struct.dataclass(type('_Stored', (), {'__annotations__': {
    TABLE if f.name == 'table' else f.name: Any for f in dataclasses.fields(TrainState)}}))


def _on_disk(state):
  return _Stored(*(getattr(state, f.name) for f in dataclasses.fields(state)))


def _from_disk(stored) -> TrainState:
  return TrainState(*(getattr(stored, f.name) for f in dataclasses.fields(stored)))


class Damaged(Exception):
  """A checkpoint whose files cannot be read."""


_NOISE = ('Traceback (most recent call last):', 'asyncio/base_events.py', 'self._check_closed()',
          "raise RuntimeError('Event loop is closed')", 'Event loop is closed')


@contextlib.contextmanager
def _pending_io_quiet():
  """When orbax gives up on a damaged checkpoint (or a write to a full disk), TensorStore
  operations still in flight report to an event loop that is already closed, and print
  'RuntimeError: Event loop is closed' tracebacks on stderr from their threads. Those lines are
  dropped; everything else written to stderr meanwhile is passed on."""
  sys.stderr.flush()
  saved = os.dup(2)
  failed = False
  with tempfile.TemporaryFile() as tmp:
    os.dup2(tmp.fileno(), 2)
    try:
      yield
    except BaseException:
      failed = True
      raise
    finally:
      try:
        if failed:
          time.sleep(0.5)  # the operations in flight report now, while stderr is captured
          # Their asyncio tasks report again when collected (at the latest when the run exits
          # on this failure): the caller's one line says it all.
          logging.getLogger('asyncio').setLevel(logging.CRITICAL)
        sys.stderr.flush()
      finally:
        os.dup2(saved, 2)
        os.close(saved)
      tmp.seek(0)
      text = tmp.read().decode(errors='replace')
      if 'Event loop is closed' in text:
        text = ''.join(line for line in text.splitlines(keepends=True)
                       if line.strip() and not any(n in line for n in _NOISE))
      sys.stderr.write(text)


def leaf_name(path) -> str:
  """'params/Conv_0/kernel' for a tree path of dict keys, attributes or indices."""
  return '/'.join(str(getattr(k, 'key', getattr(k, 'name', getattr(k, 'idx', k)))) for k in path)


def _first_line(e):
  text = str(e).strip()
  return text.splitlines()[0][:300] if text else type(e).__name__


class Checkpointer:
  """Find, read and restore checkpoints; save (also on a stop request); keep the last `keep`.
  Whether to restore or to start fresh is the caller's decision (train.py)."""

  def __init__(self, workdir: str, keep: int, read_only: bool = False):
    """`read_only`: for reading commands (evaluate), which must not touch a directory a job may
    be writing to (no temporary directories cleaned, nothing created)."""
    self.workdir = workdir
    self.directory = os.path.abspath(os.path.join(workdir, 'checkpoints'))
    self._keep = keep
    self._read_only = read_only
    self._manager = None

  def _mngr(self):
    if self._manager is None:
      absl_log = logging.getLogger('absl')
      level = absl_log.level
      if self._read_only:  # orbax warns that a read-only manager will save nothing: we read
        absl_log.setLevel(logging.ERROR)
      try:
        if self._read_only:
          options = ocp.CheckpointManagerOptions(read_only=True, create=False,
                                                 cleanup_tmp_directories=False)
        else:
          options = ocp.CheckpointManagerOptions(max_to_keep=self._keep, create=True,
                                                 cleanup_tmp_directories=True)
        self._manager = ocp.CheckpointManager(
            self.directory, options=options,
            item_handlers={'state': ocp.PyTreeCheckpointHandler(),
                           'meta': ocp.JsonCheckpointHandler()})
      finally:
        absl_log.setLevel(level)
    return self._manager

  def latest_step(self):
    """The newest complete checkpoint's step, or None (reads only; creates nothing)."""
    steps = self.all_steps()
    return steps[-1] if steps else None

  def all_steps(self):
    """Steps of the complete checkpoints, oldest first (reads only)."""
    if not os.path.isdir(self.directory):
      return []
    return sorted(self._mngr().all_steps())

  def read_meta(self, step) -> dict:
    try:
      with _pending_io_quiet():
        return self._mngr().restore(step, args=ocp.args.Composite(
            meta=ocp.args.JsonRestore()))['meta']
    except Exception as e:  # orbax raises many types for missing or damaged files
      raise Damaged(f'{self.directory}/{step}: {_first_line(e)}') from None

  def check_shapes(self, step, abstract_state):
    """UserError naming the first array whose saved shape differs from `abstract_state`'s
    (the table's row count may differ: its padding follows the device count)."""
    path = os.path.join(self.directory, str(step), 'state')
    try:
      with _pending_io_quiet():
        saved = self._mngr().item_metadata(step)['state']
      saved = {leaf_name(p): tuple(m.shape)
               for p, m in jax.tree_util.tree_leaves_with_path(getattr(saved, 'tree', saved))}
    except Exception as e:  # unreadable or missing metadata
      raise Damaged(f'{path}: {_first_line(e)}') from None
    if not saved:
      raise Damaged(f'{path}: no array metadata')
    now = {leaf_name(p): tuple(a.shape)
           for p, a in jax.tree_util.tree_leaves_with_path(_on_disk(abstract_state))}
    for name in sorted(set(saved) | set(now)):
      a, b = saved.get(name), now.get(name)
      same = a == b or (_is_table(name) and a is not None and b is not None and a[1:] == b[1:])
      if not same:
        raise UserError(f'{self.directory}/{step}: array {name} was saved with shape '
                        f'{a or "(none)"}, this config makes {b or "(none)"}: the checkpoint '
                        'belongs to another model or method; use another --workdir')

  def read_arrays(self, step) -> dict:
    """{'params/Conv_0/kernel': numpy array, ...}: every array of the state saved at `step`, on
    the host, whatever model made it (config.init_from reads another run's model with it)."""
    try:
      with _pending_io_quiet():
        saved = self._mngr().item_metadata(step)['state']
        saved = getattr(saved, 'tree', saved)
        restore_args = jax.tree.map(lambda m: ocp.RestoreArgs(restore_type=np.ndarray), saved)
        out = self._mngr().restore(step, args=ocp.args.Composite(
            state=ocp.args.PyTreeRestore(restore_args=restore_args)))['state']
    except Exception as e:  # orbax and TensorStore raise many types for damaged files
      raise Damaged(f'{self.directory}/{step}: {_first_line(e)}') from None
    return {leaf_name(p): a for p, a in jax.tree_util.tree_leaves_with_path(out)}

  def restore(self, step, abstract_state):
    """The state saved at `step`, laid out like `abstract_state` (shapes and shardings).
    UserError for another state's shapes; Damaged when the files cannot be read."""
    self.check_shapes(step, abstract_state)
    restore_args = jax.tree_util.tree_map_with_path(
        lambda p, x: ocp.ArrayRestoreArgs(sharding=x.sharding, global_shape=x.shape,
                                          strict=not _is_table(leaf_name(p))),
        _on_disk(abstract_state))
    try:
      with _pending_io_quiet():
        out = self._mngr().restore(step, args=ocp.args.Composite(
            state=ocp.args.PyTreeRestore(_on_disk(abstract_state), restore_args=restore_args)))
    except Exception as e:  # orbax and TensorStore raise many types for damaged files
      raise Damaged(f'{self.directory}/{step}: {_first_line(e)}') from None
    return _from_disk(out['state'])

  def restore_newest(self, abstract_state, check_meta):
    """(state, meta, step, damaged steps) of the newest checkpoint that restores, or
    (None, None, None, []) when there is none. `check_meta(meta)` may refuse a checkpoint made
    for another run (UserError). The newer checkpoints that cannot be read are reported in one
    line each and returned, for the caller to move aside once every check has passed; when
    checkpoints exist but none restores, UserError, nothing moved. Every process agrees."""
    steps = self.all_steps()
    damaged, reasons = [], []
    for step in reversed(steps):
      error, meta, state = None, None, None
      try:
        meta = self.read_meta(step)
        check_meta(meta)
        state = self.restore(step, abstract_state)
      except Damaged as e:
        error = e
      if not distributed.any_process(error is not None):
        return state, meta, step, damaged
      damaged.append(step)
      reasons.append(str(error or f'{self.directory}/{step}: unreadable on another process'))
      logging.warning('Checkpoint %d cannot be restored (%s)', step, reasons[-1])
    if steps:
      raise UserError(f'{self.directory}: no checkpoint can be restored (newest: {reasons[0]}); '
                      'nothing was moved: restore the files, or move the checkpoints away to '
                      'start again from step 0, or use another --workdir')
    return None, None, None, []

  def move_aside(self, steps):
    """Move checkpoints `steps` to <workdir>/damaged_checkpoints/<step>-<time> (never deleted;
    process 0, every process waits for it)."""
    self.close()
    distributed.barrier('moving damaged checkpoints')
    if distributed.is_main():
      target_dir = os.path.join(self.workdir, 'damaged_checkpoints')
      os.makedirs(target_dir, exist_ok=True)
      for step in steps:
        target = os.path.join(target_dir, f'{step}-{time.strftime("%Y%m%d-%H%M%S")}')
        os.replace(os.path.join(self.directory, str(step)), target)
        logging.warning('Moved the damaged checkpoint %d to %s', step, target)
    distributed.barrier('moved damaged checkpoints')

  def save(self, step: int, state, meta: dict):
    """Write a checkpoint and wait until it is complete on disk; a failure (a full disk) is a
    UserError, the previous checkpoints untouched."""
    absl_logger = logging.getLogger('absl')
    level = absl_logger.level
    absl_logger.setLevel(logging.CRITICAL)  # orbax logs a failed write with its traceback
    try:
      with _pending_io_quiet():
        self._mngr().save(int(step), args=ocp.args.Composite(
            state=ocp.args.PyTreeSave(_on_disk(state)), meta=ocp.args.JsonSave(meta)), force=True)
        self._mngr().wait_until_finished()
    except Exception as e:  # OSError, or orbax's wrapping of it
      if peers.lost_after_failure(e):  # a process of the job stopped: not the disk (main.py)
        raise
      # The run stops on this error: orbax's other failed writes, reported later by its threads,
      # stay quiet (asyncio's reports too: _pending_io_quiet); this one line says it all.
      level = logging.CRITICAL  # the absl logger stays quiet (finally)
      older = [s for s in self.all_steps() if s < step]
      kept = f'checkpoint {older[-1]} is intact' if older else 'no earlier checkpoint exists'
      raise UserError(f'{self.directory}/{step}: saving the checkpoint failed '
                      f'({_first_line(e)}); {kept}') from None
    finally:
      absl_logger.setLevel(level)

  def close(self):
    if self._manager is not None:
      self._manager.close()
      self._manager = None
