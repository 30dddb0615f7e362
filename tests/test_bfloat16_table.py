"""config.table_dtype = 'bfloat16': the posterior table is stored in bfloat16 only where bfloat16
can follow its update (posterior.bfloat16_holds), and there it follows float32; elsewhere it is
refused, by the config check (one line naming the key) and by the update functions."""
import jax.numpy as jnp
import numpy as np
import pytest

from bsd_jax import posterior
from bsd_jax.config_check import check_config
from bsd_jax.errors import UserError
from tests import helpers

K, EPS = 10, 1e-3
DEFAULT_GAMMA = 0.5 ** (1 / 200)  # label weight 0.5 after 200 epochs, c = 1/(1 - gamma) ~ 289


def _probs(p_label):
  """One row's prediction: p_label on the label (class 0), the rest on class 1 (a confident
  other class, the entry that grows largest)."""
  p = np.zeros((1, K), np.float32)
  p[0, 0], p[0, 1] = p_label, 1 - p_label
  return jnp.asarray(p)


def test_the_decay_bfloat16_can_follow_is_at_most_0609():
  assert posterior.bfloat16_holds(0.6) and posterior.bfloat16_holds(0.609)
  assert not posterior.bfloat16_holds(0.61) and not posterior.bfloat16_holds(DEFAULT_GAMMA)


def test_bsds_update_functions_refuse_a_bfloat16_table_at_the_default_gamma():
  labels = jnp.array([0])
  alpha = posterior.init_alpha(labels, K, 1 / (1 - DEFAULT_GAMMA), EPS, jnp.bfloat16)
  with pytest.raises(ValueError, match='bfloat16 table cannot follow'):
    posterior.update_alpha(alpha, _probs(0.5), DEFAULT_GAMMA)
  sparse = posterior.sparse.init(labels, K, 3, 1 / (1 - DEFAULT_GAMMA), EPS, jnp.bfloat16)
  with pytest.raises(ValueError, match='bfloat16 table cannot follow'):
    posterior.sparse.update(*sparse, _probs(0.5), DEFAULT_GAMMA)
  # float32 at the same gamma is the normal case
  posterior.update_alpha(alpha.astype(jnp.float32), _probs(0.5), DEFAULT_GAMMA)


@pytest.mark.parametrize('method,keys,refused', [
    ('bsd', {}, True),                                    # gamma 0.5^(1/5) = 0.87 (smoke)
    ('bsd', {'bsd.top_k': 3}, True),
    ('bsd', {'bsd.gamma': 0.6}, False),
    ('temporal_ensembling', {}, False),                   # alpha 0.6
    ('temporal_ensembling', {'temporal_ensembling.alpha': 0.7}, True),
    ('pskd', {}, False),                                  # overwritten each epoch, no decay
])
def test_the_config_check_refuses_bfloat16_where_it_cannot_follow(method, keys, refused):
  config = helpers.load_config('smoke.py')
  config.method, config.table_dtype = method, 'bfloat16'
  for key, value in keys.items():
    section, leaf = key.split('.')
    config[section][leaf] = value
  if not refused:
    check_config(config, num_devices=1)
    return
  with pytest.raises(UserError) as e:
    check_config(config, num_devices=1)
  assert str(e.value).startswith("config.table_dtype = 'bfloat16' cannot hold")
  assert '\n' not in str(e.value)


@pytest.mark.parametrize('p_label', [0.0, 0.5, 1.0])
def test_where_allowed_bfloat16_follows_float32_over_200_updates(p_label):
  gamma = 0.6
  c, labels, probs = 1 / (1 - gamma), jnp.array([0]), _probs(p_label)
  dense32 = posterior.init_alpha(labels, K, c, EPS)
  dense16 = posterior.init_alpha(labels, K, c, EPS, jnp.bfloat16)
  sparse16 = posterior.sparse.init(labels, K, 3, c, EPS, jnp.bfloat16)
  for _ in range(200):
    dense32 = posterior.update_alpha(dense32, probs, gamma)
    dense16 = posterior.update_alpha(dense16, probs, gamma)
    sparse16 = posterior.sparse.update(*sparse16, probs, gamma)
  assert dense16.dtype == jnp.bfloat16 and sparse16[1].dtype == jnp.bfloat16
  weight32 = float(posterior.posterior_mean(dense32)[0, 0])
  total32 = float(dense32.sum())
  assert float(posterior.posterior_mean(dense16)[0, 0]) == pytest.approx(weight32, rel=0.01, abs=1e-6)
  assert float(dense16.astype(jnp.float32).sum()) == pytest.approx(total32, rel=0.01)
  kept_t, other_t = posterior.sparse.target(*sparse16, K)
  weight16 = float(posterior.sparse.weight_on(sparse16[0], kept_t, other_t, labels)[0])
  assert weight16 == pytest.approx(weight32, rel=0.01, abs=1e-6)
  # The sparse row's mass is kept: its total is the float32 one, not just within 1%.
  assert float(posterior.sparse.total(sparse16[1], sparse16[2])[0, 0]) == pytest.approx(total32,
                                                                                    rel=1e-5)
  assert float(sparse16[2][0, 0]) >= 0


def test_a_bfloat16_prior_keeps_its_total_in_the_rest():
  c = 1 / (1 - 0.609)  # 2.5575..., which bfloat16 rounds to 2.5625
  ids, values, rest = posterior.sparse.init(jnp.array([0, 4]), K, 3, c, EPS, jnp.bfloat16)
  assert float(values[0, 0]) != pytest.approx(c, rel=1e-4)  # the rounding this is about
  np.testing.assert_allclose(np.asarray(posterior.sparse.total(values, rest))[:, 0],
                             c + (K - 1) * EPS, rtol=1e-6)
  assert bool(jnp.all(rest >= 0))
