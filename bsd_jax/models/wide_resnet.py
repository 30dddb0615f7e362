"""WideResNet-28-10 for CIFAR (Zagoruyko & Komodakis 2016), the other standard CIFAR backbone.

16-channel 3x3 stem, three groups of (28 - 4) / 6 = 4 pre-activation blocks of 160/320/640
channels (strides 1, 2, 2; a 1x1 projection on the pre-activated input where the width or
the stride changes), then BN-ReLU, global average pool and one dense layer: 36,479,194
parameters for 10 classes, as in the common PyTorch code (xternalz, bearpaw). Dropout 0, the
default of those codes (the train step passes no dropout rng). Float32 parameters and BatchNorm
statistics, `dtype` compute."""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from bsd_jax.models.preact_resnet import PreActBlock
from bsd_jax.models.resnet import conv_layer, head, norm_layer


class WideResNet(nn.Module):
  depth: int
  widen: int
  num_classes: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False, return_features: bool = False):
    blocks = (self.depth - 4) // 6
    x = x.astype(self.dtype)
    x = conv_layer(self.dtype)(16, (3, 3), padding=1)(x)
    for group, width in enumerate((16, 32, 64)):
      for b in range(blocks):
        stride = 2 if group > 0 and b == 0 else 1
        x = PreActBlock(planes=width * self.widen, stride=stride, dtype=self.dtype)(x, train)
    x = nn.relu(norm_layer(train, self.dtype)()(x))
    return head(x, self.num_classes, return_features)


def wrn28_10(num_classes, dtype=jnp.float32):
  return WideResNet(28, 10, num_classes, dtype)
