"""Training methods: how each one turns logits, labels and its per-sample table row into a loss.

This registry is the one place where a method is added (the baselines of METHOD.md section 2
come here). A method owns a per-sample table (BSD: the Dirichlet parameters alpha, [N, K]); the
train step gathers the batch's rows, passes them to `loss`, and scatters back
`update_rows(rows, probs)` for the samples it visited. Methods without a table keep a [N, 1] zero
column so that every method has the same TrainState layout.
"""
from typing import Callable, NamedTuple

import jax.numpy as jnp

from bsd_jax import losses, targets
from bsd_jax.errors import UserError


class Method(NamedTuple):
  name: str
  # init_table(labels [N], num_classes) -> [N, W] float32
  init_table: Callable
  # loss(logits [B, K], labels [B], rows [B, W]) -> per-sample loss [B]
  loss: Callable
  # update_rows(rows [B, W], probs [B, K]) -> new rows [B, W]; None: the table never changes.
  update_rows: Callable | None


def _ce():
  return Method(
      name='ce',
      init_table=lambda labels, k: jnp.zeros((labels.shape[0], 1), jnp.float32),
      loss=lambda logits, labels, rows: losses.cross_entropy(logits, labels),
      update_rows=None)


def _bsd(hp):
  """BSD (METHOD.md section 1); hp holds the resolved gamma, c, eps, temperature."""
  return Method(
      name='bsd',
      init_table=lambda labels, k: targets.init_alpha(labels, k, hp['c'], hp['eps']),
      loss=lambda logits, labels, rows: losses.soft_cross_entropy(
          logits, targets.posterior_mean(rows), hp['temperature']),
      update_rows=lambda rows, probs: targets.update_alpha(rows, probs, hp['gamma']))


METHODS = {'ce': lambda config: _ce(), 'bsd': lambda config: _bsd(bsd_hparams(config))}


def bsd_hparams(config) -> dict:
  """The BSD constants of a run: gamma from the key or from the end label weight, c from gamma."""
  b = config.bsd
  if b.gamma is None and not 0 < b.label_weight_end < 1:
    raise UserError(f'config.bsd.label_weight_end must be in (0, 1), got {b.label_weight_end}')
  gamma = b.gamma if b.gamma is not None else targets.gamma_for_label_weight(
      b.label_weight_end, config.num_epochs)
  if not 0.0 < gamma <= 1.0:
    raise UserError(f'config.bsd.gamma must be in (0, 1], got {gamma}')
  if b.c is not None:
    c = b.c
  elif gamma < 1.0:
    c = targets.prior_strength_for(gamma)
  else:
    raise UserError('config.bsd.c must be set when config.bsd.gamma = 1 (c = 1/(1-gamma) is '
                    'undefined)')
  if c <= 0:
    raise UserError(f'config.bsd.c must be > 0, got {c}')
  if b.eps <= 0:
    raise UserError(f'config.bsd.eps must be > 0, got {b.eps}')
  if b.temperature <= 0:
    raise UserError(f'config.bsd.temperature must be > 0, got {b.temperature}')
  return {'gamma': float(gamma), 'c': float(c), 'eps': float(b.eps),
          'temperature': float(b.temperature)}


def get_method(config) -> Method:
  if config.method not in METHODS:
    raise UserError(f'config.method: unknown method {config.method!r}; '
                    f'choose one of {sorted(METHODS)}')
  return METHODS[config.method](config)
