"""Label noise (docs/training.md, "Label noise"): config.label_noise applied to a loaded dataset.

kind 'human': the labels crowd workers gave (CIFAR-10N, CIFAR-100N), the training set's feature
config.label_noise.human_label read by the tfds source beside the clean label; the validation
split gets its samples' crowd labels too. The synthetic kinds are a pure function of (labels,
kind, rate, seed):

symmetric: with probability `rate` a label is replaced by a class drawn uniformly from the OTHER
K-1 classes, so the expected realised rate is `rate` (many codes draw from all K and realise
rate (K-1)/K). asymmetric: with probability `rate` a label moves along a fixed map: on CIFAR-10
truck->automobile, bird->airplane, deer->horse, cat<->dog (other classes never move); on
CIFAR-100 to the next fine class within the same superclass, cyclically (fine classes of a
superclass in ascending order). The same seed gives the same noisy labels on every host.

The noisy labels are computed once and written to <workdir>/noisy_labels.npz with the clean
labels and the settings that made them; a resumed run reads them back, and a workdir whose file
was made with other settings or another training set is refused. `prepare` only reads and
checks; `save` writes, after the caller's other checks. Kind and rate are checked with the rest
of the config (bsd_jax/config_check.py). The validation split (config.data.val_size), held out
before the noise, gets the same noise from its own stream of the seed unless
config.label_noise.clean_val."""
import csv
import dataclasses
import gzip
import logging
import os

import numpy as np

from bsd_jax.errors import UserError

KINDS = ('none', 'symmetric', 'asymmetric', 'human')

# CIFAR-10 class indices: 0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog, 6 frog,
# 7 horse, 8 ship, 9 truck.
CIFAR10_ASYMMETRIC = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}


def asymmetric_map(num_classes, coarse_labels=None, fine_labels=None):
  """[K] int array: the class each class moves to under asymmetric noise (itself = never moves).

  CIFAR-10 (K = 10) uses the fixed map; otherwise each fine class's superclass comes from the
  pairs (fine_labels[i], coarse_labels[i]) of the training set."""
  target = np.arange(num_classes)
  if coarse_labels is None:
    if num_classes != 10:
      raise UserError(f'config.label_noise.kind = asymmetric needs superclasses for '
                      f'{num_classes} classes (coarse labels from tfds cifar100 or '
                      'config.label_noise.superclass_csv); only CIFAR-10 has a built-in map')
    for src, dst in CIFAR10_ASYMMETRIC.items():
      target[src] = dst
    return target
  coarse_of = {}
  for fine, coarse in zip(np.asarray(fine_labels).tolist(), np.asarray(coarse_labels).tolist()):
    if coarse_of.setdefault(fine, coarse) != coarse:
      raise UserError(f'label noise: class {fine} appears under superclasses {coarse_of[fine]} '
                      f'and {coarse}')
  groups = {}
  for fine in sorted(coarse_of):
    groups.setdefault(coarse_of[fine], []).append(fine)
  for members in groups.values():
    for i, fine in enumerate(members):
      target[fine] = members[(i + 1) % len(members)]
  return target


def corrupt_labels(labels, num_classes, kind, rate, seed, coarse_labels=None, move_to=None):
  """Noisy copy of `labels` ([n] int). `coarse_labels` ([n], aligned with labels) gives the
  superclasses for asymmetric noise beyond CIFAR-10; `move_to` ([K], asymmetric_map's answer)
  is the map itself, made from other samples' superclasses. `seed`: anything
  np.random.default_rng takes."""
  labels = np.asarray(labels)
  if kind not in KINDS[:3] or not 0.0 <= rate <= 1.0:
    raise ValueError(f'label noise {kind!r} at rate {rate} (config_check.py refuses it)')
  if kind == 'none' or rate == 0.0:
    return labels.copy()
  rng = np.random.default_rng(seed)
  flip = rng.random(labels.shape[0]) < rate
  if kind == 'symmetric':
    # An offset in 1..K-1 added modulo K is uniform over the other K-1 classes.
    offset = rng.integers(1, num_classes, labels.shape[0])
    noisy = (labels + offset) % num_classes
  else:
    if move_to is None:
      move_to = asymmetric_map(num_classes, coarse_labels, labels)
    noisy = move_to[labels]
  return np.where(flip, noisy, labels).astype(labels.dtype)


FILE = 'noisy_labels.npz'


def _settings(config):
  n = config.label_noise
  out = {'kind': n.kind, 'rate': float(n.rate), 'seed': int(n.seed)}
  if n.kind == 'human':  # a key files of the synthetic kinds never had
    out['human_label'] = n.human_label
  return out


def superclasses_from_csv(path, class_names):
  """[K] superclass of each class, from a CSV with columns (path or class) and coarse_label."""
  opener = gzip.open if path.endswith('.gz') else open
  try:
    with opener(path, 'rt', newline='') as f:
      rows = list(csv.DictReader(f))
  except OSError as e:
    raise UserError(f'config.label_noise.superclass_csv: cannot read {path}: {e}') from None
  if not rows or 'coarse_label' not in rows[0] or not {'path', 'class'} & set(rows[0]):
    raise UserError(f'config.label_noise.superclass_csv: {path} needs columns coarse_label and '
                    'path (whose folder names the class) or class')
  coarse_of = {}
  for row in rows:
    name = row['class'] if 'class' in row else os.path.basename(os.path.dirname(row['path']))
    coarse_of[name] = int(row['coarse_label'])
  missing = [c for c in class_names if c not in coarse_of]
  if missing:
    raise UserError(f'config.label_noise.superclass_csv: {path} has no superclass for class '
                    f'folder(s) {missing[:5]}')
  return np.asarray([coarse_of[c] for c in class_names], np.int32)


def _coarse_labels(config, ds):
  if config.label_noise.superclass_csv:
    if not ds.class_names:
      raise UserError('config.label_noise.superclass_csv needs class names, which this source '
                      'has none of (an image folder or a tfds dataset has them); tfds cifar100 '
                      'brings its own coarse labels')
    return superclasses_from_csv(config.label_noise.superclass_csv, ds.class_names)[ds.train_labels]
  return ds.train_coarse_labels


def _noisy_val(config, ds):
  """Whether the validation split's labels carry the noise too (the default: a practitioner's
  held-out labels are as noisy as the training labels; label_noise.clean_val keeps them clean,
  for analysis)."""
  return (config.label_noise.kind != 'none' and ds.val_labels is not None
          and not config.label_noise.clean_val)


def _saved_val(saved, path, ds):
  if 'val_noisy' not in saved.files or not np.array_equal(saved['val_clean'], ds.val_labels):
    raise UserError(f'{path} holds no noisy labels for this validation split of '
                    f'{ds.val_labels.size} samples (made with config.label_noise.clean_val = '
                    'True or another split); use another --workdir')
  return saved['val_noisy']


def with_saved_val_labels(config, ds, workdir):
  """The dataset with the validation labels the run trained with: noisy ones read back from
  <workdir>/noisy_labels.npz where the run's noise reached its validation split (the evaluate
  command: temperature scaling fits T on the labels training had)."""
  if not _noisy_val(config, ds):
    return ds
  path = os.path.join(workdir, FILE)
  if not os.path.exists(path):
    raise UserError(f'{path} is missing: the run trained with label noise on its validation '
                    'labels; restore it, or evaluate with --temperature_scaling=off')
  with np.load(path) as saved:
    return dataclasses.replace(ds, val_labels=_saved_val(saved, path, ds).astype(np.int32))


def _new_noisy_labels(config, ds, settings):
  """(noisy training labels, noisy validation labels or None) of a run's first start."""
  noisy_val = _noisy_val(config, ds)
  if settings['kind'] == 'human':
    return ds.train_human_labels, ds.val_human_labels if noisy_val else None
  clean, move_to, val_noisy = ds.train_labels, None, None
  if settings['kind'] == 'asymmetric':
    move_to = asymmetric_map(ds.num_classes, _coarse_labels(config, ds), clean)
  noisy = corrupt_labels(clean, ds.num_classes, settings['kind'], settings['rate'],
                         settings['seed'], move_to=move_to)
  if noisy_val:  # the same process, its own stream of the same seed
    val_noisy = corrupt_labels(ds.val_labels, ds.num_classes, settings['kind'],
                               settings['rate'], (settings['seed'], 1), move_to=move_to)
  return noisy, val_noisy


def prepare(config, ds, workdir):
  """(dataset with noisy train (and validation) labels, clean train labels, what `save` writes
  or None).

  Without noise: (ds, None, None). Raises UserError before anything is written."""
  settings = _settings(config)
  path = os.path.join(workdir, FILE)
  if settings['kind'] == 'none':
    if os.path.exists(path):
      raise UserError(f'{path} exists: this workdir was trained with label noise, '
                      'config.label_noise.kind is none; use another --workdir')
    return ds, None, None
  clean = ds.train_labels
  if os.path.exists(path):
    with np.load(path) as saved:
      before = {k: saved[k].item() for k in settings if k in saved.files}
      if before != settings or not np.array_equal(saved['clean'], clean):
        raise UserError(f'{path} was made with label noise {before} on a training set of '
                        f'{saved["clean"].size} samples; this config gives {settings} on '
                        f'{clean.size}; use another --workdir')
      noisy, to_save = saved['noisy'], None
      val_noisy = _saved_val(saved, path, ds) if _noisy_val(config, ds) else None
  else:
    noisy, val_noisy = _new_noisy_labels(config, ds, settings)
    to_save = {'noisy': noisy}
    if val_noisy is not None:
      to_save.update(val_clean=ds.val_labels, val_noisy=val_noisy)
  logging.info('Label noise %s: %d of %d training labels differ from the clean ones (%.4f)',
               settings, int(np.sum(noisy != clean)), clean.size, float(np.mean(noisy != clean)))
  ds = dataclasses.replace(ds, train_labels=noisy.astype(np.int32))
  if val_noisy is not None:
    logging.info('The validation labels carry the same noise: %d of %d differ '
                 '(config.label_noise.clean_val keeps them clean)',
                 int(np.sum(val_noisy != ds.val_labels)), ds.val_labels.size)
    ds = dataclasses.replace(ds, val_labels=val_noisy.astype(np.int32))
  return ds, clean, to_save


def save(config, workdir, clean, labels):
  """Write the noisy labels (`labels`: prepare's {'noisy', and 'val_clean', 'val_noisy' where
  the validation labels carry the noise}), the clean ones and the settings (np.savez, then an
  atomic rename)."""
  path = os.path.join(workdir, FILE)
  tmp = path + '.tmp.npz'
  np.savez(tmp, clean=clean, realised_rate=np.mean(labels['noisy'] != clean),
           **labels, **_settings(config))
  os.replace(tmp, path)
