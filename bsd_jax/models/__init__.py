"""Model registry: config.model.name names one of these, config.compute_dtype the compute dtype.

Each entry is (num_classes, dtype, config.model) -> a flax module called as
(x NHWC, train, return_features) that returns float32 logits, or (logits, pooled features).
CIFAR models (32x32 inputs): resnet18, resnet50 (3x3 stem, no max-pool), preact_resnet18
(Kuang Liu's PreActResNet18), wrn28_10, densenet_bc_100 (k=12), vit_cifar (ViT-S on 4x4
patches, no BatchNorm), cnn (small VGG-style, config.model.cnn_widths). ImageNet models (7x7
stride-2 stem and max-pool): resnet18/34/50/101_imagenet (torchvision's, whose weights
config.init_from loads), densenet121, densenet264; vit_s16 and vit_b16 (timm's
vit_small_patch16_224 and vit_base_patch16_224, 224x224 inputs, whose weights it loads too)."""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from bsd_jax.models import cnn, densenet, preact_resnet, resnet, vit, wide_resnet

MODELS = {
    'resnet18': lambda k, dtype, mc: resnet.cifar_resnet18(k, dtype),
    'resnet50': lambda k, dtype, mc: resnet.cifar_resnet50(k, dtype),
    'cnn': lambda k, dtype, mc: cnn.SmallCNN(num_classes=k, widths=tuple(mc.cnn_widths),
                                             dtype=dtype),
    'preact_resnet18': lambda k, dtype, mc: preact_resnet.preact_resnet18(k, dtype),
    'wrn28_10': lambda k, dtype, mc: wide_resnet.wrn28_10(k, dtype),
    'densenet_bc_100': lambda k, dtype, mc: densenet.densenet_bc_100(k, dtype),
    'vit_cifar': lambda k, dtype, mc: vit.ViT(k, dtype=dtype),  # ViT-S/4: 21,342,346 parameters
    'resnet18_imagenet': lambda k, dtype, mc: resnet.imagenet_resnet(18, k, dtype),
    'resnet34_imagenet': lambda k, dtype, mc: resnet.imagenet_resnet(34, k, dtype),
    'resnet50_imagenet': lambda k, dtype, mc: resnet.imagenet_resnet(50, k, dtype),
    'resnet101_imagenet': lambda k, dtype, mc: resnet.imagenet_resnet(101, k, dtype),
    'vit_s16': lambda k, dtype, mc: vit.ViT(k, patch=16, dtype=dtype),
    'vit_b16': lambda k, dtype, mc: vit.ViT(k, patch=16, width=768, heads=12, mlp_dim=3072,
                                            dtype=dtype),
    'densenet121': lambda k, dtype, mc: densenet.densenet121(k, dtype),
    'densenet264': lambda k, dtype, mc: densenet.densenet264(k, dtype),
}

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


class WithProjection(nn.Module):
  """A classifier plus an MLP projection head on its pooled features (for the SupCon loss).

  Called plainly it returns the logits, like the classifier alone; with project=True it returns
  (logits, L2-normalised projections). The head is always run, so that `init` creates it."""
  base: Any
  head_width: int

  @nn.compact
  def __call__(self, x, train: bool = False, project: bool = False):
    logits, features = self.base(x, train, return_features=True)
    z = nn.Dense(self.head_width, name='head_hidden')(features)
    z = nn.Dense(self.head_width, name='head_out')(nn.relu(z))
    z = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
    return (logits, z) if project else logits


def get_model(config, num_classes: int):
  """The flax module named by config.model.name, computing in config.compute_dtype (with a
  projection head when config.supcon.weight > 0); names checked in bsd_jax/config_check.py."""
  model = MODELS[config.model.name](num_classes, DTYPES[config.compute_dtype], config.model)
  if config.supcon.weight > 0:
    model = WithProjection(model, config.supcon.head_width)
  return model
