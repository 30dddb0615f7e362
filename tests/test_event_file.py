"""The TensorBoard event writer: TensorBoard's own reader reads what it writes, and a rewind
drops later events and a torn last record. (End to end with a run: tests/test_train_e2e.py.)"""
import numpy as np

from bsd_jax.rundir import event_file
from tests import helpers


def test_crc32c_check_value():
  assert event_file.crc32c(b'123456789') == 0xE3069283  # the CRC-32C (Castagnoli) check value


def test_tensorboard_reads_the_scalars_back(tmp_path):
  events = event_file.EventFile(str(tmp_path))
  events.write(3, {'train/loss': 1.5, 'test/accuracy': 0.25})
  events.write(2**40, {'train/loss': -7.0})  # a step past 32 bits, a negative value
  events.write(5, {'test/nll': float('nan')})
  got = helpers.read_events(tmp_path)
  assert got['train/loss'] == [(3, 1.5), (2**40, -7.0)]
  assert got['test/accuracy'] == [(3, 0.25)]
  assert len(got['test/nll']) == 1 and np.isnan(got['test/nll'][0][1])


def test_rewind_drops_later_events_and_a_torn_record(tmp_path):
  events = event_file.EventFile(str(tmp_path))
  for step in (8, 16, 24):
    events.write(step, {'progress/loss': float(step)})
  with open(events.path, 'ab') as f:  # a record cut short by a kill
    f.write(event_file.record(event_file.event(32, 0.0, {'progress/loss': 32.0}))[:-7])
  events.rewind(16)
  assert helpers.read_events(tmp_path) == {'progress/loss': [(8, 8.0), (16, 16.0)]}
  events.write(20, {'progress/loss': 20.0})
  assert helpers.read_events(tmp_path) == {'progress/loss': [(8, 8.0), (16, 16.0), (20, 20.0)]}


def test_a_damaged_tail_and_huge_values(tmp_path):
  events = event_file.EventFile(str(tmp_path))
  events.write(1, {'train/loss': 1e39, 'train/other': -1e39})  # beyond float32: +-inf
  with open(events.path, 'ab') as f:  # zeros after a power loss
    f.write(bytes(16))
  events.rewind(10)
  events.write(2, {'train/loss': 2.0})
  assert helpers.read_events(tmp_path)['train/loss'] == [(1, float('inf')), (2, 2.0)]
  assert helpers.read_events(tmp_path)['train/other'] == [(1, float('-inf'))]
  assert sorted(p.name for p in tmp_path.iterdir()) == [event_file.FILE_NAME]
