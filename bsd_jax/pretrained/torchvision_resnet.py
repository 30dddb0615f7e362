"""torchvision's ResNet state_dict (resnet18/34/50/101, and timm's ResNets, which keep its key
layout) -> the arrays of bsd_jax's `resnet*_imagenet` models (bsd_jax/models/resnet.py), by flax
name. Convolution kernels [out, in, h, w] become [h, w, in, out], dense [out, in] becomes
[in, out]; BatchNorm's weight / bias / running_mean / running_var become scale / bias and the
batch statistics mean / var; num_batches_tracked has no counterpart."""
import re

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


def to_flax(state, path) -> dict:
  """{'params/...' or 'batch_stats/...': array}; UserError naming a key with no place in it."""
  bottleneck = 'layer1.0.conv3.weight' in state
  block, convs = ('Bottleneck', 3) if bottleneck else ('BasicBlock', 2)
  out, used = {}, set()

  def conv(src, dst):
    out[f'params/{dst}/kernel'] = state[f'{src}.weight'].transpose(2, 3, 1, 0)
    used.add(f'{src}.weight')

  def norm(src, dst):
    for a, b in (('weight', 'params/{}/scale'), ('bias', 'params/{}/bias'),
                 ('running_mean', 'batch_stats/{}/mean'), ('running_var', 'batch_stats/{}/var')):
      out[b.format(dst)] = state[f'{src}.{a}']
      used.add(f'{src}.{a}')
    used.add(f'{src}.num_batches_tracked')

  conv('conv1', 'Conv_0')
  norm('bn1', 'BatchNorm_0')
  n = 0
  for stage in (1, 2, 3, 4):
    for b in range(_block_count(state, stage)):
      src, dst = f'layer{stage}.{b}', f'{block}_{n}'
      for i in range(convs):
        conv(f'{src}.conv{i + 1}', f'{dst}/Conv_{i}')
        norm(f'{src}.bn{i + 1}', f'{dst}/BatchNorm_{i}')
      if f'{src}.downsample.0.weight' in state:
        conv(f'{src}.downsample.0', f'{dst}/Conv_{convs}')
        norm(f'{src}.downsample.1', f'{dst}/BatchNorm_{convs}')
      n += 1
  out['params/Dense_0/kernel'] = state['fc.weight'].T
  out['params/Dense_0/bias'] = state['fc.bias']
  used |= {'fc.weight', 'fc.bias'}
  unknown = sorted(set(state) - used)
  if unknown:
    raise UserError(f'config.init_from: {path}: key {unknown[0]} has no place in a torchvision '
                    f'ResNet ({len(unknown)} such keys)')
  return out
