"""orbax round trips of the sharded TrainState, also onto another device count."""
import chex
import jax
import numpy as np
import pytest

from bsd_jax import checkpointing
from tests import helpers


def _abstract(state):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                      state)


def _trained_state(devices, n):
  state, train_step, data, _, batch = helpers.step_setup(devices, n=n)
  state, _ = train_step(state, data, batch)  # non-trivial optimizer state and alpha
  return state


@pytest.fixture(scope='module')
def trained():
  return _trained_state(jax.devices(), helpers.N)


@pytest.mark.parametrize('restore_devices', [8, 4, 1])
def test_save_then_restore_is_identical_on_any_device_count(tmp_path, trained, restore_devices):
  state = trained
  expected = jax.device_get(state)
  ckpt = checkpointing.Checkpointer(str(tmp_path), keep=2)
  ckpt.save(int(state.step), state, {'num_train': helpers.N, 'epoch_sums': None})
  target = _abstract(helpers.step_setup(jax.devices()[:restore_devices])[0])
  restored = ckpt.restore(ckpt.latest_step(), target)
  meta = ckpt.read_meta(ckpt.latest_step())
  ckpt.close()
  assert meta == {'num_train': helpers.N, 'epoch_sums': None}
  chex.assert_trees_all_equal(jax.device_get(restored), expected)
  assert restored.alpha.sharding.mesh.size == restore_devices


def test_table_padding_follows_the_device_count(tmp_path):
  """10 samples: 16 table rows on 8 devices, 12 on 4; the 10 real rows survive the move."""
  state = _trained_state(jax.devices(), 10)
  assert state.alpha.shape[0] == 16
  ckpt = checkpointing.Checkpointer(str(tmp_path), keep=1)
  ckpt.save(1, state, {})
  target = _abstract(helpers.step_setup(jax.devices()[:4], n=10)[0])
  restored = ckpt.restore(1, target)
  ckpt.close()
  assert restored.alpha.shape[0] == 12
  np.testing.assert_array_equal(np.asarray(restored.alpha)[:10], np.asarray(state.alpha)[:10])
  chex.assert_trees_all_equal(jax.device_get(restored.params), jax.device_get(state.params))


def test_keeps_only_the_last_k(tmp_path, trained):
  state = trained
  ckpt = checkpointing.Checkpointer(str(tmp_path), keep=2)
  for s in (1, 2, 3):
    ckpt.save(s, state, {})
  ckpt.close()
  steps = sorted(int(p.name) for p in (tmp_path / 'checkpoints').iterdir() if p.name.isdigit())
  assert steps == [2, 3]
