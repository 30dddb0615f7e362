"""Forward FLOPs per image of each model at its input size, from XLA's cost analysis of the
compiled eval-mode forward pass (what configs/paper/ estimates its GPU times from).

    python bench/model_flops.py [--models resnet18,vit_cifar] [--json OUT]

One line per model: input size, classes, parameters, forward GFLOPs per image (a multiply-add
counts as two FLOPs, as XLA counts them). A train step costs about three forward passes.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (model, input size, classes): the paper's settings (configs/paper/).
SETTINGS = (('resnet18', 32, 100), ('resnet50', 32, 100), ('densenet_bc_100', 32, 100),
            ('wrn28_10', 32, 100), ('vit_cifar', 32, 100), ('preact_resnet18', 32, 10),
            ('resnet18', 64, 200), ('resnet50', 64, 200),
            ('resnet50_imagenet', 224, 1000), ('densenet264', 224, 1000))


def forward_flops(model_name, size, num_classes, batch=8):
  """(forward FLOPs per image, parameter count) from the compiled program's cost analysis."""
  import jax
  import jax.numpy as jnp

  from bsd_jax import models
  from tests import helpers
  config = helpers.load_config('default.py')
  config.model.name = model_name
  model = models.get_model(config, num_classes)
  x = jnp.zeros((batch, size, size, 3), jnp.float32)
  variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.PRNGKey(0))
  params = sum(v.size for v in jax.tree.leaves(variables['params']))
  compiled = jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(variables, x).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost['flops']) / batch, int(params)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--models', default='', help='comma-separated model names (default: all)')
  p.add_argument('--json', help='also write the numbers here')
  args = p.parse_args(argv)
  wanted = set(filter(None, args.models.split(',')))
  rows = []
  for name, size, k in SETTINGS:
    if wanted and name not in wanted:
      continue
    flops, params = forward_flops(name, size, k)
    rows.append({'model': name, 'size': size, 'classes': k, 'params': params,
                 'gflops_per_image': flops / 1e9})
    print(f'{name:18s} {size:3d}px {k:4d} classes {params / 1e6:7.2f}M params '
          f'{flops / 1e9:8.3f} GFLOPs/image (forward)', flush=True)
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(rows, f, indent=2)


if __name__ == '__main__':
  main()
