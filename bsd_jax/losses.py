"""Per-sample classification losses, computed in float32 whatever the compute dtype."""
import jax
import jax.numpy as jnp


def cross_entropy(logits, labels):
  """Hard-label cross-entropy per sample: -log softmax(logits)[label]."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]


def soft_cross_entropy(logits, targets, temperature: float = 1.0):
  """-sum_j t_j log softmax(logits / T)_j per sample; the targets carry no gradient.

  Same gradient in the logits as KL(t || softmax(logits / T))."""
  targets = jax.lax.stop_gradient(targets.astype(jnp.float32))
  logp = jax.nn.log_softmax(logits.astype(jnp.float32) / temperature, axis=-1)
  return -jnp.sum(targets * logp, axis=-1)


def supcon(z, labels, mask, temperature: float = 0.07, base_temperature: float = 0.07):
  """Supervised contrastive loss (Khosla et al. 2020, "L_out"), mean over the valid anchors.

  z: [M, D] L2-normalised projections of all views; labels [M]; mask [M] (0 = padding, neither
  anchor nor candidate). For anchor i, positives are the other valid samples of its label:
  -(T / T_base) mean_{p in P(i)} log(exp(z_i.z_p / T) / sum_{a != i, valid} exp(z_i.z_a / T)).
  Anchors without positives are left out."""
  z = z.astype(jnp.float32)
  valid = mask > 0
  sim = z @ z.T / temperature
  m = z.shape[0]
  others = valid[None, :] & ~jnp.eye(m, dtype=bool)
  sim = jnp.where(others, sim, -1e9)  # finite: no NaN gradients through the masked entries
  log_prob = sim - jax.nn.logsumexp(sim, axis=1, keepdims=True)
  positive = others & (labels[:, None] == labels[None, :])
  num_pos = jnp.sum(positive, axis=1)
  mean_log_prob = jnp.sum(jnp.where(positive, log_prob, 0.0), axis=1) / jnp.maximum(num_pos, 1)
  anchors = valid & (num_pos > 0)
  per_anchor = -(temperature / base_temperature) * mean_log_prob
  return jnp.sum(jnp.where(anchors, per_anchor, 0.0)) / jnp.maximum(jnp.sum(anchors), 1)
