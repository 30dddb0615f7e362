"""Image files on disk: which names are images, and decoding one to RGB (image folders and
OOD sets share it)."""
import numpy as np

from bsd_jax.errors import UserError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')


def is_image(name: str) -> bool:
  return name.lower().endswith(IMAGE_EXTENSIONS)


def unreadable(e) -> str:
  """Why Pillow could not read an image, for a one-line error; None when `e` is not an image
  reading error. A decompression bomb (a header claiming more pixels than Pillow's limit,
  Image.MAX_IMAGE_PIXELS) is not an OSError and is one of them."""
  from PIL import Image
  if isinstance(e, Image.DecompressionBombError):
    return (f'{e} (over Pillow\'s decompression-bomb limit of {Image.MAX_IMAGE_PIXELS} pixels; '
            'a real image this large: make it smaller first)')
  return str(e) if isinstance(e, OSError) else None


def decode_file(path: str, what: str) -> np.ndarray:
  """uint8 [H, W, 3] of the image at `path`; UserError naming `what` (the key or flag that led
  to the file) and the file when it cannot be read."""
  from PIL import Image
  try:
    with Image.open(path) as im:
      return np.asarray(im.convert('RGB'))
  except Exception as e:  # noqa: BLE001 - narrowed by unreadable()
    why = unreadable(e)
    if why is None:
      raise
    raise UserError(f'{what}: cannot read image {path}: {why}') from None
