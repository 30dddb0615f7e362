"""Model registry: config.model names one of these, config.compute_dtype the compute dtype."""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from bsd_jax.errors import UserError
from bsd_jax.models import cnn, resnet

MODELS = {
    'resnet18': lambda k, dtype, widths: resnet.cifar_resnet18(k, dtype),
    'resnet50': lambda k, dtype, widths: resnet.cifar_resnet50(k, dtype),
    'cnn': lambda k, dtype, widths: cnn.SmallCNN(num_classes=k, widths=tuple(widths), dtype=dtype),
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
  """The flax module named by config.model, computing in config.compute_dtype (with a
  projection head when config.supcon.weight > 0)."""
  if config.model not in MODELS:
    raise UserError(f'config.model: unknown model {config.model!r}; choose one of {sorted(MODELS)}')
  if config.compute_dtype not in DTYPES:
    raise UserError(f'config.compute_dtype: {config.compute_dtype!r} is not one of '
                    f'{sorted(DTYPES)}')
  model = MODELS[config.model](num_classes, DTYPES[config.compute_dtype], config.cnn_widths)
  if config.supcon.weight > 0:
    model = WithProjection(model, config.supcon.head_width)
  return model
