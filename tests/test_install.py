"""The declared version floors (setup.cfg) are the versions .ci/floor installs and tests
(constraints/floor.txt)."""
import configparser
import os
import re

from tests import helpers


def _floors_in_setup_cfg():
  cfg = configparser.ConfigParser()
  cfg.read(os.path.join(helpers.REPO, 'setup.cfg'))
  floors = {}
  for line in cfg['options']['install_requires'].splitlines():
    match = re.fullmatch(r'\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)\s*', line.split('#')[0])
    if match:
      floors[match.group(1).lower().replace('_', '-')] = match.group(2)
  return floors


def _pins_in_floor_txt():
  pins = {}
  with open(os.path.join(helpers.REPO, 'constraints', 'floor.txt')) as f:
    for line in f:
      line = line.split('#')[0].strip()
      if line:
        name, version = line.split('==')
        pins[name.lower().replace('_', '-')] = version
  return pins


def _same(a, b):
  """Versions equal up to trailing zeros (1.0 and 1.0.0)."""
  def key(v):
    parts = [int(p) for p in v.split('.')]
    while parts and parts[-1] == 0:
      parts.pop()
    return parts
  return key(a) == key(b)


def test_every_floor_is_pinned_to_itself_in_the_constraints():
  floors, pins = _floors_in_setup_cfg(), _pins_in_floor_txt()
  assert {'jax', 'flax', 'optax', 'orbax-checkpoint', 'chex', 'ml-collections', 'grain',
          'tensorflow-datasets'} <= set(floors)
  for name, floor in floors.items():
    assert name in pins and _same(pins[name], floor), (name, floor, pins.get(name))
  assert pins['jaxlib'] == pins['jax']
  assert set(pins) == set(floors) | {'jaxlib'}
