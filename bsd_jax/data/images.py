"""Image files on disk: which names are images, and decoding one to RGB (image folders and
OOD sets share it)."""
import numpy as np

from bsd_jax.errors import UserError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')


def is_image(name: str) -> bool:
  return name.lower().endswith(IMAGE_EXTENSIONS)


def decode_file(path, what: str, shown: str = None) -> np.ndarray:
  """uint8 [H, W, 3] of the image at `path` (a path or a file object, named `shown`); UserError
  naming `what` (the key or flag that led to the file) and the file when it cannot be read. A
  decompression bomb (a header claiming more pixels than Pillow's limit) is not an OSError and is
  one of them."""
  from PIL import Image
  try:
    with Image.open(path) as im:
      return np.asarray(im.convert('RGB'))
  except Image.DecompressionBombError as e:
    why = (f'{e} (over Pillow\'s decompression-bomb limit of {Image.MAX_IMAGE_PIXELS} pixels; '
           'a real image this large: make it smaller first)')
  except OSError as e:
    why = str(e)
  raise UserError(f'{what}: cannot read image {shown or path}: {why}') from None
