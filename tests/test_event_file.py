"""The TensorBoard events (tensorboardX): TensorBoard's own reader reads what a run writes, and a
resumed start's purge marker drops what earlier starts wrote after the restored step, also past
a record torn by a kill. (End to end with a run: tests/test_train_e2e.py.)"""
import os

import numpy as np

from bsd_jax.rundir import event_file
from bsd_jax.rundir.metric_log import MetricLog
from tests import helpers


def test_tensorboard_reads_the_scalars_back(tmp_path):
  events = event_file.EventFile(str(tmp_path))
  events.write(3, {'train/loss': 1.5, 'test/accuracy': 0.25})
  events.write(2**40, {'train/loss': -7.0})  # a step past 32 bits, a negative value
  events.write(5, {'test/nll': float('nan'), 'test/big': 1e39})  # beyond float32: inf
  got = helpers.read_events(tmp_path)
  assert got['train/loss'] == [(3, 1.5), (2**40, -7.0)]
  assert got['test/accuracy'] == [(3, 0.25)]
  assert len(got['test/nll']) == 1 and np.isnan(got['test/nll'][0][1])
  assert got['test/big'] == [(5, float('inf'))]


def _start(workdir, step, losses):
  """One start of a run: the log rewound to `step`, then progress at the steps of `losses`."""
  log = MetricLog(str(workdir))
  log.rewind(step)
  for s in losses:
    log.progress(s, {'loss': float(s)})


def test_a_resumed_start_purges_what_earlier_starts_wrote_after_its_step(tmp_path):
  _start(tmp_path, 0, (8, 16, 24))
  files = sorted(os.listdir(tmp_path))
  with open(tmp_path / files[0], 'ab') as f:  # a record cut short by a kill
    f.write(b'\x20\x00\x00\x00\x00\x00\x00\x00\x01\x02')
  _start(tmp_path, 16, (20, 24))  # resumed from step 16, in the same second
  _start(tmp_path, 24, ())       # a finished run started again writes nothing
  assert len(os.listdir(tmp_path)) == 2
  assert helpers.read_events(tmp_path) == {
      'progress/loss': [(8, 8.0), (16, 16.0), (20, 20.0), (24, 24.0)]}


def test_a_run_of_an_earlier_version_is_read_first_and_purged(tmp_path):
  legacy = event_file.EventFile(str(tmp_path))
  legacy.write_many([(8, {'progress/loss': 8.0}), (16, {'progress/loss': 16.0})])
  os.replace(legacy._writer._file_name, tmp_path / event_file.LEGACY)  # its one fixed name
  _start(tmp_path, 8, (16,))
  assert event_file.LEGACY_RENAMED in os.listdir(tmp_path)
  assert helpers.read_events(tmp_path) == {'progress/loss': [(8, 8.0), (16, 16.0)]}
