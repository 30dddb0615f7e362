"""The human label distributions of the `human` suite, by a one-string spec (--human_labels):

  tfds[:DATA_DIR]  tfds `cifar10_h`, split 'test': the 10,000 CIFAR-10 test images, each with
                   the distribution of about 50 people's labels (`soft_label`), and the images
                   themselves, which the model is scored on (a CIFAR-10 model, 32 x 32 x 3)
  npy:PATH         float [N, K]: one distribution per image of the run's own test split, in its
                   order (N and K the run's)

`check` looks at what a run will read and raises one UserError before any model is loaded."""
import os

import numpy as np

from bsd_jax.data import tfds_common
from bsd_jax.errors import UserError

HOW = ('CIFAR-10H: python -m bsd_jax.prepare cifar10_h --data_dir D where there is internet, '
       'then --human_labels tfds:D; or a .npy of [N, K] distributions over the run\'s test '
       'split, in its order, as --human_labels npy:PATH')
SUM_TOL = 1e-3  # how far a row of a .npy may sum from 1
MIN_AGREEMENT = 0.5  # below: a .npy whose rows are not in the test split's order


def _parse(spec):
  kind, _, rest = (spec or '').partition(':')
  if kind not in ('tfds', 'npy') or (kind == 'npy' and not rest):
    raise UserError(f'--human_labels {spec!r}: give tfds, tfds:DATA_DIR or npy:PATH ({HOW})')
  return kind, rest or None


def _builder(data_dir):
  return tfds_common.open_builder('cifar10_h', data_dir, what='--human_labels')


def check(spec, num_test=None, num_classes=None, image_shape=None, test_labels=None):
  """UserError naming the first thing missing or malformed; with the run's test size, class
  count and image shape, also that the set fits the run; with its test labels, that a .npy's
  rows follow the test split's order (people's most likely class is the label on at least
  MIN_AGREEMENT of the images: on CIFAR-10H about 95%)."""
  kind, where = _parse(spec)
  if kind == 'tfds':
    builder = _builder(where)
    if not builder.is_prepared():
      raise UserError(f'--human_labels {spec}: cifar10_h is not prepared in '
                      f'{builder.data_dir_root}. {HOW}')
    if num_classes not in (None, 10):
      raise UserError(f'--human_labels {spec}: cifar10_h has 10 classes (CIFAR-10), the model '
                      f'{num_classes}')
    if image_shape is not None and tuple(image_shape) != (32, 32, 3):
      raise UserError(f'--human_labels {spec}: cifar10_h holds 32 x 32 x 3 images, the model '
                      f'takes {tuple(image_shape)}')
    return
  if not os.path.isfile(where):
    raise UserError(f'--human_labels {spec}: {where} is not a file ({HOW})')
  dist = np.load(where, mmap_mode='r')
  if dist.ndim != 2 or not np.issubdtype(dist.dtype, np.floating):
    raise UserError(f'{where}: expected float [N, K] distributions, got {dist.dtype} '
                    f'{dist.shape}')
  if num_test is not None and dist.shape != (num_test, num_classes):
    raise UserError(f'{where}: expected one distribution over the {num_classes} classes per '
                    f'test image, [{num_test}, {num_classes}], got {list(dist.shape)}')
  dist = np.asarray(dist, np.float64)
  bad = ~np.isfinite(dist).all(1) | (dist < 0).any(1) | ~(np.abs(dist.sum(1) - 1) <= SUM_TOL)
  if bad.any():
    row = int(np.flatnonzero(bad)[0])
    raise UserError(f'{where}: row {row} is not a distribution (entries >= 0 summing to 1 within '
                    f'{SUM_TOL}; sum {dist[row].sum():.6g})')
  if test_labels is not None:
    agree = float(np.mean(np.argmax(dist, 1) == np.asarray(test_labels)))
    if agree < MIN_AGREEMENT:
      raise UserError(f"{where}: people's most likely class is the test label on only "
                      f'{agree:.1%} of the images: are the rows in the order of the run\'s test '
                      'split? (tfds writes cifar10 shuffled; for CIFAR-10 use --human_labels '
                      'tfds, which scores cifar10_h\'s own images)')


def describe(spec):
  kind, where = _parse(spec)
  if kind == 'npy':
    return f'npy:{os.path.abspath(where)}'
  return 'tfds:cifar10_h' + (f' in {where}' if where else '')


def load(spec):
  """(distributions float64 [N, K], uint8 images [N, 32, 32, 3] or None for npy (the run's test
  split), labels int32 [N] or None)."""
  kind, where = _parse(spec)
  if kind == 'npy':
    return np.asarray(np.load(where), np.float64), None, None
  dist, images, labels = tfds_common.read_columns(_builder(where), 'test',
                                                  ['soft_label', 'image', 'label'])
  return np.asarray(dist, np.float64), images.astype(np.uint8), labels.astype(np.int32)
