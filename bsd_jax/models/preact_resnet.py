"""PreAct ResNet-18 for CIFAR (He et al. 2016, "Identity mappings in deep residual networks").

The label-noise and self-distillation literature (PS-KD among others) uses Kuang Liu's
pytorch-cifar `PreActResNet18`, reproduced here exactly so that parameter counts and results
compare: 3x3 stem with no BatchNorm and no max-pool, blocks BN-ReLU-conv-BN-ReLU-conv whose
projection shortcut (a 1x1 conv without BN) reads the pre-activated input, and NO final
BN-ReLU before the global average pool (the paper's design has one; that code does not).
11,171,146 parameters for 10 classes. Float32 parameters and BatchNorm statistics, `dtype`
compute."""
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from bsd_jax.models.resnet import conv_layer, head, norm_layer, stages


class PreActBlock(nn.Module):
  planes: int
  stride: int
  dtype: Any

  @nn.compact
  def __call__(self, x, train: bool):
    conv, norm = conv_layer(self.dtype), norm_layer(train, self.dtype)
    out = nn.relu(norm()(x))
    shortcut = x
    if self.stride != 1 or x.shape[-1] != self.planes:
      shortcut = conv(self.planes, (1, 1), (self.stride, self.stride))(out)
    y = conv(self.planes, (3, 3), (self.stride, self.stride), padding=1)(out)
    y = conv(self.planes, (3, 3), padding=1)(nn.relu(norm()(y)))
    return y + shortcut


class PreActResNet(nn.Module):
  stage_sizes: Sequence[int]
  num_classes: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False, return_features: bool = False):
    x = x.astype(self.dtype)
    x = conv_layer(self.dtype)(64, (3, 3), padding=1)(x)
    return head(stages(x, PreActBlock, self.stage_sizes, self.dtype, train), self.num_classes,
                return_features)


def preact_resnet18(num_classes, dtype=jnp.float32):
  return PreActResNet((2, 2, 2, 2), num_classes, dtype)
