"""Every check of a config that needs no data, in one place: run first, so that a bad value fails
with one line naming its key before any work (and before anything is written).

The builders (methods, models, optim, data.label_noise) trust a checked config. Checks that
need the data (splits, features, image files, superclasses) are raised by the data sources,
also before training starts; those that need only the class count are `check_classes`
(experiment.build). The options of evaluation suites are checked by each suite
(`Suite.check_options`), the same code for config.evals and the evaluate command's flags."""
import math
import os

from bsd_jax import data, evaluation, methods, models, peers
from bsd_jax.data import label_noise
from bsd_jax.errors import UserError, require


def check_config(config, num_devices: int, num_processes: int = 1):
  """Raise UserError naming the first bad key."""
  _check_method(config)
  _check_training(config, num_devices)
  _check_label_noise(config)
  _check_data(config)
  _check_supcon(config)
  _check_evals(config, num_processes)


def _check_training(config, num_devices):
  require(config.model.name in models.MODELS,
          f'config.model.name: unknown model {config.model.name!r}; choose one of '
          f'{sorted(models.MODELS)}')
  for key in ('compute_dtype', 'table_dtype'):
    require(config[key] in models.DTYPES,
            f'config.{key}: {config[key]!r} is not one of {sorted(models.DTYPES)}')
  require(config.num_epochs >= 1, f'config.num_epochs must be >= 1, got {config.num_epochs}')
  for key in ('batch_size', 'eval_batch_size'):
    value = config[key]
    require(value >= 1 and value % num_devices == 0,
            f'config.{key} = {value} must be a positive multiple of the device count '
            f'({num_devices})')
  require(config.learning_rate >= 0, 'config.learning_rate must be >= 0')
  peers.check_timeout(config.peer_timeout_s)
  require(config.log_every_seconds >= 0, 'config.log_every_seconds must be >= 0 (0: by steps'
          f' only), got {config.log_every_seconds}')
  require(config.lr_schedule in ('cosine', 'multistep'),
          f"config.lr_schedule: unknown schedule {config.lr_schedule!r}; choose 'cosine' or "
          "'multistep'")
  require(0 <= config.warmup_epochs <= config.num_epochs,
          'config.warmup_epochs must be in [0, num_epochs]')
  require(config.backbone_lr_multiplier >= 0, 'config.backbone_lr_multiplier must be >= 0')
  for key in ('log_every_steps', 'steps_per_call', 'checkpoint_every_epochs',
              'eval_every_epochs', 'keep_checkpoints'):
    require(config[key] >= 1, f'config.{key} must be >= 1, got {config[key]}')


def _check_method(config):
  require(config.method in methods.METHODS,
          f'config.method: unknown method {config.method!r}; choose one of '
          f'{sorted(methods.METHODS)}')
  # The selected method's section only (a sweep checks each of its methods' configs).
  check = methods.METHODS[config.method].check
  if check is not None:
    check(config)


def check_classes(config, num_classes: int):
  """The checks that need the class count (experiment.build, before any work)."""
  check = methods.METHODS[config.method].check_classes
  if check is not None:
    check(config, num_classes)


def _check_label_noise(config):
  n = config.label_noise
  require(n.kind in label_noise.KINDS,
          f'config.label_noise.kind: unknown kind {n.kind!r}; choose from {label_noise.KINDS}')
  require(0.0 <= n.rate <= 1.0, f'config.label_noise.rate must be in [0, 1], got {n.rate}')
  require(not n.superclass_csv or os.path.isfile(n.superclass_csv),
          f'config.label_noise.superclass_csv: {n.superclass_csv} is not a file')
  if n.kind == 'human':
    require(n.human_label, "config.label_noise.kind = 'human' needs config.label_noise."
            'human_label, the feature holding the crowd labels (cifar10_n: aggre_label, '
            'worse_label, random_label1..3; cifar100_n: noise_label)')
    require(config.data.source == 'tfds', "config.label_noise.kind = 'human' reads "
            "config.label_noise.human_label from a tfds dataset (config.data.source = 'tfds', "
            f'name cifar10_n or cifar100_n), not from source {config.data.source!r}')
    require(n.rate == 0, "config.label_noise.rate: kind 'human' takes the noise from the "
            f'dataset (its rate is measured, not set); leave the rate at 0, got {n.rate}')
  else:
    require(not n.human_label, "config.label_noise.human_label acts only with kind 'human', "
            f'got kind {n.kind!r}')


def _check_data(config):
  d = config.data
  require(d.source in data.SOURCES, f'config.data.source: unknown source {d.source!r}; '
          f'choose one of {sorted(data.SOURCES)}')
  require(d.train_subset_per_class >= 0, 'config.data.train_subset_per_class must be >= 0 '
          f'(0 = the whole split), got {d.train_subset_per_class}')
  require(d.val_size >= 0, f'config.data.val_size must be >= 0 (0 = no validation split), got '
          f'{d.val_size}')
  for key in ('cutmix_alpha', 'mixup_alpha'):
    require(d[key] >= 0 and math.isfinite(d[key]), f'config.data.{key} must be >= 0 (0 = off), '
            f'got {d[key]}')
  for key in ('mix_prob', 'mix_switch_prob'):
    require(0 <= d[key] <= 1, f'config.data.{key} must be in [0, 1], got {d[key]}')
  if d.cutmix_alpha > 0 or d.mixup_alpha > 0:
    require(methods.get_method(config).extra_view is None,
            f'config.data.cutmix_alpha / mixup_alpha cannot be combined with config.method = '
            f'{config.method!r} (its extra view would not be mixed with the batch)')
    require(config.supcon.weight == 0, 'config.data.cutmix_alpha / mixup_alpha cannot be '
            'combined with config.supcon (its second view would not be mixed)')
  require(0 <= d.test_fraction < 1, f'config.data.test_fraction must be in [0, 1) (0 = the '
          f'folder\'s own test/ or val/ split), got {d.test_fraction}')
  if d.source in data.STREAMED:
    st = d.stream
    require(st.image_size >= 8, f'config.data.stream.image_size must be >= 8, got {st.image_size}')
    require(st.eval_resize >= st.image_size, f'config.data.stream.eval_resize '
            f'({st.eval_resize}) must be >= config.data.stream.image_size ({st.image_size})')
    require(st.worker_count >= 0 and st.worker_threads >= 0,
            'config.data.stream.worker_count and worker_threads must be >= 0')
    require(config.supcon.weight == 0, 'config.supcon is not supported with '
            f"config.data.source = '{d.source}' (its second view would be a device crop of the "
            'host-augmented first)')


def _check_supcon(config):
  sc = config.supcon
  require(sc.weight >= 0, f'config.supcon.weight must be >= 0 (0 = off), got {sc.weight}')
  require(sc.temperature > 0 and sc.base_temperature > 0,
          'config.supcon.temperature and config.supcon.base_temperature must be > 0')
  require(sc.head_width >= 1, f'config.supcon.head_width must be >= 1, got {sc.head_width}')
  require(sc.positives in ('labels', 'target_argmax'),
          f"config.supcon.positives must be 'labels' or 'target_argmax', got {sc.positives!r}")
  if sc.weight > 0:
    method = methods.get_method(config)
    require(sc.positives == 'labels' or method.row_targets is not None,
            "config.supcon.positives = 'target_argmax' needs config.method = 'bsd' (a method "
            f'with per-sample targets), got {config.method!r}')
    require(config.data.augment, 'config.supcon needs config.data.augment = True (its two '
            'views are two augmentations of each image)')
    require(method.extra_view is None,
            f'config.supcon cannot be combined with config.method = {config.method!r} (it '
            'adds its own views to the batch)')


def _check_evals(config, num_processes):
  for name in config.evals:
    require(name in evaluation.SUITES, f'config.evals.{name}: no such evaluation suite '
            f'(have {sorted(evaluation.SUITES)})')
    every = config.evals[name].every_epochs
    require(every >= 0 and math.isfinite(every), f'config.evals.{name}.every_epochs must be '
            f'>= 0 (0 = off), got {every}')
  for suite, options, _ in evaluation.scheduled(config):
    require(suite.streamed_runs or config.data.source not in data.STREAMED,
            f'config.evals.{suite.name}: needs a test split held in memory; '
            f"config.data.source = '{config.data.source}' streams it")
    require(not suite.needs_test_images or num_processes == 1,
            f'config.evals.{suite.name}: reads the test images themselves, which a '
            f'{num_processes}-process job splits by rows; run it with bsd_jax.evaluate')
    try:
      suite.check_options(options)
      suite.check_run(options, config)
    except UserError as e:
      raise UserError(f'config.evals.{suite.name}: {e}') from None
