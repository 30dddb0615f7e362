"""Small folders of photo-like images as a user's own folder holds them: every image a different
size, and the formats and modes cycled (JPEG, PNG, WebP, grey, CMYK, RGBA, a JPEG stored sideways
with an EXIF orientation; the writer of the guide's examples/photo_folder.py), with a stray
non-image file in a class folder. Each class has its own mean colour, so a model can learn them;
`bad_image` writes the files that cannot be trained on."""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image

from examples.photo_folder import KINDS, write_image  # noqa: F401 (tests use both)


def _pixels(rng, k, num_classes, size):
  w, h = size
  colour = np.array([255 * k / max(1, num_classes - 1), 128, 255 - 255 * k / max(1, num_classes - 1)])
  noise = rng.normal(0, 40, (h, w, 3))
  return np.clip(colour + noise, 0, 255).astype(np.uint8)


def make(root, classes=('cat', 'dog', 'fox'), per_class=6, splits=('train', 'test'), seed=0,
         sizes=(24, 64)):
  """root/<split>/<class>/<i>.<ext>: per_class images of each class in each split, sides drawn
  from `sizes`; returns {path: (kind, upright pixels)}."""
  rng = np.random.default_rng(seed)
  written, n = {}, 0
  for split in splits:
    for k, c in enumerate(classes):
      folder = os.path.join(root, split, c)
      os.makedirs(folder, exist_ok=True)
      for i in range(per_class):
        kind = KINDS[n % len(KINDS)]
        n += 1
        pixels = _pixels(rng, k, len(classes), tuple(rng.integers(*sizes, 2)))
        written[write_image(os.path.join(folder, f'{i:03d}'), kind, pixels)] = (kind, pixels)
      with open(os.path.join(folder, 'notes.txt'), 'w') as f:
        f.write('not an image\n')
  return written


def _png_chunk(kind, body):
  return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))


def bad_image(path, kind):
  """Writes a file that cannot be trained on, of `kind`: 'broken' (not an image), 'truncated'
  (a JPEG cut off), 'truncated_png', 'empty', 'oversized' (a valid PNG header claiming
  30000 x 30000 pixels, over Pillow's decompression-bomb limit)."""
  good = io.BytesIO()
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8)).save(
      good, 'PNG' if kind == 'truncated_png' else 'JPEG')
  data = {
      'broken': b'this is not an image, whatever its name says\n' * 4,
      'truncated': good.getvalue()[:len(good.getvalue()) // 2],
      'truncated_png': good.getvalue()[:len(good.getvalue()) // 2],
      'empty': b'',
      'oversized': (b'\x89PNG\r\n\x1a\n'
                    + _png_chunk(b'IHDR', struct.pack('>IIBBBBB', 30000, 30000, 8, 2, 0, 0, 0))
                    + _png_chunk(b'IDAT', zlib.compress(b'\0' * 16))
                    + _png_chunk(b'IEND', b'')),
  }[kind]
  with open(path, 'wb') as f:
    f.write(data)
