"""config.data.source = 'synthetic': random images around one random template per class (fixed
seed), learnable and needing no download (the smoke config, tests, benchmarks)."""
import numpy as np

from bsd_jax.data.dataset import Source


def load(d) -> Source:
  s = d.synthetic
  rng = np.random.default_rng(s.seed)
  shape = (s.image_size, s.image_size, 3)
  templates = rng.uniform(0, 255, (s.num_classes,) + shape)

  def split(n):
    labels = rng.integers(0, s.num_classes, n).astype(np.int32)
    noise = rng.uniform(0, 255, (n,) + shape)
    images = (0.5 * templates[labels] + 0.5 * noise).astype(np.uint8)
    return images, labels

  train, test = split(s.num_train), split(s.num_test)  # generated whole: one seeded stream
  images = {'train': train[0], 'test': test[0]}
  return Source(f'synthetic-{s.num_classes}-{s.num_train}-{s.seed}', train[1], test[1],
                s.num_classes, shape, lambda split, ids: images[split][ids])
