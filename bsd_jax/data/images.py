"""Image files on disk: which names are images, and decoding one to RGB (image folders and
OOD sets share it)."""
import numpy as np

from bsd_jax.errors import UserError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')


def is_image(name: str) -> bool:
  return name.lower().endswith(IMAGE_EXTENSIONS)


def decode_file(path: str, what: str) -> np.ndarray:
  """uint8 [H, W, 3] of the image at `path`; UserError naming `what` (the key or flag that led
  to the file) and the file when it cannot be read."""
  from PIL import Image
  try:
    with Image.open(path) as im:
      return np.asarray(im.convert('RGB'))
  except OSError as e:
    raise UserError(f'{what}: cannot read image {path}: {e}') from None
