"""Common-corruption test sets (CIFAR-10-C, CIFAR-100-C, ImageNet-C) for the `corruptions`
evaluation suite.

Three sources, named by --corruptions:
  tfds[:DATA_DIR]  tfds `cifar10_corrupted` (one builder config per corruption and severity,
                   `<name>_<severity>`), prepared in DATA_DIR or the default tfds data dir
  npy:DIR          the official .npy release (CIFAR-10-C or CIFAR-100-C): DIR/<name>.npy, uint8
                   [5 n, 32, 32, 3] holding severities 1..5 one after another, and DIR/labels.npy,
                   [5 n], the test labels repeated once per severity
  imagenet_c[:DATA_DIR]  tfds `imagenet2012_corrupted` (`<name>_<severity>`, split
                   'validation': the 50,000 validation images, 224 x 224), for 1,000-class
                   ImageNet models; an image goes to the model as it is where the model takes
                   224 x 224, resized to the model's size otherwise (`imagenet_view`), as the
                   benchmark's authors feed it

`check` looks at every file or builder a run will read and raises one UserError before any
model is loaded; `blocks` then reads one (corruption, severity) set, a chunk at a time."""
import os

import numpy as np
from PIL import Image

from bsd_jax.data import tfds_common
from bsd_jax.errors import UserError

# The 15 corruptions of Hendrycks & Dietterich (2019) that the CIFAR-C means are taken over.
CORRUPTIONS = ('gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur', 'glass_blur',
               'motion_blur', 'zoom_blur', 'snow', 'frost', 'fog', 'brightness', 'contrast',
               'elastic_transform', 'pixelate', 'jpeg_compression')
# The release's 4 extra ones, accepted by name.
EXTRA_CORRUPTIONS = ('speckle_noise', 'gaussian_blur', 'spatter', 'saturate')
SEVERITIES = (1, 2, 3, 4, 5)
# tfds names two of them differently from the release's files; results use the file names.
TFDS_NAMES = {'glass_blur': 'frosted_glass_blur', 'elastic_transform': 'elastic'}
HOW = ('CIFAR-10-C: python -m bsd_jax.prepare cifar10_corrupted/<corruption>_<severity> '
       '--data_dir D for each one used, where there is internet, or the .npy release '
       '(zenodo.org/records/2535967); CIFAR-100-C: the .npy release (zenodo.org/records/3555552),'
       ' untarred, passed as --corruptions npy:DIR; ImageNet-C: python -m bsd_jax.prepare '
       'imagenet2012_corrupted/<corruption>_<severity> --data_dir D --manual_dir M (M holding '
       'the imagenet2012 archives), then --corruptions imagenet_c:D')
KINDS = ('tfds', 'npy', 'imagenet_c')
IMAGENET_C = 'imagenet2012_corrupted'


def _parse(spec):
  kind, _, rest = spec.partition(':')
  if kind not in KINDS or (kind == 'npy' and not rest):
    raise UserError(f'--corruptions {spec!r}: give tfds, tfds:DATA_DIR, npy:DIR, imagenet_c or '
                    f'imagenet_c:DATA_DIR ({HOW})')
  return kind, rest or None


def canonical(names):
  """The release's file names for corruption names given either way (tfds or file)."""
  from_tfds = {v: k for k, v in TFDS_NAMES.items()}
  return [from_tfds.get(n, n) for n in names]


def _tfds_config(kind, name, severity):
  if kind == 'imagenet_c':  # tfds names ImageNet-C's corruptions as the release does
    return f'{IMAGENET_C}/{name}_{severity}'
  return f'cifar10_corrupted/{TFDS_NAMES.get(name, name)}_{severity}'


def _tfds_builder(kind, name, severity, data_dir):
  return tfds_common.open_builder(_tfds_config(kind, name, severity), data_dir,
                                  what='--corruptions')


def _unprepared(kind, names, severities, data_dir):
  """The tfds configs among (names x severities) that are not prepared in data_dir."""
  from absl import logging
  # tfds warns once per unprepared variant folder it looks at; the caller's one error says it all.
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)
  try:
    return [_tfds_config(kind, n, s) for n in names for s in severities
            if not _tfds_builder(kind, n, s, data_dir).is_prepared()]
  finally:
    logging.set_verbosity(verbosity)


def check(spec, names, severities, image_shape=None, num_classes=None):
  """UserError naming the first thing missing or malformed among the sets to be read.

  Cheap without `image_shape` and `num_classes` (only what exists); with them it also checks
  the .npy shapes and label range against the model's."""
  kind, where = _parse(spec)
  bad = [s for s in severities if s not in SEVERITIES]
  if bad or not severities:
    raise UserError(f'--corruption_severities: {bad or "none"}; severities are 1..5')
  if not names:
    raise UserError('--corruption_names: empty')
  if kind != 'npy':
    dataset, classes = ('cifar10_corrupted', 10) if kind == 'tfds' else (IMAGENET_C, 1000)
    unknown = [n for n in names if n not in CORRUPTIONS + EXTRA_CORRUPTIONS]
    if unknown:
      raise UserError(f'--corruption_names: tfds {dataset} has no {unknown[0]!r} (it has '
                      f'{", ".join(CORRUPTIONS + EXTRA_CORRUPTIONS)})')
    if num_classes not in (None, classes):
      raise UserError(f'--corruptions {spec}: {dataset} has {classes} classes, the model '
                      f'{num_classes} ({HOW})')
    if kind == 'tfds' and image_shape is not None and tuple(image_shape) != (32, 32, 3):
      raise UserError(f'--corruptions {spec}: cifar10_corrupted holds 32 x 32 x 3 images, the '
                      f'model takes {tuple(image_shape)}')
    missing = _unprepared(kind, names, severities, where)
    if missing:
      builder = _tfds_builder(kind, names[0], severities[0], where)
      more = f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''
      raise UserError(f'--corruptions {spec}: {missing[0]}{more} is not prepared in '
                      f'{builder.data_dir_root}. {HOW}')
    return
  if not os.path.isdir(where):
    raise UserError(f'--corruptions {spec}: {where} is not a directory ({HOW})')
  labels_path = os.path.join(where, 'labels.npy')
  if not os.path.exists(labels_path):
    raise UserError(f'--corruptions {spec}: {labels_path} is missing ({HOW})')
  labels = np.load(labels_path, mmap_mode='r')
  if labels.ndim != 1 or labels.shape[0] % len(SEVERITIES):
    raise UserError(f'{labels_path}: expected [5 n] labels (severities 1..5), got shape '
                    f'{labels.shape}')
  if num_classes is not None and not 0 <= labels.min() <= labels.max() < num_classes:
    raise UserError(f'{labels_path}: labels {labels.min()}..{labels.max()} do not fit the '
                    f'model\'s {num_classes} classes (CIFAR-10-C for a CIFAR-100 run?)')
  for name in names:
    path = os.path.join(where, f'{name}.npy')
    if not os.path.exists(path):
      raise UserError(f'--corruption_names: {path} is missing ({HOW})')
    if image_shape is None:
      continue
    images = np.load(path, mmap_mode='r')
    expected = (labels.shape[0],) + tuple(image_shape)
    if images.dtype != np.uint8 or images.shape != expected:
      raise UserError(f'{path}: expected uint8 {expected} (labels.npy has {labels.shape[0]} '
                      f'rows; the model takes {tuple(image_shape)}), got {images.dtype} '
                      f'{images.shape}')


def describe(spec):
  """What the results were computed on, for the JSON record."""
  kind, where = _parse(spec)
  if kind == 'npy':
    return f'npy:{os.path.abspath(where)}'
  dataset = 'cifar10_corrupted' if kind == 'tfds' else IMAGENET_C
  return f'tfds:{dataset}' + (f' in {where}' if where else '')


def imagenet_view(height, width):
  """view(uint8 image [224, 224, 3]) -> the image as an ImageNet-C model is fed it: as it is at
  the model's size, else resized (bilinear) to it."""
  def view(image):
    if image.shape[:2] == (height, width):
      return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
  return view


def blocks(spec, name, severity, max_samples=None, view=None, chunk=1024):
  """(uint8 images [n, H, W, C], int32 labels [n]) of one corruption at one severity, `chunk`
  images at a time from tfds (ImageNet-C's each through `view`), in one block from .npy."""
  kind, where = _parse(spec)
  if kind != 'npy':
    split = 'validation' if kind == 'imagenet_c' else 'test'
    for images, labels in tfds_common.iter_columns(
        _tfds_builder(kind, name, severity, where), split, ['image', 'label'],
        take=max_samples, chunk=chunk):
      if kind == 'imagenet_c':
        images = np.stack([view(im) for im in images])
      yield images.astype(np.uint8), labels.astype(np.int32)
    return
  labels = np.load(os.path.join(where, 'labels.npy'), mmap_mode='r')
  per = labels.shape[0] // len(SEVERITIES)
  lo = (severity - 1) * per
  hi = lo + (min(per, max_samples) if max_samples else per)
  block = np.load(os.path.join(where, f'{name}.npy'), mmap_mode='r')
  yield np.asarray(block[lo:hi]), np.asarray(labels[lo:hi], np.int32)
