"""timm's VisionTransformer state_dict (vit_small_patch16_224, vit_base_patch16_224: a class
token, learned position embeddings, pre-norm blocks with a fused qkv projection) -> the arrays
of bsd_jax's ViT (bsd_jax/models/vit.py: `vit_s16`, `vit_b16`), by flax name. timm's qkv weight
[3 * D, D] holds the query, key and value rows head by head; flax keeps each as [D, heads,
head_dim], and the output projection as [heads, head_dim, D]. The head count is the new model's
(a state_dict does not hold it)."""
import re

import numpy as np

from bsd_jax.errors import UserError

ATTENTION = 'MultiHeadDotProductAttention_0'


def matches(state) -> bool:
  return 'patch_embed.proj.weight' in state and 'blocks.0.attn.qkv.weight' in state


def _depth(state):
  return len({m.group(1) for k in state for m in [re.match(r'blocks\.(\d+)\.', k)] if m})


def describe(state) -> str:
  w = state['patch_embed.proj.weight']
  return (f'a timm ViT (width {w.shape[0]}, depth {_depth(state)}, {w.shape[2]}x{w.shape[3]} '
          f'patches, {state["pos_embed"].shape[1]} tokens, '
          f'{state["head.weight"].shape[0] if "head.weight" in state else 0} classes)')


def to_flax(state, path, heads: int) -> dict:
  """{'params/...': array}; UserError naming a key with no place in it."""
  out, used = {}, set()

  def take(key):
    used.add(key)
    return state[key]

  def dense(src, dst):
    out[f'params/{dst}/kernel'] = take(f'{src}.weight').T
    out[f'params/{dst}/bias'] = take(f'{src}.bias')

  def layer_norm(src, dst):
    out[f'params/{dst}/scale'] = take(f'{src}.weight')
    out[f'params/{dst}/bias'] = take(f'{src}.bias')

  out['params/embedding/kernel'] = take('patch_embed.proj.weight').transpose(2, 3, 1, 0)
  out['params/embedding/bias'] = take('patch_embed.proj.bias')
  out['params/cls'] = take('cls_token')
  out['params/pos_embedding'] = take('pos_embed')
  width = out['params/embedding/bias'].shape[0]
  if width % heads:
    raise UserError(f'config.init_from: {path}: width {width} does not split into the {heads} '
                    'heads of config.model.name')
  for i in range(_depth(state)):
    src, dst = f'blocks.{i}', f'EncoderBlock_{i}'
    layer_norm(f'{src}.norm1', f'{dst}/LayerNorm_0')
    qkv = take(f'{src}.attn.qkv.weight').reshape(3, heads, width // heads, width)
    qkv_bias = take(f'{src}.attn.qkv.bias').reshape(3, heads, width // heads)
    for j, name in enumerate(('query', 'key', 'value')):
      out[f'params/{dst}/{ATTENTION}/{name}/kernel'] = qkv[j].transpose(2, 0, 1)
      out[f'params/{dst}/{ATTENTION}/{name}/bias'] = qkv_bias[j]
    out[f'params/{dst}/{ATTENTION}/out/kernel'] = take(f'{src}.attn.proj.weight').T.reshape(
        heads, width // heads, width)
    out[f'params/{dst}/{ATTENTION}/out/bias'] = take(f'{src}.attn.proj.bias')
    layer_norm(f'{src}.norm2', f'{dst}/LayerNorm_1')
    dense(f'{src}.mlp.fc1', f'{dst}/Dense_0')
    dense(f'{src}.mlp.fc2', f'{dst}/Dense_1')
  layer_norm('norm', 'encoder_norm')
  if 'head.weight' in state:
    dense('head', 'head')
  unknown = sorted(set(state) - used)
  if unknown:
    raise UserError(f'config.init_from: {path}: key {unknown[0]} has no place in a timm ViT with '
                    f'a class token ({len(unknown)} such keys)')
  return out


def from_flax(arrays) -> dict:
  """The inverse of to_flax: timm's state_dict {key: array} of a `vit_s16` / `vit_b16` model's
  arrays."""
  out = {}
  query = arrays[f'params/EncoderBlock_0/{ATTENTION}/query/kernel']  # [width, heads, head_dim]
  width = query.shape[0]

  def dense(src, dst):
    out[f'{dst}.weight'] = arrays[f'params/{src}/kernel'].T
    out[f'{dst}.bias'] = arrays[f'params/{src}/bias']

  def layer_norm(src, dst):
    out[f'{dst}.weight'] = arrays[f'params/{src}/scale']
    out[f'{dst}.bias'] = arrays[f'params/{src}/bias']

  out['cls_token'] = arrays['params/cls']
  out['pos_embed'] = arrays['params/pos_embedding']
  out['patch_embed.proj.weight'] = arrays['params/embedding/kernel'].transpose(3, 2, 0, 1)
  out['patch_embed.proj.bias'] = arrays['params/embedding/bias']
  depth = len({k.split('/')[1] for k in arrays if k.startswith('params/EncoderBlock_')})
  for i in range(depth):
    src, dst = f'EncoderBlock_{i}', f'blocks.{i}'
    attention = f'params/{src}/{ATTENTION}'
    layer_norm(f'{src}/LayerNorm_0', f'{dst}.norm1')
    out[f'{dst}.attn.qkv.weight'] = np.stack([
        arrays[f'{attention}/{n}/kernel'].transpose(1, 2, 0) for n in ('query', 'key', 'value')
    ]).reshape(3 * width, width)
    out[f'{dst}.attn.qkv.bias'] = np.stack([
        arrays[f'{attention}/{n}/bias'] for n in ('query', 'key', 'value')]).reshape(3 * width)
    out[f'{dst}.attn.proj.weight'] = arrays[f'{attention}/out/kernel'].reshape(width, width).T
    out[f'{dst}.attn.proj.bias'] = arrays[f'{attention}/out/bias']
    layer_norm(f'{src}/LayerNorm_1', f'{dst}.norm2')
    dense(f'{src}/Dense_0', f'{dst}.mlp.fc1')
    dense(f'{src}/Dense_1', f'{dst}.mlp.fc2')
  layer_norm('encoder_norm', 'norm')
  dense('head', 'head')
  return {k: np.ascontiguousarray(v) for k, v in out.items()}
