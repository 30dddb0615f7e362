"""ResNets (He et al. 2016): the CIFAR variant used by PS-KD and most self-distillation papers,
and the ImageNet ResNet-18/34/50/101 of torchvision (whose weights config.init_from loads).

CIFAR: 3x3 stem with stride 1 and no max-pool. ImageNet: 7x7 stride-2 stem and a 3x3 stride-2
max-pool, with the stride of a bottleneck on its 3x3 conv (torchvision's "v1.5"). Then four
stages of 64/128/256/512 planes (`width` times 1/2/4/8: narrower models for tests), global
average pool, one dense layer. Parameters and BatchNorm
statistics are float32; `dtype` sets the compute dtype (bfloat16 for mixed precision).
Convolutions have no bias and use He (fan-out) init."""
from functools import partial
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

_conv_init = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def conv_layer(dtype):
  """Convolution without bias, He (fan-out) init, computing in `dtype`."""
  return partial(nn.Conv, use_bias=False, dtype=dtype, kernel_init=_conv_init)


def norm_layer(train, dtype):
  """BatchNorm as torchvision's (its momentum 0.1 is flax's 0.9), computing in `dtype`."""
  return partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5,
                 dtype=dtype)


def imagenet_stem(x, dtype, train, features=64):
  """7x7 stride-2 conv, BN-ReLU, 3x3 stride-2 max-pool (torchvision's ResNets and DenseNets)."""
  x = conv_layer(dtype)(features, (7, 7), (2, 2), padding=3)(x)
  x = nn.relu(norm_layer(train, dtype)()(x))
  return nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))


class BasicBlock(nn.Module):
  planes: int
  stride: int
  dtype: Any
  expansion = 1

  @nn.compact
  def __call__(self, x, train: bool):
    conv, norm = conv_layer(self.dtype), norm_layer(train, self.dtype)
    y = conv(self.planes, (3, 3), (self.stride, self.stride), padding=1)(x)
    y = nn.relu(norm()(y))
    y = conv(self.planes, (3, 3), padding=1)(y)
    y = norm()(y)
    if self.stride != 1 or x.shape[-1] != self.planes:
      x = norm()(conv(self.planes, (1, 1), (self.stride, self.stride))(x))
    return nn.relu(x + y)


class Bottleneck(nn.Module):
  planes: int
  stride: int
  dtype: Any
  expansion = 4

  @nn.compact
  def __call__(self, x, train: bool):
    conv, norm = conv_layer(self.dtype), norm_layer(train, self.dtype)
    out = self.planes * self.expansion
    y = nn.relu(norm()(conv(self.planes, (1, 1))(x)))
    y = nn.relu(norm()(conv(self.planes, (3, 3), (self.stride, self.stride), padding=1)(y)))
    y = norm()(conv(out, (1, 1))(y))
    if self.stride != 1 or x.shape[-1] != out:
      x = norm()(conv(out, (1, 1), (self.stride, self.stride))(x))
    return nn.relu(x + y)


def stages(x, block, stage_sizes, dtype, train, width=64):
  """The residual stages: width * 2**stage planes, stride 2 at the start of every stage but the
  first. Shared by the ResNets here and the PreAct ResNet."""
  for stage, blocks in enumerate(stage_sizes):
    for b in range(blocks):
      stride = 2 if stage > 0 and b == 0 else 1
      x = block(planes=width * 2 ** stage, stride=stride, dtype=dtype)(x, train)
  return x


def head(x, num_classes, return_features):
  """Global average pool and a dense layer, both in float32 (the softmax and the losses are
  computed in float32)."""
  features = jnp.mean(x, axis=(1, 2)).astype(jnp.float32)
  logits = nn.Dense(num_classes, dtype=jnp.float32)(features)
  return (logits, features) if return_features else logits


class ResNet(nn.Module):
  """stem 'cifar': one 3x3 conv, stride 1, no max-pool; 'imagenet': 7x7 stride-2 conv and a
  3x3 stride-2 max-pool (torchvision)."""
  block: Any
  stage_sizes: Sequence[int]
  num_classes: int
  dtype: Any = jnp.float32
  stem: str = 'cifar'
  width: int = 64

  @nn.compact
  def __call__(self, x, train: bool = False, return_features: bool = False):
    x = x.astype(self.dtype)
    if self.stem == 'imagenet':
      x = imagenet_stem(x, self.dtype, train, self.width)
    else:
      x = conv_layer(self.dtype)(self.width, (3, 3), padding=1)(x)
      x = nn.relu(norm_layer(train, self.dtype)()(x))
    return head(stages(x, self.block, self.stage_sizes, self.dtype, train, self.width),
                self.num_classes, return_features)


def cifar_resnet18(num_classes, dtype=jnp.float32):
  return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, dtype)


def cifar_resnet50(num_classes, dtype=jnp.float32):
  return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, dtype)


# torchvision's ImageNet ResNets: (block, blocks per stage); parameters for 1000 classes.
IMAGENET = {18: (BasicBlock, (2, 2, 2, 2)),     # 11,689,512
            34: (BasicBlock, (3, 4, 6, 3)),     # 21,797,672
            50: (Bottleneck, (3, 4, 6, 3)),     # 25,557,032
            101: (Bottleneck, (3, 4, 23, 3))}   # 44,549,160


def imagenet_resnet(depth, num_classes, dtype=jnp.float32, width=64):
  """torchvision's resnet{depth} (v1.5: a bottleneck's stride on its 3x3 conv)."""
  block, sizes = IMAGENET[depth]
  return ResNet(block, sizes, num_classes, dtype, stem='imagenet', width=width)
