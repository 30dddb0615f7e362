"""The sweep's grid (bsd_jax/studies/sweep_grid.py): which runs, labels and config
arguments a --grid gives, and its one-line errors. No run is started here (tests/test_sweep.py
runs a grid)."""
import pytest

from bsd_jax.studies import sweep_grid
from bsd_jax.errors import UserError
from tests import helpers


def _plan(methods=('ce', 'bsd'), seeds=('0',), weights=(), grid=()):
  return sweep_grid.plan(helpers.load_config('smoke.py'), list(methods), list(seeds), list(weights),
                    list(grid))


def test_a_general_key_crosses_every_method_and_a_method_key_only_its_own():
  runs = _plan(seeds=('0', '1'), grid=['learning_rate=0.05,0.1', 'bsd.eps=0.001,0.01'])
  labels = sorted({label for label, _, _ in runs})
  assert labels == sorted(['ce_learning_rate0.05', 'ce_learning_rate0.1',
                           'bsd_learning_rate0.05_eps0.001', 'bsd_learning_rate0.05_eps0.01',
                           'bsd_learning_rate0.1_eps0.001', 'bsd_learning_rate0.1_eps0.01'])
  assert len(runs) == 12
  args = {(label, seed): a for label, seed, a in runs}
  assert args[('bsd_learning_rate0.1_eps0.01', 1)] == [
      '--config.method=bsd', '--config.seed=1', '--config.learning_rate=0.1',
      '--config.bsd.eps=0.01']
  assert not any('bsd.eps' in a for a in args[('ce_learning_rate0.1', 0)])


def test_bsd_label_weights_keep_their_labels_and_arguments():
  runs = _plan(weights=('0.3', '0.8'))
  assert [(label, a) for label, _, a in runs] == [
      ('ce', ['--config.method=ce', '--config.seed=0']),
      ('bsd_w0.3', ['--config.method=bsd', '--config.seed=0',
                    '--config.bsd.label_weight_end=0.3']),
      ('bsd_w0.8', ['--config.method=bsd', '--config.seed=0',
                    '--config.bsd.label_weight_end=0.8'])]


def test_values_take_the_type_of_their_key_and_shared_last_parts_keep_the_whole_key():
  runs = _plan(methods=('ce',), grid=['data.augment=true,false', 'model.name=cnn,resnet18',
                                      'data.name=cifar10,cifar100', 'batch_size=32,64'])
  labels = {label for label, _, _ in runs}
  assert 'ce_augmentfalse_model.namecnn_data.namecifar10_batch_size32' in labels
  assert len(runs) == 16


@pytest.mark.parametrize('grid, weights, message', [
    (['nosuchkey=1,2'], (), r'--grid nosuchkey: the config has no such key'),
    (['bsd.nokey=1'], (), r'--grid bsd.nokey: the config has no such key'),
    (['learning_rate=fast'], (), r"--grid learning_rate: 'fast' is not a number"),
    (['batch_size=1.5'], (), r"--grid batch_size: '1.5' is not an int"),
    (['data.augment=maybe'], (), r"--grid data.augment: 'maybe' is not true or false"),
    (['model.cnn_widths=8'], (), r'--grid model.cnn_widths: a tuple cannot be a grid axis'),
    (['learning_rate'], (), r"--grid 'learning_rate': expected KEY=V1,V2"),
    (['learning_rate=0.1', 'learning_rate=0.2'], (), r'--grid learning_rate: given twice'),
    (['learning_rate=0.1,0.1'], (), r'--grid learning_rate: a value is repeated'),
    (['seed=1,2'], (), r'--grid seed: use --methods / --seeds'),
    (['bsd.label_weight_end=0.3'], ('0.5',), r'give one of them'),
    (['bsd.eps=-1'], (), r'bsd_eps-1: config.bsd.eps'),
    (['learning_rate=0.1,0.10'], (), r'--grid learning_rate: a value is repeated'),
    (['data.root=/a/b'], (), r"--grid data.root: '/a/b' cannot be part of a run label"),
    (['pskd.alpha_T=0.5,0.8'], (), r'--grid pskd.alpha_T: varies only the runs of the method'),
])
def test_bad_grids_are_one_line_errors(grid, weights, message):
  with pytest.raises(UserError, match=message) as info:
    _plan(weights=weights, grid=grid)
  assert '\n' not in str(info.value)
