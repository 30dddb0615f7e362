"""On-device augmentation and normalisation of uint8 image batches (CIFAR-size data).

Random crop after zero padding plus horizontal flip, the standard CIFAR recipe. Randomness comes
from one key per step; the draws do not depend on how the batch is sharded."""
import jax
import jax.numpy as jnp


def crop_and_flip(images, key, pad: int = 4):
  """Random `pad`-pixel translation (zero padded) and random left-right flip, per image."""
  b, h, w, _ = images.shape
  k_y, k_x, k_f = jax.random.split(key, 3)
  oy = jax.random.randint(k_y, (b,), 0, 2 * pad + 1)
  ox = jax.random.randint(k_x, (b,), 0, 2 * pad + 1)
  flip = jax.random.bernoulli(k_f, 0.5, (b,))
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))

  def one(img, y, x, f):
    img = jax.lax.dynamic_slice(img, (y, x, 0), (h, w, img.shape[-1]))
    return jnp.where(f, img[:, ::-1], img)

  return jax.vmap(one)(padded, oy, ox, flip)


def normalize(images, mean, std):
  """uint8 [.., C] -> float32 standardised with the train split's per-channel mean and std."""
  return standardize(images.astype(jnp.float32) / 255.0, mean, std)


def standardize(x, mean, std):
  """Float images on the [0, 1] scale (e.g. under attack) -> the model's input."""
  return (x - mean) / std
