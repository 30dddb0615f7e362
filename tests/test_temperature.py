"""metrics.fit_temperature: the T that minimises the NLL, checked against the NLL itself."""
import jax.numpy as jnp
import numpy as np
import pytest

from bsd_jax import metrics


def _nll(logits, labels, t):
  """Mean NLL of softmax(logits / t), computed directly (float64)."""
  s = np.asarray(logits, np.float64) / t
  s = s - s.max(axis=1, keepdims=True)
  logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
  return -np.mean(logp[np.arange(len(labels)), labels])


def _overconfident(seed=0, n=4000, k=10, t_true=2.5):
  """Labels drawn from softmax(z / t_true), logits z: the calibrating T is near t_true."""
  rng = np.random.default_rng(seed)
  z = rng.normal(0, 3, (n, k))
  p = np.exp(z / t_true)
  p /= p.sum(axis=1, keepdims=True)
  labels = np.array([rng.choice(k, p=row) for row in p])
  return z, labels


def test_the_fitted_t_minimises_the_nll():
  z, labels = _overconfident()
  t = metrics.fit_temperature(z, labels)
  best = _nll(z, labels, t)
  for factor in (1 - 1e-3, 1 + 1e-3, 0.9, 1.1, 0.5, 2.0):
    assert _nll(z, labels, t * factor) > best
  grid = np.exp(np.linspace(np.log(0.1), np.log(20), 4001))  # a grid 0.13% apart
  t_grid = grid[np.argmin([_nll(z, labels, g) for g in grid])]
  assert t == pytest.approx(t_grid, rel=2e-3)
  # Optimality to 1e-4: the NLL's slope in T is flat there (central difference).
  h = 1e-4 * t
  slope = (_nll(z, labels, t + h) - _nll(z, labels, t - h)) / (2 * h)
  assert abs(slope) * t < 1e-6


def test_recovers_the_temperature_the_labels_were_drawn_with():
  z, labels = _overconfident(t_true=2.5)
  assert metrics.fit_temperature(z, labels) == pytest.approx(2.5, rel=0.1)


def test_scaling_the_logits_scales_t_and_jax_arrays_work():
  z, labels = _overconfident(seed=1)
  t = metrics.fit_temperature(z, labels)
  assert metrics.fit_temperature(3 * z, labels) == pytest.approx(3 * t, rel=1e-6)
  assert metrics.fit_temperature(jnp.asarray(z, jnp.float32), jnp.asarray(labels)) == (
      pytest.approx(t, rel=1e-4))


def test_no_minimiser_is_a_value_error():
  z = np.array([[5.0, 0.0], [0.0, 5.0]])
  with pytest.raises(ValueError, match='separate every sample'):
    metrics.fit_temperature(z, np.array([0, 1]))  # both right: the NLL falls as T -> 0
  with pytest.raises(ValueError, match='no finite T'):
    metrics.fit_temperature(z, np.array([1, 0]))  # both wrong: the NLL falls as T grows
  with pytest.raises(ValueError, match=r'logits \[n, K\] and labels \[n\]'):
    metrics.fit_temperature(np.zeros((3, 4)), np.zeros(2, int))


@pytest.mark.parametrize('t_true, scale', [(2.5, 3.0), (0.4, 1.0)])
def test_agrees_with_a_generic_scalar_minimiser(t_true, scale):
  """Over-confident logits (T > 1 calibrates them) and under-confident ones (T < 1): the T of
  scipy's bounded scalar minimiser on the NLL itself, to a relative 1e-4."""
  from scipy.optimize import minimize_scalar
  rng = np.random.default_rng(7)
  z = rng.normal(0, scale, (3000, 8))
  p = np.exp(z / t_true)
  p /= p.sum(axis=1, keepdims=True)
  labels = np.array([rng.choice(8, p=row) for row in p])
  found = minimize_scalar(lambda log_t: _nll(z, labels, np.exp(log_t)), bounds=(-5, 5),
                          method='bounded', options={'xatol': 1e-9})
  t = metrics.fit_temperature(z, labels)
  assert (t > 1) == (t_true > 1)
  assert t == pytest.approx(np.exp(found.x), rel=1e-4)
