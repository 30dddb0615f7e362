"""What every suite shares: the run a suite evaluates, result files, per-set summaries."""
import dataclasses
import json
import os
from typing import Any, Callable

from bsd_jax import metrics


@dataclasses.dataclass
class Run:
  """What a suite evaluates: built by the evaluate command from a checkpoint, or by the training
  loop from its live state."""
  config: Any
  ds: Any                       # data.Dataset (or stream_source.StreamDataset)
  exp: Any                      # experiment.Experiment
  predict: Callable             # (state, uint8 images [n, H, W, C]) -> probabilities [n, K]
  predictions: Callable         # (state, 'test' | 'val') -> (logits, probabilities) [n, K] of
                                # the whole split

  def test_probs(self, state):
    """Probabilities of the whole test split [n_test, K]."""
    return self.predictions(state, 'test')[1]


def _keep_previous(eval_dir, step, record, names):
  """Rename the results of another checkpoint (as told by `record`'s step) to names carrying it."""
  path = os.path.join(eval_dir, record)
  if not os.path.exists(path):
    return
  with open(path) as f:
    old_step = json.load(f).get('step')
  if old_step != step:
    for name in names:
      stem, ext = os.path.splitext(name)
      if os.path.exists(os.path.join(eval_dir, name)):
        os.replace(os.path.join(eval_dir, name),
                   os.path.join(eval_dir, f'{stem}.step{old_step}{ext}'))


def write_result(workdir, record, name, also=()):
  """<workdir>/eval/<name> (JSON) for record['step']; the results of another checkpoint already
  there (`name` and the files `also`) are kept under names carrying their step. Returns the
  path."""
  eval_dir = os.path.join(workdir, 'eval')
  os.makedirs(eval_dir, exist_ok=True)
  _keep_previous(eval_dir, record['step'], name, (name,) + tuple(also))
  path = os.path.join(eval_dir, name)
  with open(path + '.tmp', 'w') as f:  # whole or not at all: a report may read it meanwhile
    json.dump(record, f, indent=2)
  os.replace(path + '.tmp', path)
  return path


def summary(probs, labels):
  """Accuracy, NLL and ECE-15 (the per-set numbers of the robustness suites)."""
  return {'accuracy': float(metrics.accuracy(probs, labels)),
          'nll': float(metrics.nll(probs, labels)), 'ece': float(metrics.ece(probs, labels))}


def mean_of(summaries):
  """The key-wise mean of a list of summaries."""
  return {k: float(sum(s[k] for s in summaries) / len(summaries)) for k in summaries[0]}


def flatten(tree, sep='/', prefix=''):
  """{'a': {'b': 1.0}} -> {'a/b': 1.0}: nested results as metrics.jsonl keys (and, with
  sep='.', a config as dotted keys)."""
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(flatten(value, sep, f'{prefix}{key}{sep}'))
    else:
      out[f'{prefix}{key}'] = value
  return out
