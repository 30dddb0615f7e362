"""Learning-rate schedules: warm-up, cosine to zero, multi-step decays at epoch milestones; the
backbone learning-rate multiplier of fine-tuning."""
import jax
import jax.numpy as jnp
import pytest

from bsd_jax import models, optim
from tests import helpers


def _config(**kw):
  config = helpers.load_config('smoke.py')
  config.num_epochs, config.learning_rate = 10, 0.1
  for k, v in kw.items():
    config[k] = v
  return config


def test_cosine_with_warmup():
  schedule = optim.learning_rate_schedule(_config(warmup_epochs=1.0), steps_per_epoch=10)
  assert float(schedule(0)) == 0.0
  assert float(schedule(5)) == pytest.approx(0.05)
  assert float(schedule(10)) == pytest.approx(0.1)
  assert float(schedule(55)) == pytest.approx(0.05, abs=1e-6)  # half-way through the cosine
  assert float(schedule(100)) == pytest.approx(0.0, abs=1e-7)


def test_a_warmup_as_long_as_the_run_is_the_whole_schedule():
  schedule = optim.learning_rate_schedule(_config(num_epochs=1, warmup_epochs=1.0),
                                          steps_per_epoch=10)
  assert [float(schedule(s)) for s in (0, 5, 9)] == pytest.approx([0.0, 0.05, 0.09])


def test_multistep_decays_at_epoch_milestones():
  config = _config(lr_schedule='multistep', lr_milestones=(5, 8), lr_decay_factor=0.1)
  schedule = optim.learning_rate_schedule(config, steps_per_epoch=10)
  assert [float(schedule(s)) for s in (0, 49, 50, 79, 80, 99)] == pytest.approx(
      [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_multistep_after_warmup_keeps_global_milestones():
  config = _config(lr_schedule='multistep', lr_milestones=(5,), warmup_epochs=2.0)
  schedule = optim.learning_rate_schedule(config, steps_per_epoch=10)
  assert [float(schedule(s)) for s in (10, 20, 49, 50)] == pytest.approx([0.05, 0.1, 0.1, 0.01])


def _params(config, shape=(1, 32, 32, 3)):
  model = models.get_model(config, 10)
  return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(shape)))['params']


@pytest.mark.parametrize('name, supcon, heads', [
    ('cnn', 0.0, {'Dense_0'}),
    ('cnn', 0.5, {'base/Dense_0', 'head_hidden', 'head_out'}),
    ('resnet18_imagenet', 0.0, {'Dense_0'}),
    ('vit_s16', 0.0, {'head'})])
def test_the_backbone_is_all_but_the_top_level_dense_layers(name, supcon, heads):
  config = _config()
  config.model.name, config.supcon.weight = name, supcon
  shape = (1, 224, 224, 3) if name.endswith(('16', 'imagenet')) else (1, 32, 32, 3)
  mask = optim.backbone_mask(_params(config, shape))
  head = {'/'.join(k.key for k in path[:-1])
          for path, backbone in jax.tree_util.tree_leaves_with_path(mask) if not backbone}
  assert head == heads
  assert sum(jax.tree.leaves(mask)) > 2  # the rest is backbone


def test_a_backbone_multiplier_scales_the_backbone_steps_only():
  config = _config(backbone_lr_multiplier=0.1, weight_decay=5e-4)
  config.model.name = 'cnn'
  model = models.get_model(config, 10)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))['params']
  grads = jax.tree.map(jnp.ones_like, params)

  def two_steps(cfg):
    tx, _ = optim.make_optimizer(cfg, steps_per_epoch=10)
    state, out = tx.init(params), []
    for _ in range(2):
      updates, state = tx.update(grads, state, params)
      out.append(updates)
    return out

  scaled, plain = two_steps(config), two_steps(_config(weight_decay=5e-4))
  for s, p in zip(scaled, plain):
    ratio = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - 0.1 * b))), s, p)
    same = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), s, p)
    assert max(jax.tree.leaves(ratio['Conv_0'])) < 1e-9
    assert max(jax.tree.leaves(same['Dense_0'])) == 0.0
    assert float(jnp.abs(p['Dense_0']['kernel']).max()) > 0
