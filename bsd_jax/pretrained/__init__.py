"""config.init_from: a run starts from weights made elsewhere, read at its first start:

  a bsd_jax run directory   its newest readable checkpoint's model (run_dir.py)
  a .safetensors file       a PyTorch state_dict, read without torch (torch_files.py)
  a .pth / .pt / .bin file  the same through torch, where it is installed

A state_dict is recognised by its keys: torchvision's ResNets (torchvision_resnet.py) or timm's
ViTs (timm_vit.py), converted to the names and layouts of bsd_jax's models. The arrays are then
matched to the model the config makes (merge.py): a classifier head for another class count
starts afresh (one line says so), any other difference is a one-line error. Nothing is
downloaded: docs/your_data.md says where to get the files."""
import logging
import os

from bsd_jax.errors import UserError
from bsd_jax.pretrained import run_dir, timm_vit, torch_files, torchvision_resnet
from bsd_jax.pretrained.merge import apply, merge

__all__ = ['load', 'merge', 'apply']


def _heads(abstract_state):
  """The attention head count of the new model (a ViT), or None."""
  block = getattr(abstract_state, 'params', {}).get('EncoderBlock_0', {})
  query = block.get(timm_vit.ATTENTION, {}).get('query', {}).get('kernel')
  return None if query is None else query.shape[1]


def load(path, abstract_state) -> dict:
  """{'params/...': array, 'batch_stats/...': array} of the weights at `path`, named as the
  model of `abstract_state` names its arrays. UserError (one line) for a path that is none of
  the kinds above."""
  if os.path.isdir(path):
    return run_dir.load(path)
  if not os.path.exists(path):
    raise UserError(f'config.init_from: {path} does not exist (give a bsd_jax run directory, '
                    'or a .safetensors or .pth file)')
  state = torch_files.read(path)
  if torchvision_resnet.matches(state):
    logging.info('config.init_from: %s holds %s', path, torchvision_resnet.describe(state))
    return torchvision_resnet.to_flax(state, path)
  if timm_vit.matches(state):
    logging.info('config.init_from: %s holds %s', path, timm_vit.describe(state))
    heads = _heads(abstract_state)
    if heads is None:
      raise UserError(f'config.init_from: {path} holds {timm_vit.describe(state)}; '
                      'config.model.name makes no ViT (vit_s16 or vit_b16 take it)')
    return timm_vit.to_flax(state, path, heads)
  raise UserError(f'config.init_from: {path} holds neither a torchvision ResNet nor a timm ViT '
                  f'state_dict (its first keys: {", ".join(sorted(state)[:3])})')
