"""TensorBoard scalars without TensorFlow: <workdir>/events.out.tfevents.bsd_jax.

TensorBoard reads event files: TFRecord framing (length, masked CRC-32C of the length, data,
masked CRC-32C of the data) around serialized `Event` protocol buffers. Scalars need only a few
fields, encoded here by hand: Event {wall_time = 1 (double), step = 2 (int64), file_version = 3
(string), summary = 5 {value = 1 {tag = 1 (string), simple_value = 2 (float)}}}. So the plain
install writes what `tensorboard --logdir` shows, with no TensorFlow and no protobuf.

One file per run directory, appended and flushed per record like metrics.jsonl, and rewound
with it on resume (records after the restored step are dropped), so a resumed run's curves have
no duplicate points.
"""
import math
import os
import struct
import time

FILE_NAME = 'events.out.tfevents.bsd_jax'


def _crc32c_table():
  table = []
  for i in range(256):
    c = i
    for _ in range(8):
      c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    table.append(c)
  return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  c = 0xFFFFFFFF
  for b in data:
    c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
  return c ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
  c = crc32c(data)
  return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
  n &= (1 << 64) - 1  # int64 two's complement, as protobuf encodes negative numbers
  out = bytearray()
  while True:
    byte, n = n & 0x7F, n >> 7
    out.append(byte | (0x80 if n else 0))
    if not n:
      return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
  return _varint(number << 3 | wire) + payload


def _bytes_field(number: int, data: bytes) -> bytes:
  return _field(number, 2, _varint(len(data)) + data)


def _float32(v) -> float:
  """v as a float32 can hold it: beyond float32's range, +-inf (struct refuses those values)."""
  v = float(v)
  return v if abs(v) <= 3.4028234663852886e38 or v != v else math.copysign(math.inf, v)


def event(step: int, wall_time: float, scalars: dict = None, file_version: str = None) -> bytes:
  """A serialized Event with `scalars` ({tag: float}) or a file_version."""
  out = _field(1, 1, struct.pack('<d', wall_time)) + _field(2, 0, _varint(int(step)))
  if file_version is not None:
    out += _bytes_field(3, file_version.encode())
  if scalars:
    values = b''.join(_bytes_field(1, _bytes_field(1, tag.encode()) +
                                   _field(2, 5, struct.pack('<f', _float32(v))))
                      for tag, v in scalars.items())
    out += _bytes_field(5, values)
  return out


def record(data: bytes) -> bytes:
  """One TFRecord: framing around `data`."""
  header = struct.pack('<Q', len(data))
  return header + struct.pack('<I', _masked(header)) + data + struct.pack('<I', _masked(data))


def read_records(path):
  """(the data of each record of a TFRecord file up to the first torn or damaged one, whether
  anything after them was left out). A record counts when both its CRCs hold."""
  out = []
  with open(path, 'rb') as f:
    blob = f.read()
  pos = 0
  while pos + 12 <= len(blob):
    header = blob[pos:pos + 8]
    (length,) = struct.unpack('<Q', header)
    end = pos + 12 + length + 4
    data = blob[pos + 12:pos + 12 + length]
    if (end > len(blob) or struct.unpack_from('<I', blob, pos + 8)[0] != _masked(header)
        or struct.unpack_from('<I', blob, end - 4)[0] != _masked(data)):
      break
    out.append(data)
    pos = end
  return out, pos != len(blob)


def event_step(data: bytes) -> int:
  """The step of a serialized Event written by `event` (field 2 follows the wall time)."""
  pos = 1 + 8 + 1  # wall_time's key and double, then step's key
  n, shift = 0, 0
  while True:
    byte = data[pos]
    n |= (byte & 0x7F) << shift
    pos, shift = pos + 1, shift + 7
    if not byte & 0x80:
      return n


class EventFile:
  """Appends scalar events to <workdir>/events.out.tfevents.bsd_jax."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, FILE_NAME)

  def write(self, step: int, scalars: dict):
    """Scalars {tag: value} at `step` (non-finite values too: TensorBoard shows NaN)."""
    self.write_many([(step, scalars)])

  def write_many(self, steps_scalars):
    """Scalars of several steps [(step, {tag: value}), ...], in one append and one fsync."""
    new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
    now = time.time()
    with open(self.path, 'ab') as f:
      if new:
        f.write(record(event(0, now, file_version='brain.Event:2')))
      f.writelines(record(event(step, now, scalars=s)) for step, s in steps_scalars)
      f.flush()
      os.fsync(f.fileno())

  def rewind(self, step: int):
    """Drop the events after `step` (and a torn or damaged tail)."""
    if not os.path.exists(self.path):
      return
    records, torn = read_records(self.path)
    keep = [r for r in records if event_step(r) <= step]
    if not torn and len(keep) == len(records):
      return
    tmp = os.path.join(os.path.dirname(self.path), 'bsd_jax_events.tmp')  # not a *tfevents* name
    with open(tmp, 'wb') as f:
      f.writelines(record(r) for r in keep)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, self.path)
