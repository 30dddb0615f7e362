"""Optimizer and learning-rate schedule from the config (durations in epochs)."""
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
    return optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, warmup, total)
  if config.lr_schedule != 'multistep':
    raise ValueError(f'unknown lr_schedule {config.lr_schedule!r} (config_check.py refuses it)')
  boundaries = {int(m * steps_per_epoch): config.lr_decay_factor for m in config.lr_milestones}
  main = optax.piecewise_constant_schedule(config.learning_rate, boundaries)
  if warmup == 0:
    return main
  ramp = optax.linear_schedule(0.0, config.learning_rate, warmup)
  return optax.join_schedules([ramp, lambda s: main(s + warmup)], [warmup])


def make_optimizer(config, steps_per_epoch: int):
  """SGD with (Nesterov) momentum and L2 weight decay added to the gradient (PyTorch style)."""
  schedule = learning_rate_schedule(config, steps_per_epoch)
  tx = optax.chain(
      optax.add_decayed_weights(config.weight_decay),
      optax.sgd(schedule, momentum=config.momentum, nesterov=config.nesterov))
  return tx, schedule
