"""The sparse top-k posterior's math (bsd_jax/methods/posterior.sparse.py) against the dense one."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bsd_jax import losses, posterior

K, N, GAMMA, C, EPS = 12, 16, 0.9, 10.0, 1e-3
UPDATE = jax.jit(posterior.sparse.update, static_argnums=4)  # compiled once per shape
DENSE_UPDATE = jax.jit(posterior.update_alpha, static_argnums=2)


def _probs(seed, sharp=3.0):
  rng = np.random.default_rng(seed)
  return jax.nn.softmax(jnp.asarray(rng.normal(0, sharp, (N, K)), jnp.float32))


LABELS = jnp.asarray(np.random.default_rng(0).integers(0, K, N))


def test_with_every_class_kept_it_is_the_dense_posterior_over_several_updates():
  ids, values, rest = posterior.sparse.init(LABELS, K, K, C, EPS)
  alpha = posterior.init_alpha(LABELS, K, C, EPS)
  np.testing.assert_array_equal(posterior.sparse.dense(ids, values, rest, K), alpha)
  for epoch in range(6):
    p = _probs(epoch)
    ids, values, rest = UPDATE(ids, values, rest, p, GAMMA)
    alpha = DENSE_UPDATE(alpha, p, GAMMA)
    np.testing.assert_allclose(posterior.sparse.dense(ids, values, rest, K), alpha, rtol=1e-6)
    assert float(jnp.max(rest)) == 0.0
  logits = jnp.asarray(np.random.default_rng(9).normal(size=(N, K)), jnp.float32)
  np.testing.assert_allclose(posterior.sparse.soft_cross_entropy(logits, ids, values, rest),
                             losses.soft_cross_entropy(logits, posterior.posterior_mean(alpha), 1.0),
                             rtol=1e-5)
  valid = jnp.ones(N, bool)
  sparse_stats = posterior.sparse.posterior_stats(ids, values, rest, LABELS, valid, K)
  dense_stats = posterior.posterior_stats(alpha, LABELS, valid)
  for key, value in dense_stats.items():
    assert float(sparse_stats[key]) == pytest.approx(float(value), rel=1e-5), key


@pytest.mark.parametrize('k', [1, 3, 5])
def test_fewer_kept_classes_conserve_each_rows_mass_and_targets_sum_to_one(k):
  ids, values, rest = posterior.sparse.init(LABELS, K, k, C, EPS)
  s = posterior.sparse.total(values, rest)
  np.testing.assert_allclose(s, C + EPS * (K - 1), rtol=1e-6)
  for epoch in range(8):
    ids, values, rest = UPDATE(ids, values, rest, _probs(epoch), GAMMA)
    s = GAMMA * s + 1.0
    np.testing.assert_allclose(posterior.sparse.total(values, rest), s, rtol=1e-6)
    kept, other = posterior.sparse.target(ids, values, rest, K)
    np.testing.assert_allclose(jnp.sum(kept, -1) + (K - k) * other[:, 0], 1.0, rtol=1e-6)
    assert bool(jnp.all(values > 0)) and bool(jnp.all(rest >= 0))
    assert all(len(set(row)) == k for row in np.asarray(ids).tolist())  # distinct ids


def test_one_update_from_the_prior_keeps_the_dense_rows_k_largest_exactly():
  k = 4
  ids, values, rest = posterior.sparse.init(LABELS, K, k, C, EPS)
  p = _probs(3)
  ids, values, rest = UPDATE(ids, values, rest, p, GAMMA)
  alpha = np.asarray(posterior.update_alpha(posterior.init_alpha(LABELS, K, C, EPS), p, GAMMA))
  for row in range(N):
    assert set(np.asarray(ids[row]).tolist()) == set(np.argsort(-alpha[row])[:k].tolist())
    np.testing.assert_allclose(values[row], alpha[row][np.asarray(ids[row])], rtol=1e-6)


def test_the_sparse_loss_is_the_soft_cross_entropy_against_the_implied_dense_target():
  k = 5
  ids, values, rest = posterior.sparse.init(LABELS, K, k, C, EPS)
  for epoch in range(3):
    ids, values, rest = UPDATE(ids, values, rest, _probs(epoch), GAMMA)
  implied = posterior.sparse.dense(ids, values, rest, K)
  np.testing.assert_allclose(implied.sum(-1, keepdims=True), posterior.sparse.total(values, rest),
                             rtol=1e-6)
  logits = jnp.asarray(np.random.default_rng(5).normal(size=(N, K)), jnp.float32)
  for t in (1.0, 2.0):
    np.testing.assert_allclose(
        posterior.sparse.soft_cross_entropy(logits, ids, values, rest, t),
        losses.soft_cross_entropy(logits, posterior.posterior_mean(implied), t), rtol=1e-5)


def _sparse_after(k, updates=3):
  ids, values, rest = posterior.sparse.init(LABELS, K, k, C, EPS)
  for epoch in range(updates):
    ids, values, rest = UPDATE(ids, values, rest, _probs(epoch), GAMMA)
  return ids, values, rest


@pytest.mark.parametrize('k', [2, K])
def test_table_statistics_are_those_of_the_implied_dense_posterior(k):
  """Class-mean targets, posterior statistics and noisy-label recovery computed on the sparse
  rows equal the dense functions on the dense alpha the rows stand for."""
  from bsd_jax import methods
  ids, values, rest = _sparse_after(k)
  implied = posterior.sparse.dense(ids, values, rest, K)
  valid = jnp.arange(N) < N - 3  # padding rows left out
  got = posterior.sparse.class_mean_targets(ids, values, rest, LABELS, valid, K)
  want = methods.class_mean_targets(posterior.posterior_mean(implied), LABELS, valid, K)
  np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-7)
  np.testing.assert_array_equal(got[1], want[1])
  clean = (LABELS + (jnp.arange(N) % 3 == 0)) % K  # a third of the labels made wrong
  pairs = [(posterior.sparse.posterior_stats(ids, values, rest, LABELS, valid, K),
            posterior.posterior_stats(implied, LABELS, valid)),
           (posterior.sparse.noisy_label_recovery(ids, values, rest, LABELS, clean, valid, K),
            posterior.noisy_label_recovery(implied, LABELS, clean, valid))]
  for sparse_stats, dense_stats in pairs:
    for key, value in dense_stats.items():
      assert float(sparse_stats[key]) == pytest.approx(float(value), rel=1e-5), key


def test_a_row_whose_unkept_classes_outweigh_the_kept_has_no_kept_argmax():
  """k = 1 with a label weight below the share of each other class: the argmax is not the
  label (-1: one of the unkept classes), the statistics count the row as changed."""
  ids = jnp.asarray([[0]], jnp.int32)
  values, rest = jnp.asarray([[1.0]]), jnp.asarray([[2.0 * (K - 1)]])  # 2 on each other class
  kept_t, other_t = posterior.sparse.target(ids, values, rest, K)
  assert int(posterior.sparse.argmax_class(ids, kept_t, other_t)[0]) == -1
  stats = posterior.sparse.posterior_stats(ids, values, rest, jnp.asarray([0]), jnp.asarray([True]), K)
  assert float(stats['target_argmax_changed']) == 1.0
  assert float(stats['target_max_prob']) == pytest.approx(2.0 / (1.0 + 2.0 * (K - 1)))
