"""SupCon: the loss against hand-derived values and a brute-force loop, the step on 8 devices,
a real run with the projection head, and its config errors."""
import json
import math
import os

import chex
import jax
import numpy as np
import pytest

from bsd_jax import evaluate, losses, train
from bsd_jax.errors import UserError
from tests import helpers


def test_supcon_hand_derived():
  z = np.array([[1.0, 0], [1, 0], [0, 1], [0, 1]], np.float32)
  labels = np.array([0, 0, 1, 1])
  # Anchor 0: similarities 1 (its positive), 0, 0 -> -(1 - log(e + 2)); every anchor alike.
  assert losses.supcon(z, labels, np.ones(4), 1.0, 1.0) == pytest.approx(
      math.log(math.e + 2) - 1, rel=1e-6)
  # Sample 3 is padding: anchor 2 has no positive left (not counted), anchors 0 and 1 see 1, 0.
  assert losses.supcon(z, labels, np.array([1.0, 1, 1, 0]), 1.0, 1.0) == pytest.approx(
      math.log(math.e + 1) - 1, rel=1e-6)
  # T / T_base scales the loss.
  assert losses.supcon(z, labels, np.ones(4), 0.5, 1.0) == pytest.approx(
      0.5 * (math.log(math.e ** 2 + 2) - 2), rel=1e-6)


def test_supcon_equals_a_brute_force_loop():
  rng = np.random.default_rng(0)
  z = rng.normal(size=(12, 5))
  z /= np.linalg.norm(z, axis=1, keepdims=True)
  labels = rng.integers(0, 3, 12)
  mask = (rng.random(12) < 0.8).astype(np.float32)
  t = 0.2
  per_anchor = []
  for i in range(12):
    if not mask[i]:
      continue
    others = [a for a in range(12) if a != i and mask[a]]
    pos = [p for p in others if labels[p] == labels[i]]
    if not pos:
      continue
    denom = sum(math.exp(z[i] @ z[a] / t) for a in others)
    per_anchor.append(-np.mean([math.log(math.exp(z[i] @ z[p] / t) / denom) for p in pos]))
  assert losses.supcon(z.astype(np.float32), labels, mask, t, 0.07) == pytest.approx(
      t / 0.07 * np.mean(per_anchor), rel=1e-4)


# target_argmax changes only which samples pair up; its run is slow-marked to keep CI short.
@pytest.mark.parametrize('positives', [pytest.param('labels', marks=pytest.mark.slow),
                                       pytest.param('target_argmax', marks=pytest.mark.slow)])
def test_supcon_step_on_8_devices_equals_1_device(positives):
  supcon = {'weight': 0.5, 'positives': positives, 'head_width': 8}
  outs = []
  for devices in (jax.devices()[:1], jax.devices()):
    state, train_step, data, _, batch = helpers.step_setup(devices, supcon=supcon)
    for _ in range(2):
      state, sums = train_step(state, data, batch)
    outs.append(jax.device_get((state, sums)))
  chex.assert_trees_all_close(outs[0], outs[1], rtol=2e-5, atol=2e-6)
  assert set(outs[0][0].params) == {'base', 'head_hidden', 'head_out'}
  # The loss includes weight x SupCon (> 0): doubling the weight raises the first step's loss.
  first = []
  for weight in (0.5, 1.0):
    state, train_step, data, _, batch = helpers.step_setup(
        jax.devices()[:1], supcon=dict(supcon, weight=weight))
    first.append(float(train_step(state, data, batch)[1]['loss_sum']))
  assert first[1] > first[0] + 1e-3


@pytest.mark.slow  # 14 s; the loss against a brute-force loop and the config checks run by default
def test_bsd_with_supcon_trains_and_evaluates(tmp_path):
  config = helpers.load_config('smoke.py')
  config.data.augment = True
  config.supcon.weight = 0.5
  workdir = str(tmp_path / 'run')
  result = train.train_and_evaluate(config, workdir)
  assert result['accuracy'] > 0.15  # chance is 0.1 (sd 0.013 on 512): the classifier learns
  state, _ = helpers.read_checkpoint_state(workdir)
  assert state['params']['head_out']['kernel'].shape[-1] == 128
  record = evaluate.evaluate(workdir)  # the evaluate command sees logits only
  assert record['metrics']['accuracy'] == pytest.approx(result['accuracy'], abs=1e-6)
  with open(os.path.join(workdir, 'config.json')) as f:
    assert json.load(f)['supcon']['weight'] == 0.5


@pytest.mark.parametrize('changes, match', [
    ({'supcon.weight': -1.0}, r'config\.supcon\.weight must be >= 0'),
    ({'supcon.weight': 0.5, 'supcon.positives': 'knn'}, r'config\.supcon\.positives must be'),
    ({'supcon.weight': 0.5, 'supcon.positives': 'target_argmax', 'method': 'ce'},
     r"'target_argmax' needs config\.method = 'bsd'"),
    ({'supcon.weight': 0.5, 'data.augment': False}, r'config\.supcon needs config\.data\.augment'),
    ({'supcon.weight': 0.5, 'method': 'dlb'}, r"cannot be combined with config\.method = 'dlb'"),
])
def test_supcon_config_errors(tmp_path, changes, match):
  config = helpers.load_config('smoke.py')
  config.data.augment = True
  for key, value in changes.items():
    node, _, leaf = key.rpartition('.')
    (config[node] if node else config)[leaf] = value
  with pytest.raises(UserError, match=match):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()
