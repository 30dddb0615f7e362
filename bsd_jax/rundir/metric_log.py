"""<workdir>/metrics.jsonl: one JSON object per line with step, epoch, split and metric values;
the same values as TensorBoard scalars (tags `<split>/<metric>`, event_file.py), with
the progress lines' figures (`progress/...`) at every log step.

Each record is appended as one line and flushed to disk before the run goes on. A run killed
while appending can leave a partial last line: it is dropped with a warning at the next start
(and ignored by readers), so complete records are never lost and a torn one never stops a run."""
import json
import logging
import math
import os

from bsd_jax.errors import UserError
from bsd_jax.rundir.event_file import EventFile


def _parse(path, lines):
  """(records of `lines`, the torn text or None). A last line without its newline that does not
  parse is torn. A line inside the file that does not parse is a torn record to which earlier
  versions appended the next one: that record is kept, the fragment dropped."""
  records, torn = [], None
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      records.append(json.loads(line))
      continue
    except ValueError:
      pass
    if number == len(lines) and not line.endswith('\n'):
      return records, line
    start = line.rfind('{"step"')
    try:
      records.append(json.loads(line[start:]) if start > 0 else None)
      torn = line[:start]
    except ValueError:
      records.append(None)
    if records[-1] is None:
      raise UserError(f'{path}: line {number} is not a JSON record (this file is written by '
                      'bsd_jax only; restore it or use another --workdir)')
  return records, torn


class MetricLog:
  """Appends records; `enabled=False` (processes other than 0 of a job) only reads."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self.enabled = enabled
    self.events = EventFile(workdir)

  def _lines(self):
    if not os.path.exists(self.path):
      return []
    with open(self.path) as f:
      return f.readlines()

  def _rewrite(self, records):
    tmp = self.path + '.tmp'
    try:
      with open(tmp, 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in records)
        f.flush()
        os.fsync(f.fileno())
      os.replace(tmp, self.path)
    except OSError as e:
      raise UserError(f'{self.path}: cannot be rewritten ({e.strerror}); it is unchanged') from None

  def rewind(self, step: int):
    """Keep the records up to `step` (a resumed run replays later steps and writes them again;
    -1: a fresh start keeps none), dropping a torn last line with a warning."""
    if not self.enabled:
      return
    lines = self._lines()
    records, torn = _parse(self.path, lines)
    if torn is not None:
      logging.warning('%s: dropping a partial record (the run was stopped while writing it): '
                      '%r', self.path, torn[:80])
    keep = [r for r in records if r['step'] <= step]
    if torn is not None or len(keep) != len(records):
      self._rewrite(keep)
    if not self.events.rewind(step) and keep:  # a run of a version without events
      self._write_events([(r['step'], self._scalars(r)) for r in keep])

  @staticmethod
  def _scalars(record):
    """A record's metrics as TensorBoard scalars {'<split>/<metric>': value}."""
    return {f"{record['split']}/{k}": float(v) for k, v in record.items()
            if k not in ('step', 'epoch', 'split')}

  def _write_events(self, steps_scalars):
    try:
      self.events.write_many(steps_scalars)
    except OSError as e:
      raise UserError(f'{self.events.workdir}: cannot append a TensorBoard event ({e.strerror}); '
                      'the checkpoints are intact, the run resumes once this is fixed') from None

  def progress(self, step: int, values: dict):
    """The figures of a progress line, as TensorBoard scalars `progress/<name>` only."""
    if self.enabled:
      self._write_events([(step, {f'progress/{k}': v for k, v in values.items()})])

  def write(self, step: int, epoch: int, split: str, values: dict):
    if not self.enabled:
      return
    record = {'step': int(step), 'epoch': int(epoch), 'split': split}
    record.update({k: (float(v) if math.isfinite(float(v)) else str(float(v)))
                   for k, v in values.items()})
    try:
      with open(self.path, 'a') as f:
        f.write(json.dumps(record) + '\n')
        f.flush()
        os.fsync(f.fileno())
    except OSError as e:
      raise UserError(f'{self.path}: cannot append a record ({e.strerror}); the checkpoints '
                      'are intact, the run resumes once this is fixed') from None
    self._write_events([(step, self._scalars(record))])

  def read(self):
    """Every complete record (a torn last line is left out)."""
    return _parse(self.path, self._lines())[0]
