"""DenseNet-BC (Huang et al. 2017): DenseNet-BC-100 (k=12) for CIFAR, DenseNet-121/264 (k=32)
for ImageNet-size inputs.

Every layer is BN-ReLU-conv1x1(4k)-BN-ReLU-conv3x3(k) and its k output channels are
concatenated to its input; between blocks a transition BN-ReLU-conv1x1 halves the channels
(compression 0.5) and a 2x2 average pool halves the resolution; after the last block
BN-ReLU, global average pool, one dense layer. CIFAR stem: one 3x3 conv to 2k channels (the
paper's code). ImageNet stem: 7x7 stride-2 conv to 64 channels, BN-ReLU, 3x3 stride-2 max-pool
(torchvision). Float32 parameters and BatchNorm statistics, `dtype` compute."""
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from bsd_jax.models.resnet import conv_layer, head, imagenet_stem, norm_layer


class DenseNet(nn.Module):
  growth: int
  stage_sizes: Sequence[int]
  num_classes: int
  imagenet_stem: bool
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False, return_features: bool = False):
    conv, norm = conv_layer(self.dtype), norm_layer(train, self.dtype)
    x = x.astype(self.dtype)
    if self.imagenet_stem:
      x = imagenet_stem(x, self.dtype, train, features=2 * self.growth)
    else:
      x = conv(2 * self.growth, (3, 3), padding=1)(x)
    for stage, layers in enumerate(self.stage_sizes):
      if stage > 0:  # transition: compression 0.5, then 2x2 average pool
        x = conv(x.shape[-1] // 2, (1, 1))(nn.relu(norm()(x)))
        x = nn.avg_pool(x, (2, 2), (2, 2))
      for _ in range(layers):
        y = conv(4 * self.growth, (1, 1))(nn.relu(norm()(x)))
        y = conv(self.growth, (3, 3), padding=1)(nn.relu(norm()(y)))
        x = jnp.concatenate([x, y], axis=-1)
    return head(nn.relu(norm()(x)), self.num_classes, return_features)


def densenet_bc_100(num_classes, dtype=jnp.float32):
  """L = 100: 3 blocks of (100 - 4) / 6 = 16 layers, k = 12 (CIFAR)."""
  return DenseNet(12, (16, 16, 16), num_classes, False, dtype)


def densenet121(num_classes, dtype=jnp.float32):
  return DenseNet(32, (6, 12, 24, 16), num_classes, True, dtype)


def densenet264(num_classes, dtype=jnp.float32):
  return DenseNet(32, (6, 12, 64, 48), num_classes, True, dtype)
