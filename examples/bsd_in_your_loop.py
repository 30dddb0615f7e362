"""BSD in your own training loop: plain Flax + optax, the posterior from `bsd_jax.posterior`, no
bsd_jax trainer, config or data code. Overlapping Gaussian classes it makes itself; prints test
accuracy and ECE for BSD and for plain cross-entropy.

    python examples/bsd_in_your_loop.py

The posterior table is split by rows over every device (run with
XLA_FLAGS=--xla_force_host_platform_device_count=8 to see 8 CPU devices share it)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from bsd_jax import metrics, posterior

K, DIM, N_TRAIN, N_TEST, BATCH, EPOCHS = 10, 32, 4096, 2048, 128, 30


def make_data(seed=0):
  rng = np.random.default_rng(seed)
  means = rng.normal(0, 1, (K, DIM))
  def draw(n):
    y = rng.integers(0, K, n)
    return (means[y] + rng.normal(0, 1.6, (n, DIM))).astype(np.float32), y.astype(np.int32)
  return draw(N_TRAIN), draw(N_TEST)


class MLP(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Dense(256)(x))
    return nn.Dense(K)(nn.relu(nn.Dense(256)(x)))


def train(use_bsd, train_set, epochs, seed=0, label_weight_end=0.5, eps=1e-3):
  (x, y), mesh = train_set, posterior.make_mesh()
  gamma = posterior.gamma_for_label_weight(label_weight_end, epochs)
  c = posterior.prior_strength_for(gamma)
  rows = posterior.padded_rows(N_TRAIN, len(mesh.devices))
  labels = np.concatenate([y, np.zeros(rows - N_TRAIN, np.int32)])  # padding rows never visited
  alpha = jax.device_put(posterior.init_alpha(labels, K, c, eps), posterior.rows_sharded(mesh))
  model = MLP()
  params = model.init(jax.random.PRNGKey(seed), x[:1])
  steps = epochs * (N_TRAIN // BATCH)
  tx = optax.sgd(optax.cosine_decay_schedule(0.1, steps), momentum=0.9, nesterov=True)
  opt_state = tx.init(params)
  batch = NamedSharding(mesh, P('data'))

  @jax.jit
  def step(params, opt_state, alpha, xb, yb, idx):
    rows = posterior.gather_rows(alpha, idx, mesh)  # [B, K] float32

    def loss_fn(p):
      logits = model.apply(p, xb)
      if use_bsd:
        targets = posterior.posterior_mean(rows)
      else:
        targets = jax.nn.one_hot(yb, K)
      return jnp.mean(posterior.soft_cross_entropy(logits, targets)), logits

    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    # Update at visit: the same forward pass's prediction enters the sample's posterior.
    new_rows = posterior.update_alpha(rows, jax.nn.softmax(logits), gamma)
    alpha = posterior.scatter_rows(alpha, idx, new_rows, jnp.ones_like(yb, bool), mesh)
    return optax.apply_updates(params, updates), opt_state, alpha, loss

  rng = np.random.default_rng(seed)
  for _ in range(epochs):
    order = rng.permutation(N_TRAIN)
    for b in range(N_TRAIN // BATCH):
      idx = order[b * BATCH:(b + 1) * BATCH].astype(np.int32)
      xb, yb, ib = (jax.device_put(a, batch) for a in (x[idx], y[idx], idx))
      params, opt_state, alpha, loss = step(params, opt_state, alpha, xb, yb, ib)
    loss.block_until_ready()  # an epoch's steps at most in flight (XLA's CPU collectives)
  return model, params, alpha


def main(epochs=EPOCHS):
  train_set, (x_test, y_test) = make_data()
  results = {}
  for name in ('ce', 'bsd'):
    model, params, alpha = train(name == 'bsd', train_set, epochs)
    probs = np.asarray(jax.nn.softmax(model.apply(params, x_test)))
    results[name] = (float(metrics.accuracy(probs, y_test)), float(metrics.ece(probs, y_test)))
    stats = posterior.posterior_stats(alpha[:N_TRAIN], train_set[1], np.ones(N_TRAIN, bool))
    print(f'{name}: test accuracy {results[name][0]:.4f}, ECE {results[name][1]:.4f}'
          + (f', mean target weight on the label {float(stats["target_label_weight"]):.3f}'
             if name == 'bsd' else ''))
  return results


if __name__ == '__main__':
  main()
