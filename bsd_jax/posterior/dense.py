"""BSD's dense posterior as pure functions on arrays: one Dirichlet per sample, alpha [N, K] (or a
batch's rows [B, K]), all entries > 0.

The prior puts `c` on the sample's label and `eps` on every other class; the training target is
the posterior mean alpha_i / sum_j alpha_ij; each epoch alpha_i <- gamma * alpha_i + p_i, p_i
the model's prediction for sample i (no gradient). With c = 1/(1-gamma) the label's weight in
the target is exactly gamma^t after t updates (docs/method.md). Tested alone in
tests/test_bsd_posterior.py; the trainer's BSD (methods/bsd.py) is made of these."""
import jax
import jax.numpy as jnp

from bsd_jax.posterior.bfloat16 import check_bfloat16_decay


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
  alpha [..., K] float32, or bfloat16 where `bfloat16_holds(gamma)` (else ValueError)."""
  check_bfloat16_decay(alpha.dtype, gamma, 'posterior.update_alpha')
  probs = jax.lax.stop_gradient(probs)
  return (gamma * alpha.astype(jnp.float32) + probs).astype(alpha.dtype)


def gamma_for_label_weight(label_weight: float, num_epochs: int) -> float:
  """The discount that leaves the label `label_weight` of the target after `num_epochs` updates.

  With c = 1/(1-gamma) the label's weight in the mean target is exactly gamma^t (docs/method.md), so
  w = gamma^epochs gives gamma = w^(1/epochs)."""
  return label_weight ** (1.0 / num_epochs)


def prior_strength_for(gamma: float) -> float:
  """c = 1/(1-gamma): the prior strength under which the label weight decays as gamma^t."""
  if gamma >= 1.0:
    raise ValueError('c = 1/(1-gamma) is undefined for gamma = 1; set c explicitly')
  return 1.0 / (1.0 - gamma)


def posterior_stats(alpha, labels, valid):
  """Summary of the targets, averaged over the rows where `valid` is true.

  Returns mean max-probability of the targets, mean weight of the given label, and the fraction
  of targets whose argmax is not the given label (the drift of the
  targets away from the labels must be visible)."""
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
