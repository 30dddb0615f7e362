"""What a trained run's model sees of an image from outside its data: the evaluation view of its
data source (the classify command, the shift and corruption suites)."""
import numpy as np
from PIL import Image

from bsd_jax.data import host_augment


def model_view(config, ds):
  """(height, width, view): view(image) -> the uint8 image [height, width, C] the run's model
  sees for an RGB PIL image or encoded image bytes: a streamed source's evaluation view (the
  shorter side resized to data.stream.eval_resize, then the central crop); for an in-memory
  source, the training images' size (another size: the shorter side to theirs and the centre,
  or a plain resize where they are not square), grey where they are."""
  if ds.streamed:
    size, resize = ds.image_size, config.data.stream.eval_resize
    return size, size, lambda image: host_augment.eval_view(image, size, resize)
  h, w, channels = ds.test_images.shape[1:]

  def view(image):
    image = host_augment.decode(image)
    if image.size == (w, h):
      pixels = np.asarray(image)
    else:
      pixels = (host_augment.eval_view(image, h, h) if h == w
                else np.asarray(image.resize((w, h), Image.BILINEAR)))
    if channels == 1:
      return np.asarray(Image.fromarray(pixels).convert('L'))[..., None]
    return pixels

  return h, w, view
