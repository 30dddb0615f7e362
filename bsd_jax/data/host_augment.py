"""Decoding and augmentation of streamed images on the host (the standard ImageNet recipe).

Streamed images come in every size, so they are cropped to one size before they reach the
devices; the work runs in grain's workers (bsd_jax/data/stream_batches.py). Training:
random-resized crop (area 8%-100% of the image, aspect ratio 3/4-4/3, torchvision's
RandomResizedCrop with its 10 tries and central fallback), bilinear resize to `size`,
horizontal flip with probability 1/2. Evaluation: resize the shorter side to `resize` (bilinear), then the central `size` x
`size` crop. All randomness comes from the numpy Generator passed in."""
import io
import math

import numpy as np
from PIL import Image

SCALE = (0.08, 1.0)
RATIO = (3 / 4, 4 / 3)


def decode(encoded) -> Image.Image:
  """JPEG/PNG bytes -> an RGB PIL image (grey and CMYK images converted); an image a source
  opened already (the image folder's) is taken as it is."""
  image = encoded if isinstance(encoded, Image.Image) else Image.open(io.BytesIO(encoded))
  return image.convert('RGB') if image.mode != 'RGB' else image


def crop_box(height, width, rng, scale=SCALE, ratio=RATIO):
  """(top, left, h, w) of a random-resized crop, torchvision's algorithm."""
  area = height * width
  log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
  for _ in range(10):
    target = area * rng.uniform(*scale)
    aspect = math.exp(rng.uniform(*log_ratio))
    w = int(round(math.sqrt(target * aspect)))
    h = int(round(math.sqrt(target / aspect)))
    if 0 < w <= width and 0 < h <= height:
      return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
  in_ratio = width / height  # fallback: the central crop with the ratio clamped
  if in_ratio < ratio[0]:
    w, h = width, int(round(width / ratio[0]))
  elif in_ratio > ratio[1]:
    h, w = height, int(round(height * ratio[1]))
  else:
    h, w = height, width
  return (height - h) // 2, (width - w) // 2, h, w


def train_view(encoded: bytes, size: int, rng: np.random.Generator) -> np.ndarray:
  """uint8 [size, size, 3]: random-resized crop and random horizontal flip."""
  image = decode(encoded)
  top, left, h, w = crop_box(image.height, image.width, rng)
  image = image.resize((size, size), Image.BILINEAR, box=(left, top, left + w, top + h))
  out = np.asarray(image)
  return np.ascontiguousarray(out[:, ::-1]) if rng.random() < 0.5 else out


def eval_view(encoded: bytes, size: int, resize: int) -> np.ndarray:
  """uint8 [size, size, 3]: shorter side resized to `resize`, then the central crop."""
  image = decode(encoded)
  short, long = sorted((image.width, image.height))
  other = int(resize * long / short)
  new = (resize, other) if image.width <= image.height else (other, resize)
  image = image.resize(new, Image.BILINEAR)
  top = int(round((image.height - size) / 2.0))
  left = int(round((image.width - size) / 2.0))
  return np.asarray(image.crop((left, top, left + size, top + size)))
