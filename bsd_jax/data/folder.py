"""config.data.source = 'folder': an image folder held in memory, for folders of small images of
one size (CIFAR-size); the layout and the test split are folder_files.py's. Only the images of
the rows asked for are decoded (a process reads its own rows). Photos of many sizes go through
'folder_stream' (folder_stream.py) instead."""
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bsd_jax.data import folder_files, images
from bsd_jax.data.dataset import Source
from bsd_jax.errors import UserError


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
                        f'{image_shape}, {path} is {im.shape}); set config.data.source = '
                        "'folder_stream' to read them per step at config.data.stream.image_size, "
                        'or resize them to one size first')
    return np.stack(decoded)

  return read


def load(d) -> Source:
  files = folder_files.list_files(d)
  logging.info('Reading image folder %s (%d classes)', d.root, len(files.classes))
  image_shape = _decode(files.paths['train'][0]).shape
  return Source(files.name, files.labels['train'], files.labels['test'], len(files.classes),
                image_shape, _folder_reader(files.paths, image_shape),
                class_names=files.classes)
