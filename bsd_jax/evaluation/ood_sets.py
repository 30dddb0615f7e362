"""Out-of-distribution image sets for the `ood` evaluation suite, by a one-string spec.

  folder:PATH      every .png/.jpg under PATH (recursively, sorted), e.g. a CIFAR test folder
  mnist:PATH       an MNIST idx file of images (t10k-images-idx3-ubyte[.gz])
  npy:PATH         a uint8 array [N, H, W] or [N, H, W, C]
  tfds:NAME[:SPLIT]  a prepared tfds dataset (default split 'test'), e.g. tfds:svhn_cropped

Images are brought to the in-distribution shape: grey -> RGB by repetition, other sizes resized
(bilinear). At most `max_samples` images are read (the first ones)."""
import gzip
import os

import numpy as np

from bsd_jax.data import images as image_files
from bsd_jax.data import tfds_common
from bsd_jax.errors import UserError


def _folder(path, max_samples):
  files = sorted(os.path.join(d, n) for d, _, names in os.walk(path) for n in names
                 if image_files.is_image(n))
  if not files:
    raise UserError(f'--ood folder:{path}: no .png/.jpg images under it')
  return np.stack([image_files.decode_file(f, f'--ood folder:{path}') for f in files[:max_samples]])


def _mnist(path, max_samples):
  opener = gzip.open if path.endswith('.gz') else open
  with opener(path, 'rb') as f:
    raw = f.read()
  magic, n, rows, cols = np.frombuffer(raw[:16], '>i4')
  if magic != 2051:
    raise UserError(f'--ood mnist:{path}: not an idx3 image file (magic {magic}, expected 2051)')
  return np.frombuffer(raw[16:], np.uint8).reshape(n, rows, cols)[:max_samples]


def _npy(path, max_samples):
  images = np.load(path, mmap_mode='r')
  if images.dtype != np.uint8 or images.ndim not in (3, 4):
    raise UserError(f'--ood npy:{path}: expected uint8 [N, H, W(, C)], got {images.dtype} '
                    f'{images.shape}')
  return np.asarray(images[:max_samples])


def _tfds(spec, max_samples):
  name, _, split = spec.partition(':')
  builder = tfds_common.open_builder(name, None, what=f'--ood tfds:{spec}')
  if not builder.is_prepared():
    raise UserError(f'--ood tfds:{spec}: not prepared in {builder.data_dir_root}; prepare it '
                    f'where there is internet (python -m bsd_jax.prepare {name} --data_dir '
                    f'{builder.data_dir_root}) or pass a folder: set')
  images, = tfds_common.read_columns(builder, split or 'test', ['image'], take=max_samples)
  return images


def _conform(images, shape):
  """uint8 [N, H, W(, C)] -> uint8 [N, *shape]."""
  if images.ndim == 3:
    images = images[..., None]
  if images.shape[-1] == 1 and shape[-1] == 3:
    images = np.repeat(images, 3, axis=-1)
  if images.shape[1:3] != tuple(shape[:2]):
    from PIL import Image
    images = np.stack([np.asarray(Image.fromarray(im.squeeze()).resize(
        (shape[1], shape[0]), Image.BILINEAR)).reshape(shape) for im in images])
  if images.shape[1:] != tuple(shape):
    raise UserError(f'--ood: images of shape {images.shape[1:]} cannot be brought to {shape}')
  return images.astype(np.uint8)


_READERS = {'folder': _folder, 'mnist': _mnist, 'npy': _npy, 'tfds': _tfds}


def check(spec):
  """UserError for a malformed spec or a missing path (before any work)."""
  kind, sep, rest = spec.partition(':')
  if not sep or kind not in _READERS:
    raise UserError(f'--ood {spec!r}: give KIND:PATH with KIND one of {sorted(_READERS)}')
  if kind != 'tfds' and not os.path.exists(rest):
    raise UserError(f'--ood {spec}: {rest} does not exist')


def load(spec, shape, max_samples=10_000):
  """uint8 [n, *shape] images of the OOD set named by `spec`."""
  check(spec)
  kind, _, rest = spec.partition(':')
  return _conform(_READERS[kind](rest, max_samples), shape)
