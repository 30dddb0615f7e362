"""Every check of a config that needs no data, in one place: run first, so that a bad value fails
with one line naming its key before any work (and before anything is written).

The builders (methods, models, optim, data.label_noise) trust a checked config. Checks that
need the data (splits, features, image files, superclasses) are raised by the data sources,
also before training starts; those that need only the class count are `check_classes`
(experiment.build). The options of evaluation suites are checked by each suite
(`Suite.check_options`), the same code for config.evals and the evaluate command's flags.
"""
import math
import os

from bsd_jax.errors import UserError


def _require(ok, message):
  if not ok:
    raise UserError(message)


def _in(value, low, high, key, low_open=False, high_open=False):
  """low <= value <= high (or < at an open end), naming config.`key` otherwise."""
  ok = ((value > low if low_open else value >= low)
        and (value < high if high_open else value <= high))
  brackets = ('(' if low_open else '[') + f'{low}, {high}' + (')' if high_open else ']')
  _require(ok, f'config.{key} must be in {brackets}, got {value}')


def check_config(config, num_devices: int, num_processes: int = 1):
  """Raise UserError naming the first bad key."""
  _check_method(config)
  _check_training(config, num_devices)
  _check_label_noise(config)
  _check_data(config)
  _check_supcon(config)
  _check_evals(config, num_processes)


def _check_training(config, num_devices):
  from bsd_jax import models
  _require(config.model.name in models.MODELS,
           f'config.model.name: unknown model {config.model.name!r}; choose one of '
           f'{sorted(models.MODELS)}')
  for key in ('compute_dtype', 'table_dtype'):
    _require(config[key] in models.DTYPES,
             f'config.{key}: {config[key]!r} is not one of {sorted(models.DTYPES)}')
  _require(config.num_epochs >= 1, f'config.num_epochs must be >= 1, got {config.num_epochs}')
  for key in ('batch_size', 'eval_batch_size'):
    value = config[key]
    _require(value >= 1 and value % num_devices == 0,
             f'config.{key} = {value} must be a positive multiple of the device count '
             f'({num_devices})')
  _require(config.learning_rate >= 0, 'config.learning_rate must be >= 0')
  from bsd_jax import peers
  peers.check_timeout(config.peer_timeout_s)
  _require(config.lr_schedule in ('cosine', 'multistep'),
           f"config.lr_schedule: unknown schedule {config.lr_schedule!r}; choose 'cosine' or "
           "'multistep'")
  _require(0 <= config.warmup_epochs <= config.num_epochs,
           'config.warmup_epochs must be in [0, num_epochs]')
  for key in ('log_every_steps', 'steps_per_call', 'checkpoint_every_epochs',
              'eval_every_epochs', 'keep_checkpoints'):
    _require(config[key] >= 1, f'config.{key} must be >= 1, got {config[key]}')


def _check_method(config):
  from bsd_jax import methods
  _require(config.method in methods.METHODS,
           f'config.method: unknown method {config.method!r}; choose one of '
           f'{sorted(methods.METHODS)}')
  # The selected method's section only (a sweep checks each of its methods' configs).
  {'bsd': _check_bsd, 'label_smoothing': _check_label_smoothing, 'pskd': _check_pskd,
   'cskd': _check_cskd, 'tfkd_reg': _check_tfkd, 'dlb': _check_dlb,
   'temporal_ensembling': _check_temporal_ensembling}.get(config.method, lambda c: None)(config)


def _check_bsd(config):
  from bsd_jax import methods
  from bsd_jax.methods import bsd
  b = config.bsd
  if b.gamma is None:
    _require(0 < b.label_weight_end < 1,
             f'config.bsd.label_weight_end must be in (0, 1), got {b.label_weight_end}')
    _require(config.num_epochs >= 1, f'config.num_epochs must be >= 1, got {config.num_epochs}')
    gamma = bsd.gamma_for_label_weight(b.label_weight_end, config.num_epochs)
  else:
    gamma = b.gamma
  _require(0.0 < gamma <= 1.0, f'config.bsd.gamma must be in (0, 1], got {gamma}')
  _require(b.c is not None or gamma < 1.0, 'config.bsd.c must be set when config.bsd.gamma = 1 '
           '(c = 1/(1-gamma) is undefined)')
  _require(b.c is None or b.c > 0, f'config.bsd.c must be > 0, got {b.c}')
  _require(b.eps > 0, f'config.bsd.eps must be > 0, got {b.eps}')
  _require(b.temperature > 0, f'config.bsd.temperature must be > 0, got {b.temperature}')
  _require(b.prediction_source in ('train_pass', 'eval_pass'),
           "config.bsd.prediction_source must be 'train_pass' or 'eval_pass', got "
           f'{b.prediction_source!r}')
  _require(b.top_k >= 0, f'config.bsd.top_k must be >= 0 (0 = the dense posterior), got '
           f'{b.top_k}')
  _require(config.table_dtype != 'bfloat16' or methods.bfloat16_holds(gamma),
           f"config.table_dtype = 'bfloat16' cannot hold BSD's posterior at gamma = {gamma:.4f}: "
           f'an update moves an entry by {1 - gamma:.2%} of its distance to the prediction, '
           'below bfloat16\'s resolution (2^-8), so the entries stop learning; use '
           "table_dtype 'float32' (bsd.top_k keeps a smaller table; a run directory made with "
           'bfloat16 cannot resume: start it again in another --workdir)')
  _require(b.top_k > 0 or not b.top_k_shadow, 'config.bsd.top_k_shadow needs config.bsd.top_k '
           '> 0 (it measures the sparse posterior against the dense one)')


def check_classes(config, num_classes: int):
  """The checks that need the class count (experiment.build, before any work)."""
  if config.method == 'bsd':
    _require(config.bsd.top_k <= num_classes, f'config.bsd.top_k = {config.bsd.top_k} is more '
             f'than the {num_classes} classes of the data (at most {num_classes}; 0 = dense)')


def _positive(config, key, strict=True):
  section, leaf = key.split('.')
  value = config[section][leaf]
  _require(value > 0 if strict else value >= 0,
           f'config.{key} must be {">" if strict else ">="} 0, got {value}')


def _check_label_smoothing(config):
  _in(config.label_smoothing.eps, 0, 1, 'label_smoothing.eps')


def _check_pskd(config):
  _in(config.pskd.alpha_T, 0, 1, 'pskd.alpha_T')


def _check_cskd(config):
  _positive(config, 'cskd.temperature')
  _positive(config, 'cskd.weight', strict=False)


def _check_tfkd(config):
  _in(config.tfkd.alpha, 0, 1, 'tfkd.alpha')
  _in(config.tfkd.correct_prob, 0, 1, 'tfkd.correct_prob', low_open=True, high_open=True)
  _positive(config, 'tfkd.temperature')
  _positive(config, 'tfkd.multiplier', strict=False)


def _check_dlb(config):
  _positive(config, 'dlb.temperature')
  _positive(config, 'dlb.weight', strict=False)


def _check_temporal_ensembling(config):
  from bsd_jax import methods
  a = config.temporal_ensembling.alpha
  _in(a, 0, 1, 'temporal_ensembling.alpha', high_open=True)
  _require(config.table_dtype != 'bfloat16' or methods.bfloat16_holds(a),
           f"config.table_dtype = 'bfloat16' cannot hold temporal ensembling's EMA at "
           f'temporal_ensembling.alpha = {a}: an update moves an entry by {1 - a:.0%} of its '
           "distance to the prediction, too little for bfloat16's resolution (2^-8) to follow "
           "within 1% (alpha <= 0.609 can); use table_dtype 'float32'")
  _positive(config, 'temporal_ensembling.max_weight', strict=False)
  _positive(config, 'temporal_ensembling.rampup_epochs')


def _check_label_noise(config):
  from bsd_jax.data import label_noise
  n = config.label_noise
  _require(n.kind in label_noise.KINDS,
           f'config.label_noise.kind: unknown kind {n.kind!r}; choose from {label_noise.KINDS}')
  _require(0.0 <= n.rate <= 1.0, f'config.label_noise.rate must be in [0, 1], got {n.rate}')
  _require(not n.superclass_csv or os.path.isfile(n.superclass_csv),
           f'config.label_noise.superclass_csv: {n.superclass_csv} is not a file')


def _check_data(config):
  from bsd_jax import data
  d = config.data
  _require(d.source in data.SOURCES, f'config.data.source: unknown source {d.source!r}; '
           f'choose one of {sorted(data.SOURCES)}')
  _require(d.train_subset_per_class >= 0, 'config.data.train_subset_per_class must be >= 0 '
           f'(0 = the whole split), got {d.train_subset_per_class}')
  _require(d.val_size >= 0, f'config.data.val_size must be >= 0 (0 = no validation split), got '
           f'{d.val_size}')
  for key in ('cutmix_alpha', 'mixup_alpha'):
    _require(d[key] >= 0 and math.isfinite(d[key]), f'config.data.{key} must be >= 0 (0 = off), '
             f'got {d[key]}')
  for key in ('mix_prob', 'mix_switch_prob'):
    _require(0 <= d[key] <= 1, f'config.data.{key} must be in [0, 1], got {d[key]}')
  if d.cutmix_alpha > 0 or d.mixup_alpha > 0:
    from bsd_jax import methods
    _require(methods.get_method(config).extra_view is None,
             f'config.data.cutmix_alpha / mixup_alpha cannot be combined with config.method = '
             f'{config.method!r} (its extra view would not be mixed with the batch)')
    _require(config.supcon.weight == 0, 'config.data.cutmix_alpha / mixup_alpha cannot be '
             'combined with config.supcon (its second view would not be mixed)')
  if d.source == 'tfds_stream':
    st = d.stream
    _require(st.image_size >= 8, f'config.data.stream.image_size must be >= 8, got '
             f'{st.image_size}')
    _require(st.eval_resize >= st.image_size, f'config.data.stream.eval_resize '
             f'({st.eval_resize}) must be >= config.data.stream.image_size ({st.image_size})')
    _require(st.worker_count >= 0 and st.worker_threads >= 0,
             'config.data.stream.worker_count and worker_threads must be >= 0')
    _require(config.supcon.weight == 0, "config.supcon is not supported with "
             "config.data.source = 'tfds_stream' (its second view would be a device crop of the "
             "host-augmented first)")


def _check_supcon(config):
  from bsd_jax import methods
  sc = config.supcon
  _require(sc.weight >= 0, f'config.supcon.weight must be >= 0 (0 = off), got {sc.weight}')
  _require(sc.temperature > 0 and sc.base_temperature > 0,
           'config.supcon.temperature and config.supcon.base_temperature must be > 0')
  _require(sc.head_width >= 1, f'config.supcon.head_width must be >= 1, got {sc.head_width}')
  _require(sc.positives in ('labels', 'target_argmax'),
           f"config.supcon.positives must be 'labels' or 'target_argmax', got {sc.positives!r}")
  if sc.weight > 0:
    method = methods.get_method(config)
    _require(sc.positives == 'labels' or method.row_targets is not None,
             "config.supcon.positives = 'target_argmax' needs config.method = 'bsd' (a method "
             f'with per-sample targets), got {config.method!r}')
    _require(config.data.augment, 'config.supcon needs config.data.augment = True (its two '
             'views are two augmentations of each image)')
    _require(method.extra_view is None,
             f'config.supcon cannot be combined with config.method = {config.method!r} (it '
             'adds its own views to the batch)')


def _check_evals(config, num_processes):
  from bsd_jax import evaluation
  for name in config.evals:
    _require(name in evaluation.SUITES, f'config.evals.{name}: no such evaluation suite '
             f'(have {sorted(evaluation.SUITES)})')
    every = config.evals[name].every_epochs
    _require(every >= 0 and math.isfinite(every), f'config.evals.{name}.every_epochs must be '
             f'>= 0 (0 = off), got {every}')
  for suite, options, _ in evaluation.scheduled(config):
    _require(config.data.source != 'tfds_stream', f'config.evals.{suite.name}: needs a test '
             "split held in memory; config.data.source = 'tfds_stream' streams it")
    _require(not suite.needs_test_images or num_processes == 1,
             f'config.evals.{suite.name}: reads the test images themselves, which a '
             f'{num_processes}-process job splits by rows; run it with bsd_jax.evaluate')
    try:
      suite.check_options(options)
    except UserError as e:
      raise UserError(f'config.evals.{suite.name}: {e}') from None
