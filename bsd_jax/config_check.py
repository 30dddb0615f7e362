"""Checks of the config that need no data: run first, so bad values fail before any work."""
from bsd_jax import methods, models
from bsd_jax.errors import UserError


def _require(ok, message):
  if not ok:
    raise UserError(message)


def check_config(config, num_devices: int):
  """Raise UserError naming the first bad key."""
  methods.get_method(config)      # unknown method; BSD's gamma, c, eps, temperature
  models.get_model(config, 2)     # unknown model or compute dtype (builds no parameters)
  _require(config.num_epochs >= 1, f'config.num_epochs must be >= 1, got {config.num_epochs}')
  for key in ('batch_size', 'eval_batch_size'):
    value = config[key]
    _require(value >= 1 and value % num_devices == 0,
             f'config.{key} = {value} must be a positive multiple of the device count '
             f'({num_devices})')
  _require(config.learning_rate >= 0, 'config.learning_rate must be >= 0')
  _require(config.lr_schedule in ('cosine', 'multistep'),
           f"config.lr_schedule: unknown schedule {config.lr_schedule!r}; choose 'cosine' or "
           "'multistep'")
  _require(0 <= config.warmup_epochs <= config.num_epochs,
           'config.warmup_epochs must be in [0, num_epochs]')
  for key in ('log_every_steps', 'checkpoint_every_epochs', 'eval_every_epochs',
              'keep_checkpoints'):
    _require(config[key] >= 1, f'config.{key} must be >= 1, got {config[key]}')
  if config.method == 'bsd':
    b = config.bsd
    _require(b.prediction_source in ('train_pass', 'eval_pass'),
             f"config.bsd.prediction_source must be 'train_pass' or 'eval_pass', got "
             f'{b.prediction_source!r}')
