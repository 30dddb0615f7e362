"""FGSM and PGD: they raise the loss, stay inside the eps ball and the pixel range."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bsd_jax import models
from bsd_jax.evaluation import attacks
from tests import helpers


@pytest.fixture(scope='module')
def tiny_cnn():
  """The smoke config's CNN, randomly initialised, on 16x16 RGB images in [0, 1]."""
  config = helpers.load_config('smoke.py')
  model = models.get_model(config, 10)
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 16, 16, 3)), train=False)

  def logits_fn(x):
    return model.apply(variables, (x - 0.5) / 0.25, train=False)

  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.uniform(0, 1, (32, 16, 16, 3)), jnp.float32)
  images = images.at[:4].set(jnp.round(images[:4]))  # pixels at 0 and 1: clipping is exercised
  labels = jnp.asarray(rng.integers(0, 10, 32))
  return jax.jit(logits_fn), images, labels


def test_pgd_loss_is_non_decreasing_over_steps(tiny_cnn):
  logits_fn, images, labels = tiny_cnn
  _, trace = jax.jit(lambda x: attacks.pgd(logits_fn, x, labels, eps=8 / 255,
                                           step_size=0.5 / 255, steps=12))(images)
  trace = np.asarray(trace)
  assert np.all(np.diff(trace) >= -1e-6), trace
  assert trace[-1] > trace[0] + 1e-3


@pytest.mark.parametrize('random_start', [False, True])
def test_pgd_stays_in_eps_ball_and_pixel_range(tiny_cnn, random_start):
  logits_fn, images, labels = tiny_cnn
  eps = 4 / 255
  adv, _ = attacks.pgd(logits_fn, images, labels, eps=eps, step_size=2 / 255, steps=5,
                       rng=jax.random.PRNGKey(1), random_start=random_start)
  adv = np.asarray(adv)
  assert np.max(np.abs(adv - np.asarray(images))) <= eps + 1e-6
  assert adv.min() >= 0.0 and adv.max() <= 1.0
  assert np.any(np.abs(adv - np.asarray(images)) > eps / 2)  # it did move


def test_fgsm_moves_every_free_pixel_by_eps(tiny_cnn):
  logits_fn, images, labels = tiny_cnn
  eps = 2 / 255
  adv = np.asarray(attacks.fgsm(logits_fn, images, labels, eps=eps))
  x = np.asarray(images)
  delta = np.abs(adv - x)
  free = (x >= eps) & (x <= 1 - eps)  # pixels the [0, 1] clip cannot touch
  grads = np.asarray(jax.grad(lambda v: attacks._loss(logits_fn, v, labels))(images))
  moved = free & (grads != 0)
  assert moved.mean() > 0.5
  np.testing.assert_allclose(delta[moved], eps, rtol=1e-5)
  np.testing.assert_allclose(adv[moved], (x + eps * np.sign(grads))[moved], rtol=1e-5)
  assert attacks._loss(logits_fn, adv, labels) > attacks._loss(logits_fn, images, labels)
