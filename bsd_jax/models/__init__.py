"""Model registry: config.model names one of these, config.compute_dtype the compute dtype."""
import jax.numpy as jnp

from bsd_jax.errors import UserError
from bsd_jax.models import cnn, resnet

MODELS = {
    'resnet18': lambda k, dtype, widths: resnet.cifar_resnet18(k, dtype),
    'resnet50': lambda k, dtype, widths: resnet.cifar_resnet50(k, dtype),
    'cnn': lambda k, dtype, widths: cnn.SmallCNN(num_classes=k, widths=tuple(widths), dtype=dtype),
}

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def get_model(config, num_classes: int):
  """The flax module named by config.model, computing in config.compute_dtype."""
  if config.model not in MODELS:
    raise UserError(f'config.model: unknown model {config.model!r}; choose one of {sorted(MODELS)}')
  if config.compute_dtype not in DTYPES:
    raise UserError(f'config.compute_dtype: {config.compute_dtype!r} is not one of '
                    f'{sorted(DTYPES)}')
  return MODELS[config.model](num_classes, DTYPES[config.compute_dtype], config.cnn_widths)
