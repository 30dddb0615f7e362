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


# rest_spread = 'prediction': the unkept mass spread by the model's prediction for the row.
PRED_UPDATE = jax.jit(posterior.sparse.update, static_argnums=(4, 5, 6))  # profile: any spread


def _pred_update(ids, values, rest, p):
  return PRED_UPDATE(ids, values, rest, p, GAMMA, None, 'prediction')


def _beside_dense(k, updates):
  """After each of `updates` updates with the same predictions: (the sparse row spread by
  prediction, the dense alpha, the predictions)."""
  ids, values, rest = posterior.sparse.init(LABELS, K, k, C, EPS)
  alpha = posterior.init_alpha(LABELS, K, C, EPS)
  for epoch in range(updates):
    p = _probs(epoch)
    ids, values, rest = _pred_update(ids, values, rest, p)
    alpha = DENSE_UPDATE(alpha, p, GAMMA)
    yield (ids, values, rest), alpha, p


def test_prediction_spread_with_every_class_kept_is_the_dense_posterior():
  for (ids, values, rest), alpha, p in _beside_dense(K, 6):
    np.testing.assert_allclose(posterior.sparse.dense(ids, values, rest, K, 'prediction', p),
                               alpha, rtol=1e-6)
    assert float(jnp.max(rest)) == 0.0
  logits = jnp.asarray(np.random.default_rng(9).normal(size=(N, K)), jnp.float32)
  np.testing.assert_allclose(
      posterior.sparse.soft_cross_entropy(logits, ids, values, rest, 1.0, 'prediction'),
      losses.soft_cross_entropy(logits, posterior.posterior_mean(alpha), 1.0), rtol=1e-5)


# A fixed profile for each label, as 'class' reads the rows of its class profiles.
PROFILES = jnp.asarray(np.random.default_rng(7).gamma(0.5, size=(K, K)), jnp.float32)


@pytest.mark.parametrize('spread', ['prediction', 'class'])
@pytest.mark.parametrize('k', [1, 3, 5])
def test_a_profile_spread_conserves_each_rows_mass(k, spread):
  ids, values, rest = posterior.sparse.init(LABELS, K, k, C, EPS)
  s = posterior.sparse.total(values, rest)
  for epoch in range(8):
    p = _probs(epoch)
    profile = p if spread == 'prediction' else PROFILES[LABELS]
    ids, values, rest = PRED_UPDATE(ids, values, rest, p, GAMMA, None, spread, profile)
    s = GAMMA * s + 1.0
    np.testing.assert_allclose(posterior.sparse.total(values, rest), s, rtol=1e-6)
    implied = posterior.sparse.dense(ids, values, rest, K, spread, profile)
    np.testing.assert_allclose(implied.sum(-1, keepdims=True), s, rtol=1e-6)
    assert bool(jnp.all(values > 0)) and bool(jnp.all(rest >= 0))
    assert all(len(set(row)) == k for row in np.asarray(ids).tolist())


def test_prediction_spread_reads_an_unkept_class_as_its_share_of_the_prediction():
  """One row, K = 4, k = 1 (class 0 kept, value 5; rest 3 on classes 1-3), prediction
  p = (0.1, 0.6, 0.2, 0.1): class 1's alpha was 3 x 0.6 / 0.9 = 2, so gamma x 2 + 0.6 = 2.4
  against gamma x 5 + 0.1 = 4.6 for class 0 (gamma 0.9); class 0 stays, and the rest is the
  new total 0.9 x 8 + 1 = 8.2 minus 4.6. With a prediction that makes class 1's alpha the
  larger, class 1 takes the slot."""
  k4 = 4
  ids, values, rest = (jnp.asarray([[0]], jnp.int32), jnp.asarray([[5.0]]),
                       jnp.asarray([[3.0]]))
  p = jnp.asarray([[0.1, 0.6, 0.2, 0.1]])
  new = posterior.sparse.update(ids, values, rest, p, 0.9, spread='prediction')
  assert int(new[0][0, 0]) == 0
  np.testing.assert_allclose(new[1], [[4.6]], rtol=1e-6)
  np.testing.assert_allclose(new[2], [[8.2 - 4.6]], rtol=1e-6)
  # p = (0.01, 0.97, 0.01, 0.01): class 1 held 3 x 0.97 / 0.99, so 0.9 x that + 0.97 = 3.616
  # against 0.9 x 5 + 0.01 = 4.51: class 0 still; with values 3 class 1 wins (3.616 > 2.71).
  p = jnp.asarray([[0.01, 0.97, 0.01, 0.01]])
  new = posterior.sparse.update(ids, jnp.asarray([[3.0]]), rest, p, 0.9, spread='prediction')
  assert int(new[0][0, 0]) == 1
  np.testing.assert_allclose(new[1], [[0.9 * 3.0 * 0.97 / 0.99 + 0.97]], rtol=1e-6)
  # Spread evenly, class 1 held 3 / 3 = 1 and reaches 0.9 + 0.97 = 1.87 < 2.71: class 0 stays.
  uniform = posterior.sparse.update(ids, jnp.asarray([[3.0]]), rest, p, 0.9)
  assert int(uniform[0][0, 0]) == 0
  np.testing.assert_allclose(uniform[1], [[0.9 * 3.0 + 0.01]], rtol=1e-6)
  assert posterior.sparse.dense(*new, k4, 'prediction', p).shape == (1, k4)


def test_prediction_spread_loss_is_the_soft_cross_entropy_against_the_implied_target():
  k = 5
  ids, values, rest = posterior.sparse.init(LABELS, K, k, C, EPS)
  for epoch in range(3):
    ids, values, rest = _pred_update(ids, values, rest, _probs(epoch))
  logits = jnp.asarray(np.random.default_rng(5).normal(0, 3, size=(N, K)), jnp.float32)
  q = jax.nn.softmax(logits)
  implied = posterior.sparse.dense_target(ids, values, rest, K, 'prediction', q)
  for t in (1.0, 2.0):  # the tail is the prediction at temperature 1 whatever T
    np.testing.assert_allclose(
        posterior.sparse.soft_cross_entropy(logits, ids, values, rest, t, 'prediction'),
        losses.soft_cross_entropy(logits, implied, t), rtol=1e-5)
  # The tail follows q: its ratios on two unkept classes are q's.
  unkept = np.asarray(posterior.sparse.unkept(ids, K))
  row = 0
  a, b = np.flatnonzero(unkept[row])[:2]
  assert implied[row, a] / implied[row, b] == pytest.approx(float(q[row, a] / q[row, b]),
                                                            rel=1e-5)
  # No gradient flows through the tail's weights: the gradient is (softmax - target) / T.
  grad = jax.grad(lambda z: jnp.sum(posterior.sparse.soft_cross_entropy(
      z, ids, values, rest, 1.0, 'prediction')))(logits)
  np.testing.assert_allclose(grad, q - implied, atol=1e-6)


def test_prediction_spread_falls_back_to_even_where_the_unkept_prediction_underflows():
  ids = jnp.asarray([[0, 1]], jnp.int32)
  p = jnp.asarray([[0.5, 0.5, 0.0, 0.0]])
  np.testing.assert_array_equal(posterior.sparse.tail_weights(ids, p, 4), [[0, 0, 0.5, 0.5]])


def test_visit_statistics_are_the_dense_statistics_of_the_implied_targets():
  """visit_sums over two batches, then visit_stats, against posterior_stats,
  noisy_label_recovery and the shadow gap computed on the implied dense alpha of all rows."""
  k = 3
  *_, ((ids, values, rest), shadow, p) = _beside_dense(k, 3)
  mask = (jnp.arange(N) < N - 3).astype(jnp.float32)  # the last three rows: padding
  clean = (LABELS + (jnp.arange(N) % 3 == 0)) % K
  halves = [slice(0, N // 2), slice(N // 2, N)]
  parts = [posterior.profiles.visit_sums(ids[h], values[h], rest[h], p[h], LABELS[h], mask[h],
                                       clean[h], shadow[h]) for h in halves]
  sums = {name: (max if name.endswith('_max') else sum)(float(part[name]) for part in parts)
          for name in parts[0]}
  sums['count'] = float(jnp.sum(mask))
  got = posterior.profiles.visit_stats(sums, K)
  implied = posterior.sparse.dense(ids, values, rest, K, 'prediction', p)
  valid = mask > 0
  want = dict(posterior.posterior_stats(implied, LABELS, valid))
  want.update(posterior.noisy_label_recovery(implied, LABELS, clean, valid))
  t, d = np.asarray(posterior.posterior_mean(implied)), np.asarray(posterior.posterior_mean(shadow))
  gap = np.abs(t - d)[np.asarray(valid)]
  want.update(shadow_abs_max=gap.max(), shadow_abs_mean=gap.mean(),
              shadow_tv_mean=0.5 * gap.sum(-1).mean())
  # In the order the table statistics of the uniform spread have in the train record.
  assert list(got) == ['target_argmax_changed', 'target_label_weight', 'target_max_prob',
                       'noisy_target_argmax_clean', 'noisy_target_clean_weight',
                       'shadow_abs_max', 'shadow_abs_mean', 'shadow_tv_mean']
  assert got.keys() == want.keys()
  for key, value in want.items():
    assert got[key] == pytest.approx(float(value), rel=1e-5), key


def test_class_spread_loss_is_the_soft_cross_entropy_against_the_implied_target():
  """The tail follows the label's profile, whatever the logits; k = K is the dense loss."""
  ids, values, rest = _sparse_after(4)
  logits = jnp.asarray(np.random.default_rng(5).normal(0, 3, size=(N, K)), jnp.float32)
  profile = PROFILES[LABELS]
  implied = posterior.sparse.dense_target(ids, values, rest, K, 'class', profile)
  np.testing.assert_allclose(
      posterior.sparse.soft_cross_entropy(logits, ids, values, rest, 1.0, 'class', profile),
      losses.soft_cross_entropy(logits, implied, 1.0), rtol=1e-5)
  unkept = np.asarray(posterior.sparse.unkept(ids, K))
  a, b = np.flatnonzero(unkept[0])[:2]
  assert implied[0, a] / implied[0, b] == pytest.approx(
      float(PROFILES[LABELS[0], a] / PROFILES[LABELS[0], b]), rel=1e-5)
  for (ids, values, rest), alpha, _ in _beside_dense(K, 2):
    pass
  np.testing.assert_allclose(
      posterior.sparse.soft_cross_entropy(logits, ids, values, rest, 1.0, 'class', profile),
      losses.soft_cross_entropy(logits, posterior.posterior_mean(alpha), 1.0), rtol=1e-5)


def test_blend_is_half_the_class_profiles_tail_and_half_the_predictions():
  """On a row's unkept classes the blend is the mean of the two tails' shares (each over its
  own unkept sum), 0 on the kept ones; the loss under it is the soft cross-entropy against the
  implied target."""
  ids, values, rest = _sparse_after(3)
  probs = np.asarray(_probs(7), np.float64)
  profile = np.asarray(PROFILES[LABELS], np.float64)
  got = np.asarray(posterior.sparse.blend(ids, PROFILES[LABELS], _probs(7)))
  unkept = np.asarray(posterior.sparse.unkept(ids, K))
  for i in range(N):
    off = unkept[i]
    want = np.zeros(K)
    want[off] = 0.5 * (profile[i, off] / profile[i, off].sum() + probs[i, off] / probs[i, off].sum())
    np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-7)
  logits = jnp.asarray(np.random.default_rng(8).normal(0, 3, size=(N, K)), jnp.float32)
  implied = posterior.sparse.dense_target(ids, values, rest, K, 'class', got)
  np.testing.assert_allclose(
      posterior.sparse.soft_cross_entropy(logits, ids, values, rest, 1.0, 'class', got),
      losses.soft_cross_entropy(logits, implied, 1.0), rtol=1e-5)


def test_class_profiles_are_the_discounted_sums_of_each_labels_predictions():
  """Two batches in epoch 0, one in epoch 2: row c is (eps + the epoch-0 predictions of label
  c's samples) x gamma^2 + the epoch-2 ones; padding (mask 0) adds nothing."""
  profiles = posterior.profiles.init_profiles(K, EPS)
  batches = [(_probs(0), 0), (_probs(1), 0), (_probs(2), 2)]
  mask = (jnp.arange(N) % 5 != 0).astype(jnp.float32)
  for p, epoch in batches:
    profiles = posterior.profiles.update_profiles(profiles, p, LABELS, mask, epoch, GAMMA)
  onehot = np.eye(K)[np.asarray(LABELS)] * np.asarray(mask)[:, None]
  sums = [onehot.T @ np.asarray(p) for p, _ in batches]
  want = (EPS + sums[0] + sums[1]) * GAMMA ** 2 + sums[2]
  np.testing.assert_allclose(profiles['profile'], want, rtol=1e-5)
  assert int(profiles['epoch']) == 2
