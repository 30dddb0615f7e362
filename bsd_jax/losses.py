"""Per-sample classification losses, computed in float32 whatever the compute dtype."""
import jax
import jax.numpy as jnp


def cross_entropy(logits, labels):
  """Hard-label cross-entropy per sample: -log softmax(logits)[label]."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]


def soft_cross_entropy(logits, targets, temperature: float = 1.0):
  """-sum_j t_j log softmax(logits / T)_j per sample; the targets carry no gradient.

  Same gradient in the logits as KL(t || softmax(logits / T)).
  """
  targets = jax.lax.stop_gradient(targets.astype(jnp.float32))
  logp = jax.nn.log_softmax(logits.astype(jnp.float32) / temperature, axis=-1)
  return -jnp.sum(targets * logp, axis=-1)
