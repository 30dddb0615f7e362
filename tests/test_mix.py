"""CutMix and Mixup (bsd_jax/data/mix.py) and their place in the train step."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bsd_jax import data, experiment, methods, posterior, sharding
from bsd_jax import step as step_lib
from bsd_jax.data import mix
from bsd_jax.errors import UserError
from bsd_jax.config_check import check_config
from tests import helpers

X = jnp.asarray(np.random.default_rng(0).normal(size=(6, 8, 8, 3)), jnp.float32)
PERM = jnp.asarray([3, 0, 5, 1, 2, 4])
MIX_BATCH = jax.jit(mix.mix_batch, static_argnums=2)  # one compiled program per MixConfig


def test_lambda_one_is_no_mixing():
  np.testing.assert_array_equal(mix.mixup(X, PERM, 1.0), X)
  images, lam = mix.cutmix(X, PERM, mix.cutmix_box(jax.random.PRNGKey(0), 8, 8, 1.0))
  np.testing.assert_array_equal(images, X)
  assert float(lam) == 1.0
  off = mix.MixConfig(cutmix_alpha=1.0, mixup_alpha=1.0, prob=0.0)
  images, _, lam = MIX_BATCH(jax.random.PRNGKey(1), X, off)
  np.testing.assert_array_equal(images, X)
  assert float(lam) == 1.0


@pytest.mark.parametrize('seed', range(5))
def test_cutmix_lambda_is_the_fraction_of_each_image_left(seed):
  key = jax.random.PRNGKey(seed)
  images, perm, lam = MIX_BATCH(key, X, mix.MixConfig(cutmix_alpha=1.0))
  own = np.mean(np.all(np.asarray(images) == np.asarray(X), axis=-1), axis=(1, 2))
  other = np.mean(np.all(np.asarray(images) == np.asarray(X)[np.asarray(perm)], axis=-1),
                  axis=(1, 2))
  moved = np.asarray(perm) != np.arange(6)  # a sample mixed with itself stays whole
  np.testing.assert_allclose(own[moved], float(lam), atol=1e-6)  # the same box in each image
  np.testing.assert_allclose((own + other)[moved], 1.0, atol=1e-6)
  assert sorted(np.asarray(perm).tolist()) == list(range(6))


def test_mixup_images_and_lambda():
  images, perm, lam = MIX_BATCH(jax.random.PRNGKey(3), X, mix.MixConfig(mixup_alpha=0.4))
  assert 0 < float(lam) < 1
  np.testing.assert_allclose(images, float(lam) * X + (1 - float(lam)) * X[perm], rtol=1e-5,
                             atol=1e-6)


def test_both_on_switch_between_cutmix_and_mixup():
  config = mix.MixConfig(cutmix_alpha=1.0, mixup_alpha=1.0, switch_prob=0.5)
  kinds = set()
  for seed in range(20):
    images, perm, lam = MIX_BATCH(jax.random.PRNGKey(seed), X, config)
    x, mixed = np.asarray(X), np.asarray(images)
    kinds.add('cutmix' if np.any(np.all(mixed == x, axis=-1)) else 'mixup')
  assert kinds == {'cutmix', 'mixup'}


def _inputs(method_name, k=5, **bsd):
  config = helpers.load_config('smoke.py')
  config.method = method_name
  for key, value in bsd.items():
    config.bsd[key] = value
  method = methods.get_method(config)
  rng = np.random.default_rng(4)
  labels = jnp.asarray(rng.integers(0, k, 6))
  rows = method.init_table(labels, k)
  if method_name == 'bsd':  # a posterior that has moved away from the prior
    rows = rows + jnp.asarray(rng.dirichlet(np.ones(k), 6), rows.dtype) * 3
  return method, methods.StepInputs(
      logits=jnp.asarray(rng.normal(size=(6, k)), jnp.float32), labels=labels, mask=jnp.ones(6),
      rows=rows, epoch=jnp.asarray(3, jnp.int32))


def test_bsd_mixed_loss_is_the_loss_against_the_mixed_posterior_mean():
  from bsd_jax import losses
  method, inputs = _inputs('bsd')
  lam = 0.3
  targets = (lam * posterior.posterior_mean(inputs.rows)
             + (1 - lam) * posterior.posterior_mean(inputs.rows)[PERM])
  np.testing.assert_allclose(jnp.sum(targets, -1), 1.0, rtol=1e-6)
  expected = jnp.mean(losses.soft_cross_entropy(inputs.logits, targets, 1.0))
  got = mix.mixed_loss(method.loss, inputs, PERM, lam)
  assert float(got) == pytest.approx(float(expected), rel=1e-5)
  assert float(mix.mixed_loss(method.loss, inputs, PERM, 1.0)) == float(method.loss(inputs))


def test_ce_and_label_smoothing_mixed_losses_mix_the_one_hot_targets():
  for name in ('ce', 'label_smoothing'):
    method, inputs = _inputs(name)
    lam = 0.7
    log_p = jax.nn.log_softmax(inputs.logits)
    onehot = jax.nn.one_hot(inputs.labels, 5)
    eps = 0.1 if name == 'label_smoothing' else 0.0
    smooth = (1 - eps) * onehot + eps / 5
    target = lam * smooth + (1 - lam) * smooth[PERM]
    expected = -jnp.mean(jnp.sum(target * log_p, -1))
    got = mix.mixed_loss(method.loss, inputs, PERM, lam)
    assert float(got) == pytest.approx(float(expected), rel=1e-5), name


def _step_setup(**data_keys):
  """One BSD train step on 2 devices (the batch split, the permutation across them), no crop
  and flip (the mixed images can be rebuilt)."""
  config = helpers.load_config('smoke.py')
  config.method, config.batch_size, config.data.augment = 'bsd', 16, False
  for key, value in data_keys.items():
    config.data[key] = value
  rng = np.random.default_rng(1)
  labels = rng.integers(0, 10, 64).astype(np.int32)
  images = rng.integers(0, 256, (64, 16, 16, 3)).astype(np.uint8)
  ds = data.Dataset('mix', images, labels, images[:16], labels[:16], 10)
  mesh = sharding.make_mesh(jax.devices()[:2])
  exp = experiment.build(config, ds, mesh)
  state = jax.jit(exp.init_state, out_shardings=exp.state_shardings)(jax.random.PRNGKey(0),
                                                                      exp.padded_labels)
  data_dev = {'labels': jax.device_put(labels, sharding.replicated(mesh)),
              'images': sharding.put_rows(images, None, 64, mesh)}
  batch = {'index': np.arange(16, dtype=np.int32) * 3, 'mask': np.ones(16, np.float32)}
  return config, exp, state, data_dev, batch, images


def _one_step(config, exp, state, data_dev, batch):
  step = step_lib.jit_train_step(config, exp)
  new, _ = step(jax.tree.map(jnp.copy, state), data_dev,
                jax.device_put(batch, sharding.batch_sharded(exp.mesh)))
  return jax.device_get(new)


@pytest.mark.slow  # test_lambda_one_is_no_mixing checks the images by default
def test_a_step_that_mixes_nothing_is_the_plain_step():
  plain = _one_step(*_step_setup()[:5])
  never = _one_step(*_step_setup(cutmix_alpha=1.0, mix_prob=0.0)[:5])
  for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(never)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_mixed_sample_updates_its_row_from_the_prediction_on_its_mixed_image():
  config, exp, state, data_dev, batch, images = _step_setup(cutmix_alpha=1.0)
  before = jax.device_get(state)
  after = _one_step(config, exp, state, data_dev, batch)
  gamma = methods.bsd.hparams(config)['gamma']
  index = batch['index']
  update = after.table[index] - gamma * before.table[index]
  # The prediction on the mixed batch, rebuilt: the step's key, its mix draw, a train-mode pass.
  key = jax.random.fold_in(jax.random.fold_in(before.rng, before.step), 2)
  from bsd_jax.data import augment
  x = augment.normalize(jnp.asarray(images[index]), exp.mean, exp.std)
  mixed, _, lam = mix.mix_batch(key, x, mix.MixConfig.from_config(config.data))
  assert float(lam) < 1
  train_probs = jax.jit(lambda x: jax.nn.softmax(exp.model.apply(
      {'params': before.params, 'batch_stats': before.batch_stats}, x, train=True,
      mutable=['batch_stats'])[0]))
  np.testing.assert_allclose(update, train_probs(mixed), rtol=2e-3, atol=2e-4)
  assert not np.allclose(update, train_probs(x), atol=1e-3)


@pytest.mark.parametrize('overrides, message', [
    ({'method': 'cskd', 'data.cutmix_alpha': 1.0}, "cannot be combined with config.method = 'cskd'"),
    ({'supcon.weight': 0.1, 'data.mixup_alpha': 0.2}, 'cannot be combined with config.supcon'),
    ({'data.mixup_alpha': -1.0}, 'config.data.mixup_alpha must be >= 0'),
    ({'data.mix_prob': 1.5}, r'config.data.mix_prob must be in \[0, 1\]'),
])
def test_bad_mixing_settings_are_one_line_errors(overrides, message):
  config = helpers.load_config('smoke.py')
  helpers.override(config, overrides)
  with pytest.raises(UserError, match=message):
    check_config(config, num_devices=1)
