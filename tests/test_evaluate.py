"""The evaluate command on a real smoke run's workdir."""
import json
import os
import shutil

import pytest

from bsd_jax import evaluate, train
from bsd_jax.errors import UserError
from tests import helpers


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('run'))
  config = helpers.load_config('smoke.py')
  config.num_epochs = 2
  train.train_and_evaluate(config, workdir)
  return workdir


def test_evaluate_writes_metrics_and_reliability_diagram(run_dir):
  record = evaluate.evaluate(run_dir)
  with open(os.path.join(run_dir, 'eval', 'metrics.json')) as f:
    saved = json.load(f)
  assert saved == json.loads(json.dumps(record))
  assert saved['step'] == 32 and saved['num_samples'] == 512
  with open(os.path.join(run_dir, 'eval', 'reliability.png'), 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  logged = helpers.read_metrics(run_dir, 'test')[-1]
  for key in ('accuracy', 'nll', 'ece', 'brier'):  # same checkpoint, same test set
    assert saved['metrics'][key] == pytest.approx(logged[key], rel=1e-5, abs=1e-6)
  assert {'adaptive_ece', 'classwise_ece', 'ece_10', 'aurc'} <= set(saved['metrics'])


def test_evaluating_another_step_keeps_the_earlier_results(run_dir):
  evaluate.evaluate(run_dir)
  evaluate.evaluate(run_dir, step=16)
  names = sorted(os.listdir(os.path.join(run_dir, 'eval')))
  assert names == ['class_targets.npz', 'metrics.json', 'metrics.step32.json',
                   'reliability.png', 'reliability.step32.png']
  with open(os.path.join(run_dir, 'eval', 'metrics.json')) as f:
    assert json.load(f)['step'] == 16


def test_missing_step_and_missing_run_are_one_line_errors(run_dir, tmp_path):
  with pytest.raises(UserError, match=r'--step 5: no such checkpoint .*have \[16, 32\]'):
    evaluate.evaluate(run_dir, step=5)
  with pytest.raises(UserError, match='not a bsd_jax run directory'):
    evaluate.evaluate(str(tmp_path))
  shutil.copy(os.path.join(run_dir, 'config.json'), tmp_path / 'config.json')
  with pytest.raises(UserError, match='no checkpoint to evaluate'):
    evaluate.evaluate(str(tmp_path))
  with open(tmp_path / 'config.json') as f:
    config = json.load(f)
  config['bsd'] = 'dense'  # edited by hand
  with open(tmp_path / 'config.json', 'w') as f:
    json.dump(config, f)
  with pytest.raises(UserError, match=r"config\.json: 'bsd' is not a section"):
    evaluate.evaluate(str(tmp_path))


def test_unreadable_checkpoint_falls_back_or_is_a_one_line_error(run_dir, tmp_path):
  broken = tmp_path / 'broken'
  shutil.copytree(run_dir, broken)
  state_dir = broken / 'checkpoints' / '32' / 'state'
  for root, _, files in os.walk(state_dir):
    for name in files:
      if not name.startswith('_'):
        with open(os.path.join(root, name), 'wb') as f:
          f.write(b'garbage')
  with pytest.raises(UserError, match=r'cannot read the checkpoint .*checkpoints/32') as info:
    evaluate.evaluate(str(broken), step=32)
  assert '\n' not in str(info.value)
  # Without --step: the newest checkpoint that can be read, named in the record; nothing moved.
  record = evaluate.evaluate(str(broken))
  assert record['step'] == 16
  assert sorted(os.listdir(broken / 'checkpoints')) == ['16', '32']
  for name in os.listdir(broken / 'checkpoints' / '16'):  # both broken: a one-line error
    shutil.rmtree(broken / 'checkpoints' / '16' / name, ignore_errors=True)
  with pytest.raises(UserError, match=r'no checkpoint can be read \(have \[16, 32\]\)'):
    evaluate.evaluate(str(broken))


def test_a_run_written_before_model_became_a_group_still_evaluates(run_dir, tmp_path):
  """Older config.json files have `model` and `cnn_widths` at the top and no `table_dtype` or
  `bsd.top_k` (the dense posterior)."""
  old = tmp_path / 'old'
  shutil.copytree(run_dir, old, ignore=shutil.ignore_patterns('eval'))
  with open(old / 'config.json') as f:
    config = json.load(f)
  model = config.pop('model')
  config.pop('table_dtype')
  config['bsd'].pop('top_k'), config['bsd'].pop('top_k_shadow')
  config['model'], config['cnn_widths'] = model['name'], model['cnn_widths']
  with open(old / 'config.json', 'w') as f:
    json.dump(config, f)
  record = evaluate.evaluate(str(old))
  logged = helpers.read_metrics(run_dir, 'test')[-1]
  assert record['step'] == 32
  assert record['metrics']['accuracy'] == pytest.approx(logged['accuracy'], abs=1e-6)
  assert record['metrics']['nll'] == pytest.approx(logged['nll'], rel=1e-5)
