"""BSD (arXiv 2512.24162) as the trainer runs it: the Method made from the posterior's math of
bsd_jax/posterior/ (dense.py, or sparse.py with config.bsd.top_k), and the checks of config.bsd.

Each sample i keeps a Dirichlet posterior over its own label distribution, alpha_i in R^K: the
prior puts `c` on the given label and `eps` elsewhere, the training target is the posterior
mean, and every epoch alpha_i <- gamma * alpha_i + p_i with p_i the model's (stop-gradient)
prediction for sample i. `bsd(config)` makes the Method, `hparams` the constants a config gives
(checked by `check`)."""
import jax
import jax.numpy as jnp

from bsd_jax import losses, models
from bsd_jax.errors import require
from bsd_jax.methods.method import Method, masked_mean
from bsd_jax.posterior import profiles
from bsd_jax.posterior import sparse as bsd_sparse
from bsd_jax.posterior.bfloat16 import bfloat16_holds
from bsd_jax.posterior.dense import (gamma_for_label_weight, init_alpha, noisy_label_recovery,
                                     posterior_mean, posterior_stats, prior_strength_for,
                                     update_alpha)


def hparams(config) -> dict:
  """The BSD constants of a run: gamma from the key or from the end label weight, c from gamma."""
  b = config.bsd
  gamma = b.gamma if b.gamma is not None else gamma_for_label_weight(b.label_weight_end,
                                                                     config.num_epochs)
  c = b.c if b.c is not None else prior_strength_for(gamma)
  return {'gamma': float(gamma), 'c': float(c), 'eps': float(b.eps),
          'temperature': float(b.temperature)}


def epoch_stats(alpha, labels, valid, clean_labels=None, *, num_classes=None):
  """(posterior_stats, and noisy_label_recovery when the labels were corrupted)."""
  out = (posterior_stats(alpha, labels, valid),)
  return out if clean_labels is None else out + (
      noisy_label_recovery(alpha, labels, clean_labels, valid),)


def bsd(config):
  """BSD: soft-target CE on the posterior mean of the sample's Dirichlet, and
  alpha_i <- gamma alpha_i + p_i at each visit (or from an eval pass at each epoch end); with
  config.bsd.top_k = k > 0 the posterior is kept sparse (bsd_sparse.py)."""
  hp = hparams(config)
  if config.bsd.top_k:
    return _sparse(config, hp)
  return Method(
      'bsd', lambda inp: masked_mean(losses.soft_cross_entropy(
          inp.logits, posterior_mean(inp.rows), hp['temperature']), inp.mask),
      init_table=lambda labels, k: init_alpha(labels, k, hp['c'], hp['eps']),
      update_rows=lambda rows, probs, epoch: update_alpha(rows, probs, hp['gamma']),
      epoch_stats=epoch_stats, refresh_pass=config.bsd.prediction_source == 'eval_pass',
      row_targets=lambda rows, num_classes, probs: posterior_mean(rows),
      description=f'BSD: {hp}')


def _sparse(config, hp):
  """The sparse BSD Method: rows are {'ids', 'values', 'rest'} (and 'shadow', the dense alpha
  updated alongside, with config.bsd.top_k_shadow), the loss and the update of bsd_sparse.py;
  the values and the shadow in config.table_dtype, ids int32, rest float32. With rest_spread
  'prediction' or 'class' a row's target needs its profile (the model's prediction for it; its
  label's row of the class profiles, which the carry holds): its statistics are taken at each
  visit, its class targets from an eval-mode pass at the end (whose predictions 'class' does
  not use: its profiles are in the carry). What the step hands the row functions as `tails` is
  the probs, or {'probs', 'profile'} under 'class' and 'blend' (Method.row_profile)."""
  k, shadow, spread = config.bsd.top_k, config.bsd.top_k_shadow, config.bsd.rest_spread
  dtype = models.DTYPES[config.table_dtype]
  by_profile, by_class = spread != 'uniform', spread in CLASS_SPREADS
  # 'blend' is a class profile to the posterior functions: the blend made beside them.
  spread_of_table = 'class' if by_class else spread

  def probs_of(tails):
    return tails['probs'] if by_class else tails

  def profile_of(tails, ids):
    """The profile the rows with these ids spread their rest by (None: evenly)."""
    if spread == 'blend':
      return bsd_sparse.blend(ids, tails['profile'], tails['probs'])
    return tails['profile'] if by_class else (tails if by_profile else None)

  def init_table(labels, num_classes):
    ids, values, rest = bsd_sparse.init(labels, num_classes, k, hp['c'], hp['eps'], dtype)
    rows = {'ids': ids, 'values': values, 'rest': rest}
    if shadow:
      rows['shadow'] = init_alpha(labels, num_classes, hp['c'], hp['eps'], dtype)
    return rows

  def loss(inp):
    r = inp.rows
    tails = None
    if by_class:
      probs = jax.lax.stop_gradient(jax.nn.softmax(inp.logits.astype(jnp.float32), -1))
      tails = {'probs': probs, 'profile': inp.carry['profile'][inp.labels]}
    return masked_mean(bsd_sparse.soft_cross_entropy(
        inp.logits, r['ids'], r['values'], r['rest'], hp['temperature'], spread_of_table,
        profile_of(tails, r['ids']) if by_class else None), inp.mask)

  def update_rows(rows, tails, epoch):
    probs = probs_of(tails)
    ids, values, rest = bsd_sparse.update(rows['ids'], rows['values'], rows['rest'], probs,
                                          hp['gamma'], dtype, spread_of_table,
                                          profile_of(tails, rows['ids']) if by_class else None)
    new = {'ids': ids, 'values': values, 'rest': rest}
    if shadow:
      new['shadow'] = update_alpha(rows['shadow'], probs, hp['gamma'])
    return new

  def epoch_stats(table, labels, valid, clean_labels=None, *, num_classes):
    sparse = (table['ids'], table['values'], table['rest'])
    out = (bsd_sparse.posterior_stats(*sparse, labels, valid, num_classes),)
    if clean_labels is not None:
      out += (bsd_sparse.noisy_label_recovery(*sparse, labels, clean_labels, valid, num_classes),)
    if shadow:
      out += (bsd_sparse.shadow_gap(*sparse, table['shadow'], valid),)
    return out

  def visit_sums(rows, tails, labels, mask, clean_labels):
    return profiles.visit_sums(rows['ids'], rows['values'], rows['rest'],
                               profile_of(tails, rows['ids']), labels, mask, clean_labels,
                               rows.get('shadow'))

  def row_targets(rows, num_classes, tails):
    return bsd_sparse.dense_target(rows['ids'], rows['values'], rows['rest'], num_classes,
                                   spread_of_table,
                                   None if tails is None else profile_of(tails, rows['ids']))

  def next_carry(inp):
    probs = jax.nn.softmax(inp.logits.astype(jnp.float32), axis=-1)
    return profiles.update_profiles(inp.carry, probs, inp.labels, inp.mask, inp.epoch,
                                      hp['gamma'])

  return Method(
      'bsd', loss, init_table=init_table, update_rows=update_rows,
      init_carry=(lambda batch_size, num_classes: profiles.init_profiles(num_classes,
                                                                           hp['eps']))
      if by_class else None,
      next_carry=next_carry if by_class else None,
      row_profile=(lambda carry, labels: carry['profile'][labels]) if by_class else None,
      epoch_stats=None if by_profile else epoch_stats,
      visit_sums=visit_sums if by_profile else None,
      visit_stats=profiles.visit_stats if by_profile else None,
      refresh_pass=config.bsd.prediction_source == 'eval_pass',
      row_targets=row_targets, targets_need_probs=by_profile,
      class_targets=None if by_profile else (
          lambda table, labels, valid, num_classes: bsd_sparse.class_mean_targets(
              table['ids'], table['values'], table['rest'], labels, valid, num_classes)),
      description=f'BSD, sparse posterior: top {k} classes per row, the rest spread by '
                  f'{spread}{" and a dense shadow table" if shadow else ""}: {hp}')


def check(config):
  """UserError naming the first bad key of config.bsd (and table_dtype where BSD's update cannot
  be held in it)."""
  b = config.bsd
  if b.gamma is None:
    require(0 < b.label_weight_end < 1,
            f'config.bsd.label_weight_end must be in (0, 1), got {b.label_weight_end}')
    require(config.num_epochs >= 1, f'config.num_epochs must be >= 1, got {config.num_epochs}')
    gamma = gamma_for_label_weight(b.label_weight_end, config.num_epochs)
  else:
    gamma = b.gamma
  require(0.0 < gamma <= 1.0, f'config.bsd.gamma must be in (0, 1], got {gamma}')
  require(b.c is not None or gamma < 1.0, 'config.bsd.c must be set when config.bsd.gamma = 1 '
          '(c = 1/(1-gamma) is undefined)')
  require(b.c is None or b.c > 0, f'config.bsd.c must be > 0, got {b.c}')
  require(b.eps > 0, f'config.bsd.eps must be > 0, got {b.eps}')
  require(b.temperature > 0, f'config.bsd.temperature must be > 0, got {b.temperature}')
  require(b.prediction_source in ('train_pass', 'eval_pass'),
          "config.bsd.prediction_source must be 'train_pass' or 'eval_pass', got "
          f'{b.prediction_source!r}')
  require(b.top_k >= 0, f'config.bsd.top_k must be >= 0 (0 = the dense posterior), got {b.top_k}')
  require(config.table_dtype != 'bfloat16' or bfloat16_holds(gamma),
          f"config.table_dtype = 'bfloat16' cannot hold BSD's posterior at gamma = {gamma:.4f}: "
          f'an update moves an entry by {1 - gamma:.2%} of its distance to the prediction, '
          'below bfloat16\'s resolution (2^-8), so the entries stop learning; use '
          "table_dtype 'float32' (bsd.top_k keeps a smaller table; a run directory made with "
          'bfloat16 cannot resume: start it again in another --workdir)')
  require(b.rest_spread in SPREADS, f'config.bsd.rest_spread must be one of '
          f'{", ".join(repr(s) for s in SPREADS)}, got {b.rest_spread!r}')
  require(b.rest_spread == 'uniform' or b.prediction_source == 'train_pass',
          f'config.bsd.rest_spread = {b.rest_spread!r} needs config.bsd.prediction_source = '
          "'train_pass' (its statistics are taken at each visit, from the prediction that "
          'updates the row)')
  require(b.top_k > 0 or not b.top_k_shadow, 'config.bsd.top_k_shadow needs config.bsd.top_k '
          '> 0 (it measures the sparse posterior against the dense one)')


SPREADS = bsd_sparse.SPREADS + ('blend',)
CLASS_SPREADS = ('class', 'blend')  # the spreads that keep class profiles in the carry
MAX_CLASS_PROFILES = 1000  # [K, K] float32 on every device (BENCHMARKS.md)


def check_classes(config, num_classes: int):
  require(config.bsd.top_k <= num_classes, f'config.bsd.top_k = {config.bsd.top_k} is more '
          f'than the {num_classes} classes of the data (at most {num_classes}; 0 = dense)')
  spread = config.bsd.rest_spread
  require(not config.bsd.top_k or spread not in CLASS_SPREADS
          or num_classes <= MAX_CLASS_PROFILES,
          f"config.bsd.rest_spread = {spread!r} keeps a [K, K] table of class profiles on every "
          f'device, {num_classes ** 2 * 4 / 2**30:.2f} GiB for the {num_classes} classes of the '
          f"data: at most {MAX_CLASS_PROFILES} classes ('uniform' or 'prediction' keep none)")


def acts(key, flat):
  """bsd.label_weight_end acts only where bsd.gamma is not set, bsd.rest_spread and
  bsd.top_k_shadow where bsd.top_k is; every other key always."""
  if key == 'bsd.label_weight_end':
    return flat.get('bsd.gamma') is None
  if key in ('bsd.rest_spread', 'bsd.top_k_shadow'):
    return bool(flat.get('bsd.top_k'))
  return True
