"""Evaluation metrics over predicted probabilities [n, K] and integer labels [n] (METHOD.md s. 3).

Pure jnp functions; they also accept numpy arrays. Every function returns a scalar.
"""
import jax.numpy as jnp

# Probabilities are clipped here before the log in `nll`, so a confident mistake costs at most
# -log(1e-12) ~ 27.6 nats instead of inf.
_NLL_FLOOR = 1e-12


def accuracy(probs, labels):
  """Top-1 accuracy: fraction of samples whose argmax is the label."""
  return jnp.mean(jnp.argmax(probs, axis=-1) == labels)


def nll(probs, labels):
  """Mean negative log-likelihood of the label, -log p(y), with p clipped at 1e-12."""
  p = jnp.take_along_axis(jnp.asarray(probs), jnp.asarray(labels)[:, None], axis=-1)[:, 0]
  return -jnp.mean(jnp.log(jnp.maximum(p, _NLL_FLOOR)))


def brier(probs, labels):
  """Mean over samples of sum over classes (p - onehot)^2 (range [0, 2])."""
  probs = jnp.asarray(probs)
  one_hot = jnp.eye(probs.shape[-1], dtype=probs.dtype)[labels]
  return jnp.mean(jnp.sum((probs - one_hot) ** 2, axis=-1))


def confidence(probs):
  """Mean top-label confidence (max probability)."""
  return jnp.mean(jnp.max(probs, axis=-1))


def ece(probs, labels, num_bins: int = 15):
  """Expected calibration error of the top label, equal-width bins.

  Bin m (m = 0..M-1) holds confidences in (m/M, (m+1)/M]: the upper edge is closed, so a
  confidence of exactly 1.0 is in the last bin (and 0.0, never a top-label confidence, in the
  first). ECE = sum_m |B_m|/n * |acc(B_m) - conf(B_m)|; empty bins contribute nothing.
  """
  probs = jnp.asarray(probs)
  conf = jnp.max(probs, axis=-1)
  correct = (jnp.argmax(probs, axis=-1) == jnp.asarray(labels)).astype(conf.dtype)
  bins = jnp.clip(jnp.ceil(conf * num_bins).astype(jnp.int32) - 1, 0, num_bins - 1)
  count = jnp.zeros(num_bins).at[bins].add(1.0)
  conf_sum = jnp.zeros(num_bins).at[bins].add(conf)
  correct_sum = jnp.zeros(num_bins).at[bins].add(correct)
  # |sum(correct) - sum(conf)| over a bin equals |B_m| * |acc(B_m) - conf(B_m)|; empty bins are 0.
  return jnp.sum(jnp.abs(correct_sum - conf_sum)) / conf.shape[0]


def classification_metrics(probs, labels):
  """The metrics reported for every evaluation, as python floats."""
  return {
      'accuracy': float(accuracy(probs, labels)),
      'nll': float(nll(probs, labels)),
      'ece': float(ece(probs, labels, num_bins=15)),
      'brier': float(brier(probs, labels)),
      'confidence': float(confidence(probs)),
  }
