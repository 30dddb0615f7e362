"""config.data.source = 'tiny_imagenet': the official tiny-imagenet-200 directory or its zip
(data.root), read whole into memory like an image folder.

Layout: wnids.txt (the 200 class ids), words.txt (id -> names), train/<wnid>/images/*.JPEG,
val/images/*.JPEG with val/val_annotations.txt (file name, wnid, box); the validation set is the
test split, test/ (unlabeled) is not read. Class index = the position of the wnid in sorted
order (what an image folder over train/ would give); class names: the first name words.txt gives
each wnid. Every file is checked before an image is decoded: a missing or malformed one is a
one-line error naming it."""
import io
import logging
import os
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bsd_jax.data import images
from bsd_jax.data.dataset import Source
from bsd_jax.errors import UserError

IMAGE_SHAPE = (64, 64, 3)


class _Tree:
  """Files of the layout by their path relative to the top directory, in a directory or a zip
  (whose top directory, e.g. tiny-imagenet-200/, is found by its wnids.txt)."""

  def __init__(self, root):
    self.root = root
    self.zip = None
    if os.path.isfile(root):
      try:
        self.zip = zipfile.ZipFile(root)
      except zipfile.BadZipFile as e:
        raise UserError(f'config.data.root: {root} is not a directory or a zip file ({e})') \
            from None
      names = self.zip.namelist()
      tops = [n[:-len('wnids.txt')] for n in names
              if (n == 'wnids.txt' or n.endswith('/wnids.txt')) and n.count('/') <= 1]
      if not tops:
        raise UserError(f'config.data.root: {root} holds no wnids.txt (expected the official '
                        'tiny-imagenet-200 zip)')
      self.prefix = min(tops, key=len)
      self.names = {n[len(self.prefix):] for n in names if n.startswith(self.prefix)}
    elif not os.path.isdir(root):
      raise UserError(f'config.data.root: {root} is not a directory or a zip file')

  def where(self, rel):
    return f'{self.root}:{self.prefix}{rel}' if self.zip else os.path.join(self.root, rel)

  def exists(self, rel):
    return rel in self.names if self.zip else os.path.exists(os.path.join(self.root, rel))

  def read(self, rel) -> bytes:
    if not self.exists(rel):
      raise UserError(f'config.data.root: {self.where(rel)} is missing (expected the official '
                      'tiny-imagenet-200 layout: wnids.txt, words.txt, train/, val/)')
    try:
      if self.zip:
        return self.zip.read(self.prefix + rel)
      with open(os.path.join(self.root, rel), 'rb') as f:
        return f.read()
    except (OSError, zipfile.BadZipFile, zlib.error) as e:
      raise UserError(f'config.data.root: cannot read {self.where(rel)} ({e})') from None

  def lines(self, rel):
    try:
      text = self.read(rel).decode()
    except UnicodeDecodeError:
      raise UserError(f'config.data.root: {self.where(rel)} is not a text file') from None
    return [line for line in text.splitlines() if line.strip()]

  def list_images(self, rel_dir):
    """Sorted names of the .JPEG files in rel_dir."""
    if self.zip:
      start = rel_dir.rstrip('/') + '/'
      found = [n[len(start):] for n in self.names if n.startswith(start)
               and '/' not in n[len(start):]]
    else:
      path = os.path.join(self.root, rel_dir)
      found = os.listdir(path) if os.path.isdir(path) else []
    return sorted(n for n in found if n.lower().endswith('.jpeg'))


def _decode(tree, rel):
  image = images.decode_file(io.BytesIO(tree.read(rel)), 'config.data.root', tree.where(rel))
  if image.shape != IMAGE_SHAPE:
    raise UserError(f'config.data.root: {tree.where(rel)} is {image.shape[1]}x{image.shape[0]}, '
                    'not 64x64 (Tiny ImageNet images are 64x64)')
  return image


def _class_names(tree, wnids):
  names = {}
  for number, line in enumerate(tree.lines('words.txt'), 1):
    wnid, sep, words = line.partition('\t')
    if not sep:
      raise UserError(f'config.data.root: {tree.where("words.txt")} line {number} is not '
                      '"<wnid><tab><names>"')
    names[wnid.strip()] = words.split(',')[0].strip()
  return tuple(names.get(w, w) for w in wnids)


def load(d) -> Source:
  if not d.root:
    raise UserError("config.data.root must be set for config.data.source = 'tiny_imagenet' "
                    '(the tiny-imagenet-200 directory or its zip)')
  tree = _Tree(d.root)
  wnids = sorted(line.strip() for line in tree.lines('wnids.txt'))
  if not wnids or len(set(wnids)) != len(wnids):
    raise UserError(f'config.data.root: {tree.where("wnids.txt")} must list distinct class ids, '
                    'one per line')
  index = {w: i for i, w in enumerate(wnids)}
  paths, labels = {'train': [], 'test': []}, {'train': [], 'test': []}
  for w in wnids:
    files = tree.list_images(f'train/{w}/images')
    if not files:
      raise UserError(f'config.data.root: {tree.where(f"train/{w}/images")} holds no .JPEG '
                      f'images (class {w} of wnids.txt)')
    paths['train'] += [f'train/{w}/images/{f}' for f in files]
    labels['train'] += [index[w]] * len(files)
  val_files, seen = set(tree.list_images('val/images')), set()
  for number, line in enumerate(tree.lines('val/val_annotations.txt'), 1):
    fields = line.split('\t')
    if len(fields) < 2 or fields[1] not in index or fields[0] not in val_files:
      what = ('a wnid not in wnids.txt' if len(fields) >= 2 and fields[1] not in index else
              'an image not in val/images' if len(fields) >= 2 else 'not "<file><tab><wnid>..."')
      raise UserError(f'config.data.root: {tree.where("val/val_annotations.txt")} line {number} '
                      f'names {what}: {line.strip()[:80]!r}')
    if f'val/images/{fields[0]}' in seen:
      raise UserError(f'config.data.root: {tree.where("val/val_annotations.txt")} line {number} '
                      f'lists {fields[0]} a second time')
    seen.add(f'val/images/{fields[0]}')
    paths['test'].append(f'val/images/{fields[0]}')
    labels['test'].append(index[fields[1]])
  unannotated = sorted(f for f in val_files if f'val/images/{f}' not in seen)
  if unannotated:
    raise UserError(f'config.data.root: {tree.where("val/images/" + unannotated[0])} has no line '
                    f'in val/val_annotations.txt ({len(unannotated)} of {len(val_files)} '
                    'validation images have none): restore the annotations file')
  if len(wnids) == 200 and len(paths['test']) != 10_000:
    raise UserError(f'config.data.root: {tree.where("val/images")} holds '
                    f'{len(paths["test"])} annotated images; Tiny ImageNet has 10,000 (50 per '
                    'class): restore the validation set')
  logging.info('Tiny ImageNet at %s: %d classes, %d train and %d validation (test) images',
               d.root, len(wnids), len(paths['train']), len(paths['test']))

  def read(split, ids):
    chosen = [paths[split][i] for i in ids]
    if tree.zip:  # one zip handle: decoded in this thread
      return np.stack([_decode(tree, rel) for rel in chosen])
    with ThreadPoolExecutor(max(4, os.cpu_count() or 1)) as pool:
      return np.stack(list(pool.map(lambda rel: _decode(tree, rel), chosen, chunksize=256)))

  return Source(f'tiny_imagenet:{os.path.abspath(d.root)}',
                np.asarray(labels['train'], np.int32), np.asarray(labels['test'], np.int32),
                len(wnids), IMAGE_SHAPE, read, class_names=_class_names(tree, wnids))
