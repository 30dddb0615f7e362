"""orbax round trips of the sharded TrainState, also onto another device count."""
import chex
import jax
import numpy as np
import pytest

from bsd_jax import methods
from bsd_jax.rundir import checkpoints
from bsd_jax.errors import UserError
from tests import helpers


def _abstract(state):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                      state)


def _trained_state(devices, n, top_k=0):
  state, train_step, data, _, batch = helpers.step_setup(devices, n=n, top_k=top_k)
  state, _ = train_step(state, data, batch)  # non-trivial optimizer state and alpha
  return state


TOP_K = 3  # the sparse table: class ids, values and rest, each split by rows


@pytest.fixture(scope='module', params=[0, TOP_K], ids=['dense', 'sparse'])
def trained(request):
  return _trained_state(jax.devices(), helpers.N, request.param), request.param


@pytest.mark.parametrize('restore_devices', [8, 4, 1])
def test_save_then_restore_is_identical_on_any_device_count(tmp_path, trained, restore_devices):
  state, top_k = trained
  expected = jax.device_get(state)
  ckpt = checkpoints.Checkpointer(str(tmp_path), keep=2)
  ckpt.save(int(state.step), state, {'num_train': helpers.N, 'epoch_sums': None})
  target = _abstract(helpers.step_setup(jax.devices()[:restore_devices], top_k=top_k)[0])
  restored = ckpt.restore(ckpt.latest_step(), target)
  meta = ckpt.read_meta(ckpt.latest_step())
  ckpt.close()
  assert meta == {'num_train': helpers.N, 'epoch_sums': None}
  chex.assert_trees_all_equal(jax.device_get(restored), expected)
  for table in jax.tree.leaves(restored.table):
    assert table.sharding.mesh.size == restore_devices
    assert table.sharding.spec[0] == 'data'  # split by rows


def test_the_class_profiles_of_rest_spread_class_are_saved_and_restored(tmp_path):
  """The carry of bsd.rest_spread = 'class' (a [K, K] profile and its epoch) round-trips (onto
  other device counts as every replicated array does: the tests above)."""
  state, train_step, data, _, batch = helpers.step_setup(jax.devices(), top_k=TOP_K,
                                                          rest_spread='class')
  state, _ = train_step(state, data, batch)
  expected = jax.device_get(state)
  assert float(np.max(expected.carry['profile'])) > 0.01  # predictions added (eps 1e-3)
  ckpt = checkpoints.Checkpointer(str(tmp_path), keep=2)
  ckpt.save(int(state.step), state, {'num_train': helpers.N, 'epoch_sums': None})
  restored = ckpt.restore(ckpt.latest_step(), _abstract(state))
  ckpt.close()
  chex.assert_trees_all_equal(jax.device_get(restored), expected)


@pytest.mark.parametrize('top_k', [0, pytest.param(TOP_K, marks=pytest.mark.slow)],
                         ids=['dense', 'sparse'])
def test_table_padding_follows_the_device_count_both_ways(tmp_path, top_k):
  """10 samples: 12 table rows on 4 devices, 16 on 8, 12 again on 4; the 10 real rows survive
  each move. The padding rows a restore onto more devices adds are zeros: the epoch statistics
  and class targets of the table stay those of its 10 rows (not NaN)."""
  state = _trained_state(jax.devices()[:4], 10, top_k)
  assert {a.shape[0] for a in jax.tree.leaves(state.table)} == {12}
  ckpt = checkpoints.Checkpointer(str(tmp_path), keep=2)
  ckpt.save(1, state, {})
  on_8 = ckpt.restore(1, _abstract(helpers.step_setup(jax.devices(), n=10, top_k=top_k)[0]))
  ckpt.save(2, on_8, {})
  on_4 = ckpt.restore(2, _abstract(state))
  ckpt.close()
  for restored, rows in ((on_8, 16), (on_4, 12)):
    for got, saved in zip(jax.tree.leaves(restored.table), jax.tree.leaves(state.table)):
      assert got.shape[0] == rows and got.dtype == saved.dtype
      np.testing.assert_array_equal(np.asarray(got)[:10], np.asarray(saved)[:10])
    chex.assert_trees_all_equal(jax.device_get(restored.params), jax.device_get(state.params))
  config = helpers.load_config('smoke.py')
  config.bsd.top_k = top_k
  method = methods.get_method(config)
  labels = np.arange(10, dtype=np.int32) % helpers.K  # any labels: the same for both tables
  out = []
  for table in (state.table, on_8.table):
    rows = jax.tree.leaves(table)[0].shape[0]
    padded = np.zeros(rows, np.int32)
    padded[:10] = labels
    valid = np.arange(rows) < 10
    host = jax.device_get(table)
    out.append((method.epoch_stats(host, padded, valid, num_classes=helpers.K),
                method.class_targets(host, padded, valid, helpers.K)))
  chex.assert_tree_all_finite(out[1])
  chex.assert_trees_all_close(out[1], out[0], rtol=1e-6)


def test_a_dense_checkpoint_is_refused_for_a_sparse_config(tmp_path):
  """Another table layout is another state: one line naming the array, before anything runs."""
  state = helpers.step_setup(jax.devices())[0]
  ckpt = checkpoints.Checkpointer(str(tmp_path), keep=1)
  ckpt.save(1, state, {})
  other = _abstract(helpers.step_setup(jax.devices(), top_k=TOP_K)[0])
  with pytest.raises(UserError, match=r'array alpha\S* was saved with shape'):
    ckpt.restore(1, other)
  ckpt.close()


def test_keeps_only_the_last_k(tmp_path):
  state = helpers.step_setup(jax.devices())[0]
  ckpt = checkpoints.Checkpointer(str(tmp_path), keep=2)
  for s in (1, 2, 3):
    ckpt.save(s, state, {})
  ckpt.close()
  steps = sorted(int(p.name) for p in (tmp_path / 'checkpoints').iterdir() if p.name.isdigit())
  assert steps == [2, 3]
