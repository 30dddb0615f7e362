"""What every suite shares: a run's config and checkpoint, the run a suite evaluates, result files.

Run directories written by earlier versions keep working: `load_run_config` fills in what their
config.json lacks.
"""
import dataclasses
import json
import logging
import os
from typing import Any, Callable


from bsd_jax.errors import UserError

# Keys added since the first version, and what their absence in a run's config.json meant: a run
# directory of an earlier version is evaluated (load_run_config) and resumed (resume_check) as
# what it was.
ABSENT_MEANS = {'supcon.weight': 0.0, 'label_noise.kind': 'none',
                'table_dtype': 'float32',            # the only storage before the key existed
                'data.val_size': 0, 'data.val_seed': 0,               # no validation split
                'data.cutmix_alpha': 0.0, 'data.mixup_alpha': 0.0,    # no CutMix or Mixup
                'data.mix_prob': 1.0, 'data.mix_switch_prob': 0.5,
                'bsd.top_k': 0, 'bsd.top_k_shadow': False,           # the dense posterior
                'label_noise.clean_val': True,       # validation labels were kept clean
                'peer_timeout_s': 60.0}


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


def load_run_config(workdir):
  """The locked config of a run directory (its config.json), as the run was made."""
  from ml_collections import config_dict
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise UserError(f'{path} is missing: {workdir} is not a bsd_jax run directory')
  try:
    with open(path) as f:
      saved = json.load(f)
  except ValueError as e:
    raise UserError(f'{path} cannot be read ({e}): restore it, or use another --workdir') from None
  if isinstance(saved.get('model'), str):  # written before config.model became a group
    saved['model'] = {'name': saved.pop('model'),
                      'cnn_widths': saved.pop('cnn_widths', [32, 64, 128])}
  for key, value in ABSENT_MEANS.items():
    *sections, leaf = key.split('.')
    node = saved
    for section in sections:
      node = node.setdefault(section, {})
      if not isinstance(node, dict):
        raise UserError(f'{path}: {section!r} is not a section (a config.json edited by hand?); '
                        'restore it, or use another --workdir')
    node.setdefault(leaf, value)
  config = config_dict.ConfigDict(saved)
  config.lock()
  return config


def load_checkpoint(workdir, step=None):
  """(config, dataset, experiment, state, step) of a run's checkpoint; UserError if unusable."""
  from bsd_jax import checkpointing, data, experiment
  from bsd_jax.data import label_noise

  config = load_run_config(workdir)
  ckpt = checkpointing.Checkpointer(workdir, config.keep_checkpoints, read_only=True)
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
      except checkpointing.Damaged as e:
        if step is not None:
          raise UserError(f'cannot read the checkpoint ({e})') from None
        logging.warning('Checkpoint %d cannot be read (%s); trying an older one', candidate, e)
    raise UserError(f'{ckpt.directory}: no checkpoint can be read (have {available})')
  finally:
    ckpt.close()


def checkpoint_run(config, ds, exp) -> Run:
  """The Run of a checkpoint loaded whole by the evaluate command (every row on this process)."""
  from bsd_jax import experiment, feeds
  predict = experiment.Predictor(exp, config.eval_batch_size)

  def predictions(state, split):
    if ds.streamed:
      with feeds.make(config, ds, exp) as feed:
        return feed.predictions(state, split)
    return predict.outputs(state, ds.val_images if split == 'val' else ds.test_images)

  return Run(config, ds, exp, predict, predictions)


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
  from bsd_jax import metrics
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
