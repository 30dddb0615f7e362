"""BSD posterior math against docs/method.md, "The posterior" (closed form, label weight, update at visit)."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bsd_jax import losses, posterior, sharding

K = 7


def _probs(key, shape):
  return jax.nn.softmax(3.0 * jax.random.normal(key, shape + (K,)), axis=-1)


def test_init_alpha_puts_c_on_the_label_and_eps_elsewhere():
  alpha = posterior.init_alpha(jnp.array([2, 0, 6]), K, c=5.0, eps=0.01)
  chex.assert_shape(alpha, (3, K))
  np.testing.assert_array_equal(alpha[0], np.float32([0.01, 0.01, 5.0, 0.01, 0.01, 0.01, 0.01]))
  assert alpha[1, 0] == 5.0 and alpha[2, 6] == 5.0
  assert float(alpha.sum()) == pytest.approx(3 * (5.0 + 6 * 0.01), rel=1e-6)


def test_posterior_mean_rows_are_distributions():
  alpha = jnp.exp(jax.random.normal(jax.random.PRNGKey(0), (50, K)) * 4)
  t = posterior.posterior_mean(alpha)
  chex.assert_trees_all_close(t.sum(-1), jnp.ones(50), atol=1e-6)
  assert bool(jnp.all(t > 0))


@pytest.mark.parametrize('gamma', [0.5, 0.9, 0.99])
def test_repeated_update_equals_closed_form(gamma):
  labels = jnp.array([0, 3, 5, 1])
  c, eps, t_max = 4.0, 1e-3, 12
  alpha0 = posterior.init_alpha(labels, K, c, eps)
  ps = _probs(jax.random.PRNGKey(1), (t_max, 4))
  alpha = alpha0
  for s in range(t_max):
    alpha = posterior.update_alpha(alpha, ps[s], gamma)
  closed = gamma ** t_max * alpha0 + sum(gamma ** (t_max - 1 - s) * ps[s] for s in range(t_max))
  chex.assert_trees_all_close(alpha, closed, rtol=1e-5)
  total = gamma ** t_max * (c + (K - 1) * eps) + (1 - gamma ** t_max) / (1 - gamma)
  chex.assert_trees_all_close(alpha.sum(-1), jnp.full(4, total), rtol=1e-5)


@pytest.mark.parametrize('gamma', [0.7, 0.95])
def test_label_weight_is_gamma_to_the_t_with_c_from_gamma(gamma):
  """With c = 1/(1-gamma) (and eps -> 0) the label keeps weight gamma^t, whatever is predicted
  on the other classes."""
  labels = jnp.array([0, 1])
  c = posterior.prior_strength_for(gamma)
  alpha = posterior.init_alpha(labels, K, c, eps=1e-9)
  key = jax.random.PRNGKey(2)
  for t in range(1, 15):
    p = _probs(jax.random.fold_in(key, t), (2,))
    p = p * (1 - jax.nn.one_hot(labels, K))  # no prediction mass on the label itself
    p = p / p.sum(-1, keepdims=True)
    alpha = posterior.update_alpha(alpha, p, gamma)
    label_weight = jnp.take_along_axis(posterior.posterior_mean(alpha), labels[:, None], -1)[:, 0]
    chex.assert_trees_all_close(label_weight, jnp.full(2, gamma ** t), rtol=1e-5)


def test_gamma_for_label_weight_reaches_w_after_num_epochs():
  gamma = posterior.gamma_for_label_weight(0.5, 200)
  assert gamma == pytest.approx(0.99654, abs=1e-5)  # the value docs/method.md quotes
  assert gamma ** 200 == pytest.approx(0.5)
  with pytest.raises(ValueError):
    posterior.prior_strength_for(1.0)


def test_update_at_visit_over_a_shuffled_epoch_equals_the_per_epoch_rule():
  """Rows gathered/scattered batch by batch in a random order (on the 8-device mesh) see the
  targets of the previous epoch and end the epoch at gamma * alpha + p for every sample."""
  mesh = sharding.make_mesh()
  n, batch, gamma = 64, 16, 0.8
  labels = jax.random.randint(jax.random.PRNGKey(3), (n,), 0, K)
  alpha = jax.device_put(posterior.init_alpha(labels, K, 3.0, 1e-2), sharding.rows_sharded(mesh))
  per_epoch = np.asarray(alpha)

  @jax.jit
  def visit(alpha, idx, p):
    rows = sharding.gather_rows(alpha, idx, mesh)
    new = sharding.scatter_rows(alpha, idx, posterior.update_alpha(rows, p, gamma),
                                jnp.ones(idx.shape, bool), mesh)
    return new, posterior.posterior_mean(rows)

  for epoch in range(3):
    p_all = np.asarray(_probs(jax.random.PRNGKey(10 + epoch), (n,)))  # this epoch's predictions
    targets_before = np.asarray(posterior.posterior_mean(per_epoch))
    order = np.random.default_rng(epoch).permutation(n).astype(np.int32)
    for b in range(n // batch):
      idx = order[b * batch:(b + 1) * batch]
      alpha, seen = visit(alpha, jax.device_put(idx, sharding.batch_sharded(mesh)), p_all[idx])
      np.testing.assert_allclose(seen, targets_before[idx], rtol=1e-6)
    per_epoch = gamma * per_epoch + p_all
    np.testing.assert_allclose(np.asarray(alpha), per_epoch, rtol=1e-6)


def test_loss_gradients_are_finite_and_equal_softmax_minus_target():
  labels = jnp.array([0, 1, 2, 3])
  t = posterior.posterior_mean(posterior.init_alpha(labels, K, 1e4, 1e-8))
  logits = jnp.array([[1e4] + [0.0] * (K - 1), [-1e4] * K, [0.0] * K, [50.0, -50.0] + [0.0] * 5])
  grad = jax.grad(lambda z: losses.soft_cross_entropy(z, t).sum())(logits)
  assert bool(jnp.all(jnp.isfinite(grad)))
  chex.assert_trees_all_close(grad, jax.nn.softmax(logits) - t, atol=1e-6)
  # The target is a constant: no gradient flows into alpha.
  g_alpha = jax.grad(lambda a: losses.soft_cross_entropy(logits, posterior.posterior_mean(a)).sum())(
      posterior.init_alpha(labels, K, 2.0, 0.1))
  assert float(jnp.abs(g_alpha).max()) == 0.0


def test_posterior_stats_on_a_hand_case():
  alpha = jnp.array([[8.0, 1.0, 1.0], [1.0, 6.0, 3.0], [2.0, 2.0, 6.0], [9.0, 9.0, 9.0]])
  labels = jnp.array([0, 2, 2, 1])
  valid = jnp.array([True, True, True, False])
  s = posterior.posterior_stats(alpha, labels, valid)
  assert float(s['target_max_prob']) == pytest.approx((0.8 + 0.6 + 0.6) / 3)
  assert float(s['target_label_weight']) == pytest.approx((0.8 + 0.3 + 0.6) / 3)
  assert float(s['target_argmax_changed']) == pytest.approx(1 / 3)
