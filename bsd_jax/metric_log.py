"""<workdir>/metrics.jsonl: one JSON object per line with step, epoch, split and metric values."""
import json
import math
import os


class MetricLog:
  """Appends records; `enabled=False` (processes other than 0 of a job) only reads."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self.enabled = enabled

  def rewind(self, step: int):
    """Drop records after `step` (a resumed run replays those steps and writes them again)."""
    if not self.enabled or not os.path.exists(self.path):
      return
    with open(self.path) as f:
      lines = [l for l in f if l.strip()]
    keep = [l for l in lines if json.loads(l)['step'] <= step]
    if len(keep) != len(lines):
      tmp = self.path + '.tmp'
      with open(tmp, 'w') as f:
        f.writelines(keep)
      os.replace(tmp, self.path)

  def write(self, step: int, epoch: int, split: str, values: dict):
    if not self.enabled:
      return
    record = {'step': int(step), 'epoch': int(epoch), 'split': split}
    record.update({k: (float(v) if math.isfinite(float(v)) else str(float(v)))
                   for k, v in values.items()})
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')

  def read(self):
    if not os.path.exists(self.path):
      return []
    with open(self.path) as f:
      return [json.loads(l) for l in f if l.strip()]
