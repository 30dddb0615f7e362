"""At a restart, the config must describe the run its workdir holds (config.json).

Every key that changes what the saved state means (model, method and its hyperparameters, data
and its subset and noise, seed, batch size, optimizer and schedule, dtypes, num_epochs, ...) must
be equal; a difference is refused before anything is written, naming each key with its saved and
its new value. MAY_CHANGE lists the keys that may differ. Keys of a section that does not act in
this run (another method's hyperparameters, SupCon at weight 0, the streamed source's sizes for
an in-memory source, ...) are not compared.

num_epochs may not change: it sets the learning-rate schedule's length (cosine decays to 0 at
the last step) and, through bsd.label_weight_end, BSD's gamma, so the saved state would continue
under another schedule and another posterior update than the one it was made with; no
uninterrupted run would end where such a resumed one does. Train longer in a new workdir."""
import json

from bsd_jax import methods
from bsd_jax.errors import UserError
from bsd_jax.evaluation.common import flatten

# Keys (or sections, ending in '.') that may change on resume: logging, steps per call,
# evaluation and checkpoint cadence, the evaluation batch, evaluation suites, host-side reading,
# and where the same data lives (its identity and size are checked against the checkpoint; the
# noisy labels are read back from noisy_labels.npz).
MAY_CHANGE = ('log_every_steps', 'log_every_seconds', 'steps_per_call', 'eval_every_epochs',
              'checkpoint_every_epochs', 'keep_checkpoints', 'eval_batch_size', 'evals.',
              'data.stream.worker_count', 'data.stream.worker_threads', 'data.tfds_data_dir',
              'data.manual_dir', 'data.download', 'data.root', 'label_noise.superclass_csv',
              'peer_timeout_s', 'init_from')  # init_from: read at the first start only

# Keys added since the first version, and what their absence in a run's config.json meant: a run
# directory of an earlier version is evaluated (load_run_config) and resumed (resume_check) as
# what it was.
ABSENT_MEANS = {'supcon.weight': 0.0, 'label_noise.kind': 'none',
                'table_dtype': 'float32',            # the only storage before the key existed
                'data.val_size': 0, 'data.val_seed': 0,               # no validation split
                'data.cutmix_alpha': 0.0, 'data.mixup_alpha': 0.0,    # no CutMix or Mixup
                'data.mix_prob': 1.0, 'data.mix_switch_prob': 0.5,
                'bsd.top_k': 0, 'bsd.top_k_shadow': False,           # the dense posterior
                'bsd.rest_spread': 'uniform',        # the only spread before the key existed
                'label_noise.clean_val': True,       # validation labels were kept clean
                'label_noise.human_label': None,     # synthetic noise only
                'peer_timeout_s': 60.0, 'log_every_seconds': 0.0,  # steps only
                'init_from': None,                   # random initialisation
                'data.test_fraction': 0.0,           # the folder's own test/ split
                'backbone_lr_multiplier': 1.0}       # one learning rate for all parameters


def _acts(key, c):
  """Whether `key` acts in the run described by the flat config `c`."""
  section = key.split('.')[0]
  if methods.section_owners(section):  # a method's hyperparameters act in its runs only
    entry = methods.METHODS.get(c.get('method'))
    return (entry is not None and entry.section == section
            and (entry.acts is None or entry.acts(key, c)))
  if key.startswith('supcon.') and key != 'supcon.weight':
    return (c.get('supcon.weight') or 0) > 0
  if key == 'label_noise.clean_val':
    return c.get('label_noise.kind', 'none') != 'none' and bool(c.get('data.val_size'))
  if key.startswith('label_noise.') and key != 'label_noise.kind':
    kind = c.get('label_noise.kind', 'none')
    if kind == 'human':  # the dataset's labels: no rate, seed or superclasses
      return key == 'label_noise.human_label'
    return kind != 'none' and key != 'label_noise.human_label'
  if key.startswith('data.stream.'):
    return c.get('data.source') in ('tfds_stream', 'folder_stream')
  if key == 'data.test_fraction':
    return c.get('data.source') in ('folder', 'folder_stream')
  if key.startswith('data.synthetic.'):
    return c.get('data.source') == 'synthetic'
  if key in ('data.name', 'data.train_split', 'data.test_split', 'data.image_key',
             'data.label_key'):
    return c.get('data.source') in ('tfds', 'tfds_stream')
  if key == 'model.cnn_widths':
    return c.get('model.name') == 'cnn'
  if key == 'data.subset_seed':
    return bool(c.get('data.train_subset_per_class'))
  if key == 'data.val_seed':
    return bool(c.get('data.val_size'))
  if key in ('data.mix_prob', 'data.mix_switch_prob'):
    return bool(c.get('data.cutmix_alpha') or c.get('data.mixup_alpha'))
  if key in ('lr_milestones', 'lr_decay_factor'):
    return c.get('lr_schedule') == 'multistep'
  return True


def _may_change(key):
  return any(key == k or (k.endswith('.') and key.startswith(k)) for k in MAY_CHANGE)


def differences(saved: dict, new: dict):
  """[(key, saved value, new value)] of the keys that act in either run and differ; both
  configs as plain dicts (config.json and the new config's JSON)."""
  s, n = flatten(saved, sep='.'), flatten(new, sep='.')
  missing = object()
  out = []
  for key in sorted(set(s) | set(n)):
    if _may_change(key) or not (_acts(key, s) or _acts(key, n)):
      continue
    old, now = s.get(key, ABSENT_MEANS.get(key, missing)), n.get(key, missing)
    if old != now:
      out.append((key, '(absent)' if old is missing else old, '(absent)' if now is missing
                  else now))
  return out


def check(saved: dict, config, path: str):
  """UserError naming every key whose new value differs from the saved run's (`path`: the
  run's config.json)."""
  new = json.loads(config.to_json())
  diffs = differences(saved, new)
  if diffs:
    listed = '; '.join(f'{k}: saved {json.dumps(a)}, now {json.dumps(b)}' for k, a, b in diffs)
    raise UserError(f'{path} was written for another run ({listed}); these keys cannot change '
                    'on resume (docs/training.md, Stopping and resuming): restore them or use '
                    'another --workdir')
