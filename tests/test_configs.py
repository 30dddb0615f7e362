"""Every shipped config loads and passes the config checks (a bad combination fails here)."""
import os
import re

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


PAPER = sorted(n for n in os.listdir(os.path.join(helpers.REPO, 'configs', 'paper'))
               if n.endswith('.py') and not n.startswith('_'))


def _sweep_args(doc):
  """--methods, --seeds and --grid values of the sweep command in a config's docstring."""
  command = doc.split('python -m bsd_jax.sweep', 1)[1].split('\n\n', 1)[0].replace('\\\n', ' ')
  words = command.split()
  value = lambda flag: [words[i + 1] for i, w in enumerate(words) if w == flag]
  return value('--methods')[0].split(','), value('--seeds')[0].split(','), value('--grid')


@pytest.mark.parametrize('name', PAPER)
def test_paper_config_is_valid_and_its_sweep_command_plans(name):
  import runpy
  from bsd_jax.studies import sweep_grid
  config = helpers.load_config(f'paper/{name}')
  check_config(config, num_devices=8)
  assert config.is_locked
  doc = runpy.run_path(os.path.join(helpers.REPO, 'configs', 'paper', name))['__doc__']
  stem = name[:-3]
  # The first line names this experiment, the model the config builds and its data.
  dataset = {'tiny_imagenet': 'Tiny ImageNet'}.get(config.data.source, config.data.name)
  dataset = 'ImageNet' if dataset.startswith('imagenet') else dataset
  noise = ' with noisy labels' if config.label_noise.kind != 'none' else ''
  assert doc.split('\n', 1)[0] == (f'Paper experiment {stem}: {config.model.name} on '
                                   f'{dataset}{noise}.')
  assert f'--config configs/paper/{name}' in doc and f'--workdir runs/paper/{stem} ' in doc
  assert 'Checks:' in doc
  flat = ' '.join(doc.split())
  assert re.search(r'about [\d.]+ (minutes|hours) a run.{0,40}?, [\d.]+ (minutes|hours) for the sweep',
                   flat)
  assert 'ESTIMATED from FLOPs, not measured' in flat or 'measured on' in flat
  methods, seeds, grid = _sweep_args(doc)
  runs = sweep_grid.plan(config, methods, seeds, (), grid)
  assert len(runs) >= len(methods) * len(seeds)


def test_there_is_a_paper_config_for_every_dataset_and_the_label_noise():
  assert len(PAPER) >= 8
  for prefix in ('cifar10_', 'cifar100_', 'tinyimagenet_', 'imagenet_'):
    assert any(n.startswith(prefix) for n in PAPER), prefix
  assert any('noise' in n for n in PAPER)


def test_the_cutmix_paper_config_updates_bsd_from_a_clean_pass():
  # The train-pass update over-softens BSD + CutMix (RESULTS.md, CutMix): the paper config
  # takes the variant the study recommends.
  config = helpers.load_config('paper/cifar100_resnet18_cutmix.py')
  assert config.data.cutmix_alpha > 0 and config.bsd.prediction_source == 'eval_pass'
