"""Image files on disk: which names are images, opening one as an upright RGB image, and checking
one without decoding it where that can be avoided (image folders and OOD sets share this).

Every image is turned upright by its EXIF orientation (a phone's photo stored sideways is shown
upright by every viewer, and is trained on upright here) and converted to RGB the way
torchvision's folder loader does (grey and CMYK converted, an alpha channel dropped)."""
import os

import numpy as np

from bsd_jax.errors import UserError

# The formats Pillow reads without extra packages (WebP where Pillow was built with it).
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.bmp', '.gif', '.tif', '.tiff')


def is_image(name: str) -> bool:
  return name.lower().endswith(IMAGE_EXTENSIONS) and not os.path.basename(name).startswith('.')


def _bomb_reason(e):
  from PIL import Image
  return (f"{e} (over Pillow's decompression-bomb limit of {Image.MAX_IMAGE_PIXELS} pixels; "
          'a real image this large: make it smaller first)')


def open_rgb(path):
  """The upright RGB PIL image at `path` (a path or a file object); OSError (or Pillow's
  DecompressionBombError) when it cannot be read."""
  from PIL import Image, ImageOps
  with Image.open(path) as im:
    im = ImageOps.exif_transpose(im)
    return im if im.mode == 'RGB' else im.convert('RGB')


def decode_file(path, what: str, shown: str = None) -> np.ndarray:
  """uint8 [H, W, 3] of the image at `path` (a path or a file object, named `shown`); UserError
  naming `what` (the key or flag that led to the file) and the file when it cannot be read. A
  decompression bomb (a header claiming more pixels than Pillow's limit) is not an OSError and is
  one of them."""
  from PIL import Image
  try:
    return np.asarray(open_rgb(path))
  except Image.DecompressionBombError as e:
    why = _bomb_reason(e)
  except OSError as e:
    why = str(e) or type(e).__name__
  raise UserError(f'{what}: cannot read image {shown or path}: {why}') from None


def _ends_whole(path, fmt, size):
  """Whether the file ends as a whole file of its format does (JPEG's end-of-image marker, PNG's
  IEND chunk, WebP's RIFF length): a cut-off file does not. None: the format has no such mark."""
  marks = {'JPEG': 2, 'PNG': 12, 'WEBP': 0}
  if fmt not in marks:
    return None
  with open(path, 'rb') as f:
    if fmt == 'WEBP':
      f.seek(4)
      return int.from_bytes(f.read(4), 'little') + 8 == size
    f.seek(size - marks[fmt])
    tail = f.read()
  return tail.startswith(b'\xff\xd9') if fmt == 'JPEG' else tail[4:8] == b'IEND'


def check(path) -> tuple:
  """(width, height) of the image file at `path` as it will be read (EXIF-rotated), found from
  its header; raises ValueError saying why the file cannot be trained on: empty, not an image,
  over the decompression-bomb limit, or cut off. Whole files are recognised by their last bytes;
  a file without that mark (a JPEG with bytes after its end, a format with no mark) is decoded
  in full to be sure."""
  from PIL import Image
  size = os.path.getsize(path)
  if size == 0:
    raise ValueError('empty file')
  try:
    with Image.open(path) as im:
      width, height = im.size
      if _ends_whole(path, im.format, size) is not True:
        im.load()
      rotated = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
  except Image.DecompressionBombError as e:
    raise ValueError(_bomb_reason(e)) from None
  except Image.UnidentifiedImageError:
    raise ValueError('not an image Pillow can read') from None
  except (OSError, SyntaxError) as e:
    raise ValueError(str(e) or type(e).__name__) from None
  return (height, width) if rotated else (width, height)
