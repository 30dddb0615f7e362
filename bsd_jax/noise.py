"""Synthetic label noise (METHOD.md section 3), a pure function of (labels, kind, rate, seed).

symmetric: with probability `rate` a label is replaced by a class drawn uniformly from the OTHER
K-1 classes, so the expected realised rate is `rate` (many codes draw from all K and realise
rate (K-1)/K). asymmetric: with probability `rate` a label moves along a fixed map: on CIFAR-10
truck->automobile, bird->airplane, deer->horse, cat<->dog (other classes never move); on
CIFAR-100 to the next fine class within the same superclass, cyclically (fine classes of a
superclass in ascending order). The same seed gives the same noisy labels on every host.
"""
import numpy as np

from bsd_jax.errors import UserError

KINDS = ('none', 'symmetric', 'asymmetric')

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
                      'config.label_noise.coarse_labels_csv); only CIFAR-10 has a built-in map')
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


def corrupt_labels(labels, num_classes, kind, rate, seed, coarse_labels=None):
  """Noisy copy of `labels` ([n] int). `coarse_labels` ([n], aligned with labels) gives the
  superclasses for asymmetric noise beyond CIFAR-10."""
  labels = np.asarray(labels)
  if kind not in KINDS:
    raise UserError(f'config.label_noise.kind: unknown kind {kind!r}; choose from {KINDS}')
  if not 0.0 <= rate <= 1.0:
    raise UserError(f'config.label_noise.rate must be in [0, 1], got {rate}')
  if kind == 'none' or rate == 0.0:
    return labels.copy()
  rng = np.random.default_rng(seed)
  flip = rng.random(labels.shape[0]) < rate
  if kind == 'symmetric':
    # An offset in 1..K-1 added modulo K is uniform over the other K-1 classes.
    offset = rng.integers(1, num_classes, labels.shape[0])
    noisy = (labels + offset) % num_classes
  else:
    noisy = asymmetric_map(num_classes, coarse_labels, labels)[labels]
  return np.where(flip, noisy, labels).astype(labels.dtype)
