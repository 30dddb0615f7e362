"""config.data.source = 'folder': <root>/{train,test}/<class>/*.{png,jpg}; class order = sorted
folder names. Only the images of the rows asked for are decoded (a process reads its own rows)."""
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bsd_jax.data import images
from bsd_jax.data.dataset import Source
from bsd_jax.errors import UserError


def _list_folder_split(root, split):
  path = os.path.join(root, split)
  if not os.path.isdir(path):
    raise UserError(f'config.data.root: {path} is missing (expected {split}/<class>/*.png|jpg)')
  classes = sorted(e.name for e in os.scandir(path) if e.is_dir())
  if not classes:
    raise UserError(f'config.data.root: {path} has no class folders')
  files = {}
  for c in classes:
    cdir = os.path.join(path, c)
    names = sorted(n for n in os.listdir(cdir) if images.is_image(n))
    if not names:
      raise UserError(f'config.data.root: class folder {cdir} holds no .png/.jpg images')
    files[c] = [os.path.join(cdir, n) for n in names]
  return classes, files


def _decode(path):
  return images.decode_file(path, 'config.data.root')


def _folder_reader(paths, image_shape):
  """read(split, ids): the images at paths[split][ids], all of image_shape (one decode per id)."""
  def read(split, ids):
    chosen = [paths[split][i] for i in ids]
    with ThreadPoolExecutor(max(4, os.cpu_count() or 1)) as pool:
      decoded = list(pool.map(_decode, chosen, chunksize=256))
    for path, im in zip(chosen, decoded):
      if im.shape != image_shape:
        raise UserError(f'config.data.root: images differ in size ({paths["train"][0]} is '
                        f'{image_shape}, {path} is {im.shape}); resize them to one size first')
    return np.stack(decoded)

  return read


def load(d) -> Source:
  """<root>/{train,test}/<class>/*.{png,jpg}; class order = sorted folder names."""
  if not d.root:
    raise UserError("config.data.root must be set for config.data.source = 'folder'")
  if not os.path.isdir(d.root):
    raise UserError(f'config.data.root: {d.root} is not a directory')
  train_classes, train_files = _list_folder_split(d.root, 'train')
  test_classes, test_files = _list_folder_split(d.root, 'test')
  if train_classes != test_classes:
    only_train = sorted(set(train_classes) - set(test_classes))
    only_test = sorted(set(test_classes) - set(train_classes))
    raise UserError(f'config.data.root: class folders differ between {d.root}/train and /test '
                    f'(only in train: {only_train[:5]}, only in test: {only_test[:5]})')
  logging.info('Reading image folder %s (%d classes)', d.root, len(train_classes))
  paths, labels = {}, {}
  for split, files in (('train', train_files), ('test', test_files)):
    paths[split] = [p for c in train_classes for p in files[c]]
    labels[split] = np.asarray([i for i, c in enumerate(train_classes) for _ in files[c]], np.int32)
  image_shape = _decode(paths['train'][0]).shape
  return Source(f'folder:{os.path.abspath(d.root)}', labels['train'], labels['test'],
                len(train_classes), image_shape, _folder_reader(paths, image_shape),
                class_names=tuple(train_classes))
