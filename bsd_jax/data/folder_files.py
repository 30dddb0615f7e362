"""The files of an image folder, shared by its in-memory source ('folder') and its streamed one
('folder_stream'): <root>/train/<class>/<image>, and the test split from <root>/test/, else
<root>/val/, else held out of train/ (config.data.test_fraction). Class order = sorted folder
names; within a split, files in class order, then by name. A file whose name does not end in an
image extension (bsd_jax/data/images.py) is ignored, and so is a hidden one (.DS_Store).

`scan` checks every file before training: an image that cannot be trained on stops the run in one
line naming it, instead of a batch failing hours later. Bad images are not skipped: a sample's id
is its position in the split and its row in the per-sample table, so a silently dropped file
would renumber every sample after it between two starts of one run."""
import dataclasses
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bsd_jax import distributed
from bsd_jax.data import images
from bsd_jax.errors import UserError

TEST_FOLDERS = ('test', 'val')  # the first present is the test split
TEST_SEED = 0  # the held-out test split is the same in every run of a folder


@dataclasses.dataclass
class FolderFiles:
  name: str                # the dataset's identity recorded in checkpoints
  classes: tuple           # folder names, sorted: class k is classes[k]
  paths: dict              # split ('train', 'test') -> [file path], in sample-id order
  labels: dict             # split -> int32 [N]


def _list_split(path):
  if not os.path.isdir(path):
    raise UserError(f'config.data.root: {path} is missing (expected '
                    f'{os.path.basename(path)}/<class>/<images>)')
  classes = sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith('.'))
  if not classes:
    raise UserError(f'config.data.root: {path} has no class folders')
  files = {}
  for c in classes:
    cdir = os.path.join(path, c)
    names = sorted(n for n in os.listdir(cdir) if images.is_image(n))
    if not names:
      raise UserError(f'config.data.root: class folder {cdir} holds no images '
                      f'({"/".join(e[1:] for e in images.IMAGE_EXTENSIONS)})')
    files[c] = [os.path.join(cdir, n) for n in names]
  return classes, files


def _held_out(files, fraction):
  """(train files, test files) per class: round(n * fraction) of a class's n files, at least one
  and leaving one, drawn with a fixed seed."""
  rng = np.random.default_rng(TEST_SEED)
  train, test = {}, {}
  for c, paths in files.items():
    n = len(paths)
    t = min(n - 1, max(1, round(n * fraction)))
    chosen = set(rng.permutation(n)[:t].tolist())
    train[c] = [p for i, p in enumerate(paths) if i not in chosen]
    test[c] = [p for i, p in enumerate(paths) if i in chosen]
  return train, test


def list_files(d) -> FolderFiles:
  """The files and labels of both splits of the folder config.data (`d`) names."""
  if not d.root:
    raise UserError(f"config.data.root must be set for config.data.source = '{d.source}'")
  if not os.path.isdir(d.root):
    raise UserError(f'config.data.root: {d.root} is not a directory')
  root = os.path.abspath(d.root)
  classes, train = _list_split(os.path.join(root, 'train'))
  present = [s for s in TEST_FOLDERS if os.path.isdir(os.path.join(root, s))]
  fraction = d.get('test_fraction') or 0
  name = f'folder:{root}'
  if fraction:
    if present:
      raise UserError(f'config.data.test_fraction = {fraction}: {root} has its own {present[0]}/ '
                      'split; set config.data.test_fraction = 0 to use it')
    train, test = _held_out(train, fraction)
    name += f'[test_fraction={fraction}]'
  elif not present:
    raise UserError(f'config.data.root: {root} has no test/ or val/ folder; add one, or hold '
                    'out part of train/ with config.data.test_fraction (e.g. 0.2)')
  else:
    test_classes, test = _list_split(os.path.join(root, present[0]))
    if test_classes != classes:
      only_train = sorted(set(classes) - set(test_classes))
      only_test = sorted(set(test_classes) - set(classes))
      raise UserError(f'config.data.root: class folders differ between {root}/train and '
                      f'/{present[0]} (only in train: {only_train[:5]}, only in '
                      f'{present[0]}: {only_test[:5]})')
  paths, labels = {}, {}
  for split, files in (('train', train), ('test', test)):
    paths[split] = [p for c in classes for p in files[c]]
    labels[split] = np.asarray([k for k, c in enumerate(classes) for _ in files[c]], np.int32)
  return FolderFiles(name, tuple(classes), paths, labels)


def _check(path):
  try:
    return images.check(path), None
  except (ValueError, OSError) as e:
    return (0, 0), str(e)


def scan(paths, what='config.data.root') -> np.ndarray:
  """int64 [N, 2]: (width, height) of each image, as read (EXIF-rotated). UserError naming the
  first file that cannot be trained on (and how many more there are) before any is trained on.

  In a multi-process job each process checks an equal share and the shares are exchanged (a
  collective: every process calls it)."""
  import jax
  start = time.perf_counter()
  n = len(paths)
  mine = np.arange(jax.process_index(), n, jax.process_count())
  sizes = np.zeros((n, 3), np.int64)  # width, height, bad
  with ThreadPoolExecutor(min(32, 4 * (os.cpu_count() or 1))) as pool:
    for i, (size, error) in zip(mine, pool.map(_check, [paths[i] for i in mine], chunksize=64)):
      sizes[i] = (*size, error is not None)
  sizes = distributed.sum_over_processes(sizes)
  bad = np.flatnonzero(sizes[:, 2])
  if bad.size:
    for i in bad[1:21]:
      logging.error('%s: cannot read image %s: %s', what, paths[i], _check(paths[i])[1])
    more = f' ({bad.size - 1} more unreadable images, the first 20 listed above)' if (
        bad.size > 1) else ''
    raise UserError(f'{what}: cannot read image {paths[bad[0]]}: {_check(paths[bad[0]])[1]}'
                    f'{more}; fix or remove it')
  logging.info('Checked %d images in %.1f s', n, time.perf_counter() - start)
  return sizes[:, :2]
