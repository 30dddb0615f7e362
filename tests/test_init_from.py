"""config.init_from: a run starts from another run's model (bsd_jax/pretrained/), and its first
test record (epoch 0, before any step) is that model's. With a learning rate of 0 the weights a
run ends with are the ones it started from, so they show what was loaded."""
import logging
import types

import jax
import numpy as np
import pytest

from bsd_jax import pretrained, train
from bsd_jax.errors import UserError
from tests import helpers


def _config(**synthetic):
  config = helpers.load_config('smoke.py')
  config.num_epochs, config.log_every_seconds = 1, 0.0
  config.data.synthetic.num_train, config.data.synthetic.num_test = 256, 128
  for key, value in synthetic.items():
    config.data.synthetic[key] = value
  return config


def _params(workdir):
  state, _ = helpers.read_checkpoint_state(workdir)
  return {'/'.join(str(getattr(k, 'key', k)) for k in path): np.asarray(leaf) for path, leaf in
          jax.tree_util.tree_leaves_with_path(state['params'])}


@pytest.fixture(scope='module')
def source(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('source'))
  train.train_and_evaluate(_config(), workdir)
  return workdir


def test_the_model_of_the_source_run_is_where_the_new_run_starts(source, tmp_path, caplog):
  caplog.set_level(logging.INFO)
  config = _config()
  config.init_from, config.learning_rate, config.seed = source, 0.0, 1
  train.train_and_evaluate(config, str(tmp_path))
  want, got = _params(source), _params(str(tmp_path))
  assert want.keys() == got.keys()
  for name in want:  # same machine: bit for bit
    np.testing.assert_array_equal(got[name], want[name], err_msg=name)
  assert 'config.init_from: the model of' in caplog.text
  # Its first record, before any step, is the source's last test evaluation: where it starts.
  start, source_end = helpers.read_metrics(str(tmp_path))[0], helpers.read_metrics(source,
                                                                                   'test')[-1]
  assert (start['step'], start['epoch'], start['split']) == (0, 0, 'test')
  for key in ('accuracy', 'nll', 'ece'):
    assert start[key] == source_end[key], key
  assert len(helpers.read_metrics(str(tmp_path), 'test')) == 2  # epoch 0 and epoch 1
  # Not the table: the new run's posterior starts from its own labels.
  state, _ = helpers.read_checkpoint_state(str(tmp_path))
  assert state['alpha'].shape[0] >= 256


@pytest.mark.slow
def test_a_head_for_another_class_count_starts_afresh_and_the_rest_is_loaded(source, tmp_path,
                                                                             caplog):
  caplog.set_level(logging.INFO)
  config = _config(num_classes=5)
  config.init_from, config.learning_rate = source, 0.0
  train.train_and_evaluate(config, str(tmp_path))
  want, got = _params(source), _params(str(tmp_path))
  head = [name for name in got if got[name].shape != want[name].shape]
  assert head and all(got[name].shape[-1] == 5 and want[name].shape[-1] == 10 for name in head)
  for name in set(got) - set(head):
    np.testing.assert_array_equal(got[name], want[name], err_msg=name)
  assert 'the classifier head starts afresh for 5 classes' in caplog.text


def test_another_model_is_one_error_naming_the_array_and_nothing_is_written(source, tmp_path):
  config = _config()
  config.init_from, config.model.cnn_widths = source, (8, 16)
  with pytest.raises(UserError, match=r'config\.init_from: array (batch_stats|params)/\S+ was '
                                      r'saved with shape \[16\], this config makes \[8\]'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def _abstract(**leaves):
  """A stand-in for a state's params and batch_stats: {'params/a/kernel': shape, ...}."""
  tree = {'params': {}, 'batch_stats': {}}
  for name, shape in leaves.items():
    section, layer, leaf = name.split('__')
    tree[section].setdefault(layer, {})[leaf] = jax.ShapeDtypeStruct(shape, np.float32)
  return types.SimpleNamespace(**tree)


def test_merge_takes_equal_shapes_leaves_a_head_for_another_class_count_and_refuses_the_rest():
  now = _abstract(params__Conv_0__kernel=(3, 3, 3, 8), params__Dense_0__kernel=(8, 5),
                  params__Dense_0__bias=(5,), batch_stats__BatchNorm_0__mean=(8,))
  loaded = {'params/Conv_0/kernel': np.ones((3, 3, 3, 8), np.float64),
            'params/Dense_0/kernel': np.ones((8, 10)), 'params/Dense_0/bias': np.ones(10),
            'batch_stats/BatchNorm_0/mean': np.full(8, 2.0)}
  merged = pretrained.merge(loaded, now, num_classes=5)
  assert merged['params/Dense_0/kernel'] is None and merged['params/Dense_0/bias'] is None
  assert merged['params/Conv_0/kernel'].dtype == np.float32  # the new model's dtype
  np.testing.assert_array_equal(merged['batch_stats/BatchNorm_0/mean'], np.full(8, 2.0))
  # The same head shapes with the class count of the file: a mismatch, not a new head.
  with pytest.raises(UserError, match=r'params/Dense_0/bias was saved with shape \[10\], this '
                                      r'config makes \[5\]'):
    pretrained.merge(loaded, now, num_classes=7)
  with pytest.raises(UserError, match=r'the weights have no array params/Conv_0/kernel'):
    pretrained.merge({k: v for k, v in loaded.items() if 'Conv' not in k}, now, num_classes=5)
  with pytest.raises(UserError, match=r'this config makes no array params/Extra/w'):
    pretrained.merge(dict(loaded, **{'params/Extra/w': np.ones(1)}), now, num_classes=5)


@pytest.mark.parametrize('where, match', [('missing', 'does not exist'),
                                          ('empty', 'is not a bsd_jax run directory')])
def test_a_path_that_is_not_a_run_is_one_error(tmp_path, where, match):
  (tmp_path / 'empty').mkdir()
  config = _config()
  config.init_from = str(tmp_path / where)
  with pytest.raises(UserError, match=match):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()
