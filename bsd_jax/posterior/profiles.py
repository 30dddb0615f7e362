"""What the sparse posterior's profile spreads (config.bsd.rest_spread 'prediction', 'class' and
'blend', posterior/sparse.py) need beside the table: the class profiles of 'class' and 'blend'
(`init_profiles`, `update_profiles`), and the statistics of rows whose target the table alone does not give, taken
at each visit (`visit_sums`, `visit_stats`). Pure functions, tested in tests/test_bsd_sparse.py."""
import jax
import jax.numpy as jnp

from bsd_jax.posterior.dense import posterior_mean
from bsd_jax.posterior.sparse import dense_target


def init_profiles(num_classes: int, eps: float):
  """The class profiles of 'class' before any prediction: [K, K] of eps (the tail starts
  even), and the epoch they are discounted to."""
  return {'profile': jnp.full((num_classes, num_classes), eps, jnp.float32),
          'epoch': jnp.zeros((), jnp.int32)}


def update_profiles(profiles, probs, labels, mask, epoch, gamma: float):
  """Row c of the profile plus the batch's predictions [B, K] of the samples labelled c (mask
  [B]), the old sums discounted by gamma per epoch since their own, as each sample's posterior
  is discounted once an epoch: row c is the sum of the dense posteriors' prediction parts of
  label c's samples, up to when each was visited in the epoch."""
  elapsed = (epoch - profiles['epoch']).astype(jnp.float32)
  # Discounted only at an epoch's first step: the other steps leave the [K, K] table untouched.
  old = jax.lax.cond(elapsed > 0, lambda m: m * jnp.float32(gamma) ** elapsed, lambda m: m,
                     profiles['profile'])
  probs = jax.lax.stop_gradient(probs.astype(jnp.float32)) * mask[:, None]
  return {'profile': old + jax.ops.segment_sum(probs, labels, old.shape[0]),
          'epoch': jnp.asarray(epoch, jnp.int32)}


# Under a profile a row's target depends on something the table does not hold (the model's
# prediction for it, or its label's profile): its statistics are taken at each visit instead,
# from the rows the step has just updated and their profiles, and summed over the epoch (each
# row visited once) like the step's loss. `visit_sums` gives one batch's sums (names ending in
# '_max' are maxima, the rest add up), `visit_stats` turns an epoch's into the figures
# posterior_stats, noisy_label_recovery and shadow_gap give for a table.

def visit_sums(ids, values, rest, profile, labels, mask, clean_labels=None, shadow=None):
  """{name: scalar} for one batch of rows [B, ...] just updated, their profiles [B, K] and mask
  [B]."""
  num_classes = profile.shape[-1]
  t = dense_target(ids, values, rest, num_classes, 'prediction', profile)
  m = mask.astype(jnp.float32)
  on_label = jnp.take_along_axis(t, labels[:, None].astype(jnp.int32), -1)[:, 0]
  best = jnp.argmax(t, -1)
  out = {'visit_target_max_prob': jnp.sum(m * jnp.max(t, -1)),
         'visit_target_label_weight': jnp.sum(m * on_label),
         'visit_target_argmax_changed': jnp.sum(m * (best != labels))}
  if clean_labels is not None:
    noisy = m * (labels != clean_labels)
    on_clean = jnp.take_along_axis(t, clean_labels[:, None].astype(jnp.int32), -1)[:, 0]
    out.update({'visit_noisy_count': jnp.sum(noisy),
                'visit_noisy_target_argmax_clean': jnp.sum(noisy * (best == clean_labels)),
                'visit_noisy_target_clean_weight': jnp.sum(noisy * on_clean)})
  if shadow is not None:
    gap = jnp.abs(t - posterior_mean(shadow))
    out.update({'visit_shadow_abs_sum': jnp.sum(m[:, None] * gap),
                'visit_shadow_abs_max': jnp.max(jnp.where(m[:, None] > 0, gap, 0.0)),
                'visit_shadow_tv_sum': jnp.sum(m * 0.5 * jnp.sum(gap, -1))})
  return out


def visit_stats(sums, num_classes: int):
  """The epoch's visit sums (and its 'count' of visits) as the table statistics' names, in
  their order in the train record."""
  n = max(float(sums['count']), 1.0)
  out = {name: float(sums['visit_' + name]) / n for name in
         ('target_argmax_changed', 'target_label_weight', 'target_max_prob')}
  if 'visit_noisy_count' in sums:
    noisy = max(float(sums['visit_noisy_count']), 1.0)
    out.update({name: float(sums['visit_' + name]) / noisy for name in
                ('noisy_target_argmax_clean', 'noisy_target_clean_weight')})
  if 'visit_shadow_abs_max' in sums:
    out.update({'shadow_abs_max': float(sums['visit_shadow_abs_max']),
                'shadow_abs_mean': float(sums['visit_shadow_abs_sum']) / (n * num_classes),
                'shadow_tv_mean': float(sums['visit_shadow_tv_sum']) / n})
  return out
