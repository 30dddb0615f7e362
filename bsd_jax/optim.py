"""Optimizer and learning-rate schedule from the config (durations in epochs)."""
from collections.abc import Mapping

import jax
import optax


def learning_rate_schedule(config, steps_per_epoch: int):
  """'cosine': linear warm-up for warmup_epochs, then cosine decay to 0 at the last step.
  'multistep': constant lr, multiplied by lr_decay_factor at each epoch in lr_milestones.
  (config.lr_schedule is one of the two: bsd_jax/config_check.py.)"""
  total = config.num_epochs * steps_per_epoch
  warmup = int(config.warmup_epochs * steps_per_epoch)
  if config.lr_schedule == 'cosine':
    if warmup == 0:
      return optax.cosine_decay_schedule(config.learning_rate, total)
    if warmup >= total:  # the whole run is the warm-up
      return optax.linear_schedule(0.0, config.learning_rate, warmup)
    return optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, warmup, total)
  if config.lr_schedule != 'multistep':
    raise ValueError(f'unknown lr_schedule {config.lr_schedule!r} (config_check.py refuses it)')
  boundaries = {int(m * steps_per_epoch): config.lr_decay_factor for m in config.lr_milestones}
  main = optax.piecewise_constant_schedule(config.learning_rate, boundaries)
  if warmup == 0:
    return main
  ramp = optax.linear_schedule(0.0, config.learning_rate, warmup)
  return optax.join_schedules([ramp, lambda s: main(s + warmup)], [warmup])


def backbone_mask(params) -> dict:
  """True for every parameter of the backbone: all but the Dense layers at the model's top
  level (the classifier head; with SupCon the projection too, and the classifier under 'base').
  A top-level Dense layer is the last layer in every model of bsd_jax/models/."""
  def mark(tree, top):
    out = {}
    for name, sub in tree.items():
      if top and name == 'base':
        out[name] = mark(sub, True)
        continue
      head = top and isinstance(sub, Mapping) and getattr(sub.get('kernel'), 'ndim', 0) == 2
      out[name] = jax.tree.map(lambda _, h=head: not h, sub)
    return out
  return mark(params, True)


def make_optimizer(config, steps_per_epoch: int):
  """SGD with (Nesterov) momentum and L2 weight decay added to the gradient (PyTorch style);
  with config.backbone_lr_multiplier != 1 the backbone's steps are scaled by it (for SGD the
  same as its own learning rate: momentum and weight decay are linear in the gradient)."""
  schedule = learning_rate_schedule(config, steps_per_epoch)
  parts = [optax.add_decayed_weights(config.weight_decay),
           optax.sgd(schedule, momentum=config.momentum, nesterov=config.nesterov)]
  if config.backbone_lr_multiplier != 1.0:
    parts.append(optax.masked(optax.scale(config.backbone_lr_multiplier), backbone_mask))
  return optax.chain(*parts), schedule
