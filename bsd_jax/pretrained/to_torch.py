"""A bsd_jax model's arrays in PyTorch's key layout, for the models whose layout is torchvision's
or timm's (the inverse of what config.init_from reads): the export command's torch.safetensors."""
import re

from bsd_jax.models import resnet
from bsd_jax.pretrained import timm_vit, torchvision_resnet

TIMM_NAMES = {'vit_s16': 'vit_small_patch16_224', 'vit_b16': 'vit_base_patch16_224'}


def _resnet_depth(model_name):
  m = re.fullmatch(r'resnet(\d+)_imagenet', model_name)
  return int(m.group(1)) if m and int(m.group(1)) in resnet.IMAGENET else None


def convert(model_name, arrays):
  """{torch key: array}, or None for a model of no PyTorch library's layout."""
  depth = _resnet_depth(model_name)
  if depth is not None:
    block, sizes = resnet.IMAGENET[depth]
    return torchvision_resnet.from_flax(arrays, sizes, block is resnet.Bottleneck)
  if model_name in TIMM_NAMES:
    return timm_vit.from_flax(arrays)
  return None


def describe(model_name, num_classes: int) -> str:
  """The PyTorch model the converted state_dict loads into."""
  if _resnet_depth(model_name) is not None:
    return f'torchvision.models.resnet{_resnet_depth(model_name)}(num_classes={num_classes})'
  return f"timm.create_model('{TIMM_NAMES[model_name]}', num_classes={num_classes})"
