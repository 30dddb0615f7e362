"""Checks of the config that need no data: run first, so bad values fail before any work."""
import os

from bsd_jax import methods, models, noise
from bsd_jax.errors import UserError


def _require(ok, message):
  if not ok:
    raise UserError(message)


def check_config(config, num_devices: int):
  """Raise UserError naming the first bad key."""
  methods.get_method(config)      # unknown method; BSD's gamma, c, eps, temperature
  models.get_model(config, 2)     # unknown model or compute dtype (builds no parameters)
  _require(config.table_dtype in models.DTYPES,
           f'config.table_dtype: {config.table_dtype!r} is not one of {sorted(models.DTYPES)}')
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
  n = config.label_noise
  _require(n.kind in noise.KINDS,
           f'config.label_noise.kind: unknown kind {n.kind!r}; choose from {noise.KINDS}')
  _require(0.0 <= n.rate <= 1.0, f'config.label_noise.rate must be in [0, 1], got {n.rate}')
  _require(not n.superclass_csv or os.path.isfile(n.superclass_csv),
           f'config.label_noise.superclass_csv: {n.superclass_csv} is not a file')
  if config.data.source == 'tfds_stream':
    st = config.data.stream
    _require(st.image_size >= 8, f'config.data.stream.image_size must be >= 8, got '
             f'{st.image_size}')
    _require(st.eval_resize >= st.image_size, f'config.data.stream.eval_resize '
             f'({st.eval_resize}) must be >= config.data.stream.image_size ({st.image_size})')
    _require(st.worker_count >= 0 and st.worker_threads >= 0,
             'config.data.stream.worker_count and worker_threads must be >= 0')
    _require(config.supcon.weight == 0, "config.supcon is not supported with "
             "config.data.source = 'tfds_stream' (its second view would be a device crop of the "
             "host-augmented first)")
  sc = config.supcon
  _require(sc.weight >= 0, f'config.supcon.weight must be >= 0 (0 = off), got {sc.weight}')
  _require(sc.temperature > 0 and sc.base_temperature > 0,
           'config.supcon.temperature and config.supcon.base_temperature must be > 0')
  _require(sc.head_width >= 1, f'config.supcon.head_width must be >= 1, got {sc.head_width}')
  _require(sc.positives in ('labels', 'target_argmax'),
           f"config.supcon.positives must be 'labels' or 'target_argmax', got {sc.positives!r}")
  if sc.weight > 0:
    _require(sc.positives == 'labels' or config.method == 'bsd',
             "config.supcon.positives = 'target_argmax' needs config.method = 'bsd'")
    _require(config.data.augment, 'config.supcon needs config.data.augment = True (its two '
             'views are two augmentations of each image)')
    _require(methods.get_method(config).extra_view is None,
             f'config.supcon cannot be combined with config.method = {config.method!r} (it '
             'adds its own views to the batch)')
