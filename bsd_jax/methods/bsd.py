"""BSD (METHOD.md section 1): the posterior math, and the method built from it.

Each sample i keeps a Dirichlet posterior over its own label distribution, alpha_i in R^K, all
entries > 0: the prior puts `c` on the given label and `eps` elsewhere, the training target is
the posterior mean alpha_i / sum_j alpha_ij, and every epoch alpha_i <- gamma * alpha_i + p_i
with p_i the model's (stop-gradient) prediction for sample i. The math is pure functions, tested
alone (tests/test_bsd_posterior.py); `bsd(config)` makes the Method the trainer runs, and `hparams`
the constants a config gives (checked in bsd_jax/config_check.py).
"""
import jax
import jax.numpy as jnp

from bsd_jax import losses
from bsd_jax.methods import Method, check_bfloat16_decay, masked_mean


def init_alpha(labels, num_classes: int, c: float, eps: float, dtype=jnp.float32):
  """Prior alpha0[i, j] = c if j == labels[i] else eps; shape [N, K]."""
  one_hot = jax.nn.one_hot(labels, num_classes, dtype=jnp.bool_)
  return jnp.where(one_hot, jnp.asarray(c, dtype), jnp.asarray(eps, dtype))


def posterior_mean(alpha):
  """Mean of Dir(alpha) over the last axis: the soft target, rows sum to one. A row of zeros (a
  padding row that a restore onto more devices added) gives zeros, not NaN."""
  alpha = alpha.astype(jnp.float32)
  return alpha / jnp.maximum(jnp.sum(alpha, axis=-1, keepdims=True), jnp.finfo(jnp.float32).tiny)


def update_alpha(alpha, probs, gamma: float):
  """One Bayesian update with discount: gamma * alpha + probs (probs carry no gradient).
  alpha [..., K] float32, or bfloat16 where `methods.bfloat16_holds(gamma)` (else ValueError)."""
  check_bfloat16_decay(alpha.dtype, gamma, 'bsd.update_alpha')
  probs = jax.lax.stop_gradient(probs)
  return (gamma * alpha.astype(jnp.float32) + probs).astype(alpha.dtype)


def gamma_for_label_weight(label_weight: float, num_epochs: int) -> float:
  """The discount that leaves the label `label_weight` of the target after `num_epochs` updates.

  With c = 1/(1-gamma) the label's weight in the mean target is exactly gamma^t (METHOD.md), so
  w = gamma^epochs gives gamma = w^(1/epochs).
  """
  return label_weight ** (1.0 / num_epochs)


def prior_strength_for(gamma: float) -> float:
  """c = 1/(1-gamma): the prior strength under which the label weight decays as gamma^t."""
  if gamma >= 1.0:
    raise ValueError('c = 1/(1-gamma) is undefined for gamma = 1; set c explicitly')
  return 1.0 / (1.0 - gamma)


def posterior_stats(alpha, labels, valid):
  """Summary of the targets, averaged over the rows where `valid` is true.

  Returns mean max-probability of the targets, mean weight of the given label, and the fraction
  of targets whose argmax is not the given label (METHOD.md "Regime matters": the drift of the
  targets away from the labels must be visible).
  """
  t = posterior_mean(alpha)
  w = valid.astype(jnp.float32)
  n = jnp.maximum(jnp.sum(w), 1.0)
  label_weight = jnp.take_along_axis(t, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]
  changed = (jnp.argmax(t, axis=-1) != labels).astype(jnp.float32)
  return {
      'target_max_prob': jnp.sum(w * jnp.max(t, axis=-1)) / n,
      'target_label_weight': jnp.sum(w * label_weight) / n,
      'target_argmax_changed': jnp.sum(w * changed) / n,
  }


def noisy_label_recovery(alpha, noisy_labels, clean_labels, valid):
  """Under label noise, over the valid rows whose given label is wrong: the fraction whose target
  argmax is the clean label again (BSD's claim made visible) and the mean target weight on it."""
  t = posterior_mean(alpha)
  w = (valid & (noisy_labels != clean_labels)).astype(jnp.float32)
  n = jnp.maximum(jnp.sum(w), 1.0)
  clean_weight = jnp.take_along_axis(t, clean_labels[:, None].astype(jnp.int32), axis=-1)[:, 0]
  return {
      'noisy_target_argmax_clean': jnp.sum(w * (jnp.argmax(t, axis=-1) == clean_labels)) / n,
      'noisy_target_clean_weight': jnp.sum(w * clean_weight) / n,
  }


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
  if clean_labels is None:
    return (posterior_stats(alpha, labels, valid),)
  return (posterior_stats(alpha, labels, valid),
          noisy_label_recovery(alpha, labels, clean_labels, valid))


def bsd(config):
  """BSD: soft-target CE on the posterior mean of the sample's Dirichlet, and
  alpha_i <- gamma alpha_i + p_i at each visit (or from an eval pass at each epoch end); with
  config.bsd.top_k = k > 0 the posterior is kept sparse (bsd_sparse.py)."""
  hp = hparams(config)
  if config.bsd.top_k:
    from bsd_jax.methods import bsd_sparse
    return bsd_sparse.method(config, hp)
  return Method(
      'bsd',
      lambda inp: masked_mean(losses.soft_cross_entropy(
          inp.logits, posterior_mean(inp.rows), hp['temperature']), inp.mask),
      init_table=lambda labels, k: init_alpha(labels, k, hp['c'], hp['eps']),
      update_rows=lambda rows, probs, epoch: update_alpha(rows, probs, hp['gamma']),
      epoch_stats=epoch_stats,
      refresh_pass=config.bsd.prediction_source == 'eval_pass',
      row_targets=lambda rows, num_classes: posterior_mean(rows),
      description=f'BSD: {hp}')
