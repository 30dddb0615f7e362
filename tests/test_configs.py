"""Every shipped config loads and passes the config checks (a bad combination fails here)."""
import os

import pytest

from bsd_jax.config_check import check_config
from tests import helpers

CONFIGS = sorted(n for n in os.listdir(os.path.join(helpers.REPO, 'configs')) if n.endswith('.py'))


@pytest.mark.parametrize('name', CONFIGS)
def test_config_is_valid(name):
  config = helpers.load_config(name)
  check_config(config, num_devices=8)
  assert config.is_locked  # a typo in an override is an error, not a new key


def test_noise_configs_turn_on_noise_and_supcon():
  for name in ('cifar10_noise.py', 'cifar100_noise.py'):
    config = helpers.load_config(name)
    assert config.label_noise.kind != 'none' and config.supcon.weight > 0
  assert helpers.load_config('default.py').supcon.weight == 0  # off by default
