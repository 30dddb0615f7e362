"""TensorBoard scalars through tensorboardX (no TensorFlow): the event files of a run directory.

Each start of a run that writes events gets its own file,
events.out.tfevents.<time>.<host>.<n>.bsd_jax (the n-th such file of the directory, so that two
starts in one second still sort in order), appended and flushed per record
like metrics.jsonl. A resumed run's file begins with TensorBoard's purge marker (a SessionLog
START at the restored step + 1), so TensorBoard drops what an earlier start wrote after the
restored step: a resumed run's curves have no duplicate points, and a record torn by a kill
ends that start's file only. A run written before (one events.out.tfevents.bsd_jax) is renamed
to be read first."""
import glob
import os
import time

from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.event_pb2 import Event, SessionLog
from tensorboardX.proto.summary_pb2 import Summary

PATTERN = 'events.out.tfevents.*'
# The one file of runs written before tensorboardX, renamed at their next start to a name that
# TensorBoard (which reads a directory's files in name order) reads before the new files.
LEGACY, LEGACY_RENAMED = 'events.out.tfevents.bsd_jax', 'events.out.tfevents.0000000000.bsd_jax'


class EventFile:
  """Scalar events of this start of a run, in <workdir> (created at the first write)."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    self._writer, self._purge_from = None, None

  def rewind(self, step: int) -> bool:
    """What earlier starts wrote after `step` is purged once this start writes; False when no
    start wrote events here."""
    legacy = os.path.join(self.workdir, LEGACY)
    if os.path.exists(legacy):
      os.replace(legacy, os.path.join(self.workdir, LEGACY_RENAMED))
    if not glob.glob(os.path.join(self.workdir, PATTERN)):  # no earlier start wrote events
      return False
    self._purge_from = step + 1
    return True

  def write(self, step: int, scalars: dict):
    """Scalars {tag: value} at `step` (non-finite values too: TensorBoard shows NaN)."""
    self.write_many([(step, scalars)])

  def write_many(self, steps_scalars):
    """Scalars of several steps [(step, {tag: value}), ...], flushed once."""
    if self._writer is None:
      n = len(glob.glob(os.path.join(self.workdir, PATTERN)))
      self._writer = EventsWriter(os.path.join(self.workdir, 'events'),
                                  filename_suffix=f'.{n:06d}.bsd_jax')
      if self._purge_from is not None:
        self._writer.write_event(Event(wall_time=time.time(), step=self._purge_from,
                                       session_log=SessionLog(status=SessionLog.START)))
    now = time.time()
    for step, scalars in steps_scalars:
      values = [Summary.Value(tag=tag, simple_value=float(v)) for tag, v in scalars.items()]
      self._writer.write_event(Event(wall_time=now, step=int(step), summary=Summary(value=values)))
    self._writer.flush()
