"""Learning-rate schedules: warm-up, cosine to zero, multi-step decays at epoch milestones."""
import pytest

from bsd_jax import optim
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


def test_multistep_decays_at_epoch_milestones():
  config = _config(lr_schedule='multistep', lr_milestones=(5, 8), lr_decay_factor=0.1)
  schedule = optim.learning_rate_schedule(config, steps_per_epoch=10)
  assert [float(schedule(s)) for s in (0, 49, 50, 79, 80, 99)] == pytest.approx(
      [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_multistep_after_warmup_keeps_global_milestones():
  config = _config(lr_schedule='multistep', lr_milestones=(5,), warmup_epochs=2.0)
  schedule = optim.learning_rate_schedule(config, steps_per_epoch=10)
  assert [float(schedule(s)) for s in (10, 20, 49, 50)] == pytest.approx([0.05, 0.1, 0.1, 0.01])
