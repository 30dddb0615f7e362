"""config.data.source = 'folder_stream': an image folder of any size and format (ordinary
photos), read per step through the streamed pipeline of the ImageNet source
(stream_batches.py): random-resized crop and flip for training, resize and centre crop for
evaluation, at config.data.stream.image_size, in grain's workers, each process reading only its
rows of each batch. The layout and the test split are folder_files.py's; every file is checked
before training starts (folder_files.scan)."""
import logging

from bsd_jax.data import folder_files, images, stream_source
from bsd_jax.errors import UserError


class FileRecords:
  """Random access to a split's images by position, in the tfds data source's shape
  (`__getitems__` -> [{'image': ...}]), so stream_batches.Records reads it like a prepared
  dataset. The image is opened here (upright RGB), not left as bytes: stream_batches decodes
  what it gets only when it is bytes."""

  def __init__(self, paths):
    self.paths = paths

  def __len__(self):
    return len(self.paths)

  def __getitems__(self, keys):
    out = []
    for k in keys:
      try:
        out.append({'image': images.open_rgb(self.paths[k])})
      except Exception as e:  # pylint: disable=broad-except  (Pillow's bomb error is not OSError)
        raise UserError(f'config.data.root: cannot read image {self.paths[k]}: {e}') from None
    return out


def load(d) -> stream_source.StreamDataset:
  files = folder_files.list_files(d)
  sizes = {s: folder_files.scan(files.paths[s]) for s in ('train', 'test')}
  both = sizes['train'].tolist() + sizes['test'].tolist()
  areas = sorted(w * h for w, h in both)
  logging.info('Image folder %s: %d classes, %d train and %d test images, %d to %d pixels '
               '(median %d), read at %d x %d', d.root, len(files.classes),
               len(files.paths['train']), len(files.paths['test']), areas[0], areas[-1],
               areas[len(areas) // 2], d.stream.image_size, d.stream.image_size)
  return stream_source.StreamDataset(
      files.name, files.labels['train'], files.labels['test'], len(files.classes),
      d.stream.image_size, FileRecords(files.paths['train']), FileRecords(files.paths['test']),
      'image', class_names=files.classes)
