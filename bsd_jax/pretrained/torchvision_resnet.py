"""torchvision's ResNet state_dict (resnet18/34/50/101, and timm's ResNets, which keep its key
layout) -> the arrays of bsd_jax's `resnet*_imagenet` models (bsd_jax/models/resnet.py), by flax
name. Convolution kernels [out, in, h, w] become [h, w, in, out], dense [out, in] becomes
[in, out]; BatchNorm's weight / bias / running_mean / running_var become scale / bias and the
batch statistics mean / var; num_batches_tracked has no counterpart."""
import re

import numpy as np

from bsd_jax.errors import UserError


def matches(state) -> bool:
  return 'conv1.weight' in state and 'layer1.0.conv1.weight' in state and 'fc.weight' in state


def _block_count(state, stage):
  return len({m.group(1) for k in state for m in [re.match(rf'layer{stage}\.(\d+)\.', k)] if m})


def describe(state) -> str:
  bottleneck = 'layer1.0.conv3.weight' in state
  blocks = [_block_count(state, s) for s in (1, 2, 3, 4)]
  depth = sum(blocks) * (3 if bottleneck else 2) + 2
  return (f'a torchvision ResNet-{depth} ({"bottleneck" if bottleneck else "basic"} blocks '
          f'{"/".join(map(str, blocks))}, width {state["conv1.weight"].shape[0]}, '
          f'{state["fc.weight"].shape[0]} classes)')


def _layers(block_counts, bottleneck: bool, has_downsample):
  """(torchvision prefix, flax module, 'conv' or 'norm') of every layer but the head, in order;
  `has_downsample(torchvision block prefix, flax block)` says whether a block has one."""
  block, convs = ('Bottleneck', 3) if bottleneck else ('BasicBlock', 2)
  yield 'conv1', 'Conv_0', 'conv'
  yield 'bn1', 'BatchNorm_0', 'norm'
  n = 0
  for stage, count in enumerate(block_counts, 1):
    for b in range(count):
      src, dst = f'layer{stage}.{b}', f'{block}_{n}'
      for i in range(convs):
        yield f'{src}.conv{i + 1}', f'{dst}/Conv_{i}', 'conv'
        yield f'{src}.bn{i + 1}', f'{dst}/BatchNorm_{i}', 'norm'
      if has_downsample(src, dst):
        yield f'{src}.downsample.0', f'{dst}/Conv_{convs}', 'conv'
        yield f'{src}.downsample.1', f'{dst}/BatchNorm_{convs}', 'norm'
      n += 1


NORM = (('weight', 'params/{}/scale'), ('bias', 'params/{}/bias'),
        ('running_mean', 'batch_stats/{}/mean'), ('running_var', 'batch_stats/{}/var'))


def to_flax(state, path) -> dict:
  """{'params/...' or 'batch_stats/...': array}; UserError naming a key with no place in it."""
  out, used = {}, set()
  counts = [_block_count(state, s) for s in (1, 2, 3, 4)]
  layers = _layers(counts, 'layer1.0.conv3.weight' in state,
                   lambda src, dst: f'{src}.downsample.0.weight' in state)
  for src, dst, kind in layers:
    if kind == 'conv':
      out[f'params/{dst}/kernel'] = state[f'{src}.weight'].transpose(2, 3, 1, 0)
      used.add(f'{src}.weight')
      continue
    for a, b in NORM:
      out[b.format(dst)] = state[f'{src}.{a}']
      used.add(f'{src}.{a}')
    used.add(f'{src}.num_batches_tracked')
  out['params/Dense_0/kernel'] = state['fc.weight'].T
  out['params/Dense_0/bias'] = state['fc.bias']
  used |= {'fc.weight', 'fc.bias'}
  unknown = sorted(set(state) - used)
  if unknown:
    raise UserError(f'config.init_from: {path}: key {unknown[0]} has no place in a torchvision '
                    f'ResNet ({len(unknown)} such keys)')
  return out


def from_flax(arrays, sizes, bottleneck: bool) -> dict:
  """The inverse of to_flax: torchvision's state_dict {key: array} of a `resnet*_imagenet`
  model's arrays (`sizes`: blocks per stage), num_batches_tracked included (0), so that
  torchvision's load_state_dict takes it strictly."""
  convs = 3 if bottleneck else 2
  out = {}
  layers = _layers(sizes, bottleneck,
                   lambda src, dst: f'params/{dst}/Conv_{convs}/kernel' in arrays)
  for src, dst, kind in layers:
    if kind == 'conv':
      out[f'{src}.weight'] = arrays[f'params/{dst}/kernel'].transpose(3, 2, 0, 1)
      continue
    for a, b in NORM:
      out[f'{src}.{a}'] = arrays[b.format(dst)]
    out[f'{src}.num_batches_tracked'] = np.zeros((), np.int64)
  out['fc.weight'] = arrays['params/Dense_0/kernel'].T
  out['fc.bias'] = arrays['params/Dense_0/bias']
  return {k: np.ascontiguousarray(v) for k, v in out.items()}
