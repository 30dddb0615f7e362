"""A small VGG-style CNN: for tests, smoke runs and CPU experiments.

Each width is a stage of conv3x3-BN-ReLU followed by 2x2 max-pool; then global average pool and
a dense layer. Parameters and BatchNorm statistics are float32; `dtype` is the compute dtype."""
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp


class SmallCNN(nn.Module):
  num_classes: int
  widths: Sequence[int] = (16, 32)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False, return_features: bool = False):
    x = x.astype(self.dtype)
    for width in self.widths:
      x = nn.Conv(width, (3, 3), padding=1, use_bias=False, dtype=self.dtype)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)(x)
      x = nn.max_pool(nn.relu(x), (2, 2), (2, 2))
    features = jnp.mean(x, axis=(1, 2)).astype(jnp.float32)
    logits = nn.Dense(self.num_classes, dtype=jnp.float32)(features)
    return (logits, features) if return_features else logits
