"""End to end: the smoke config trains and logs; stopped runs resume to the identical end state."""
import json
import os
import signal

import chex
import jax
import numpy as np
import pytest

from bsd_jax import train
from bsd_jax.methods import bsd
from tests import helpers

EPOCHS, STEPS_PER_EPOCH = 5, 16  # configs/smoke.py: 1024 samples, batch 64
_run, _run_until = helpers.run_smoke, helpers.run_smoke_until


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """An uninterrupted smoke run through the CLI (one CPU device)."""
  workdir = str(tmp_path_factory.mktemp('reference'))
  _run(workdir)
  return workdir


def _assert_same_run(a, b):
  state_a, step_a = helpers.read_checkpoint_state(a)
  state_b, step_b = helpers.read_checkpoint_state(b)
  assert step_a == step_b == EPOCHS * STEPS_PER_EPOCH
  chex.assert_trees_all_equal(state_a, state_b)  # bit-exact: params, BN stats, opt, alpha, rng
  assert helpers.read_metrics(a) == helpers.read_metrics(b)


def _assert_events_match_metrics(workdir, log_steps):
  """The TensorBoard scalars: metrics.jsonl's records, each once, and the progress figures at
  each log step, once."""
  events = helpers.read_events(workdir)
  progress = {t: v for t, v in events.items() if t.startswith('progress/')}
  assert set(progress) == {'progress/loss', 'progress/learning_rate', 'progress/steps_per_s',
                           'progress/images_per_s'}
  for tag in ('progress/loss', 'progress/learning_rate'):
    assert [s for s, _ in progress[tag]] == log_steps
  for tag in ('progress/steps_per_s', 'progress/images_per_s'):  # not right after compiling
    steps = [s for s, _ in progress[tag]]
    assert len(set(steps)) == len(steps) and set(steps) <= set(log_steps)
  records = {t: v for t, v in events.items() if not t.startswith('progress/')}
  assert records == helpers.events_of_metrics(workdir)


def test_event_files_hold_the_values_of_metrics_jsonl(reference):
  _assert_events_match_metrics(reference, list(range(8, EPOCHS * STEPS_PER_EPOCH + 1, 8)))
  assert {'train/loss', 'test/accuracy', 'test/ece'} <= set(helpers.read_events(reference))


def test_smoke_run_in_process_on_8_devices_learns_and_logs(tmp_path):
  config = helpers.load_config('smoke.py')
  result = train.train_and_evaluate(config, str(tmp_path))
  assert jax.device_count() == 8
  assert result['accuracy'] > 0.3  # 10 classes: chance is 0.1
  records = helpers.read_metrics(tmp_path)
  for epoch in range(1, EPOCHS + 1):
    tr, te = [r for r in records if r['epoch'] == epoch]
    assert (tr['split'], te['split']) == ('train', 'test')
    assert tr['step'] == te['step'] == epoch * STEPS_PER_EPOCH
    assert {'loss', 'accuracy', 'confidence', 'target_max_prob', 'target_label_weight',
            'target_argmax_changed'} <= set(tr)
    assert {'accuracy', 'nll', 'ece', 'brier'} <= set(te)
  weights = [r['target_label_weight'] for r in records if r['split'] == 'train']
  assert all(w1 > w2 for w1, w2 in zip(weights, weights[1:]))  # the label's weight decays
  assert os.path.exists(tmp_path / 'config.json')


@pytest.mark.parametrize('sig', [signal.SIGTERM,
                                 pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_stop_mid_epoch_then_resume_ends_bit_exact(reference, tmp_path, sig):
  """SIGTERM (a scheduler) or SIGINT (Ctrl-C): checkpoint after the current step, then resume."""
  workdir = str(tmp_path)
  # A progress line (and a chance to stop) every 2 steps: a signal that lands a few steps late
  # (a loaded machine) still stops inside the epoch.
  every = '--config.log_every_steps=2'
  rc, out = _run_until(workdir, f'step {STEPS_PER_EPOCH + 2}/', sig, every)
  assert rc == 128 + sig, out
  assert f'Stopped by {sig.name}' in out
  out = _run(workdir, every)
  resumed_at = int(out.split('Resumed from')[1].split(' at step ')[1].split()[0])
  assert resumed_at % STEPS_PER_EPOCH != 0  # the data position inside the epoch was restored
  _assert_same_run(reference, workdir)
  _assert_events_match_metrics(workdir, list(range(2, EPOCHS * STEPS_PER_EPOCH + 1, 2)))


@pytest.mark.slow  # the SIGTERM stop above resumes through the same restore
def test_kill_9_then_resume_ends_bit_exact(reference, tmp_path):
  workdir = str(tmp_path)
  # The line after epoch 2's checkpoint; the kill lands somewhere in epoch 3.
  rc, out = _run_until(workdir, f'step {int(2.5 * STEPS_PER_EPOCH)}/', signal.SIGKILL)
  assert rc == -signal.SIGKILL, out
  out = _run(workdir)
  assert 'Resumed from' in out
  _assert_same_run(reference, workdir)


def test_rerun_of_a_finished_workdir_changes_nothing(reference):
  before = sorted(os.listdir(os.path.join(reference, 'checkpoints')))
  records = helpers.read_metrics(reference)
  out = _run(reference)
  assert 'nothing to do' in out
  assert sorted(os.listdir(os.path.join(reference, 'checkpoints'))) == before
  assert helpers.read_metrics(reference) == records


@pytest.mark.slow
def test_command_line_overrides_reach_the_run(tmp_path):
  out = _run(str(tmp_path), '--config.num_epochs=1', '--config.bsd.gamma=0.95')
  assert "'gamma': 0.95" in out
  with open(tmp_path / 'config.json') as f:
    saved = json.load(f)
  assert saved['num_epochs'] == 1 and saved['bsd']['gamma'] == 0.95
  assert max(r['epoch'] for r in helpers.read_metrics(tmp_path)) == 1


# train_pass is slow-marked: the sparse posterior's conservation test (test_bsd_sparse_training.py)
# checks the same totals of an update-at-visit run with a wrapped last batch by default.
@pytest.mark.parametrize('source', [pytest.param('train_pass', marks=pytest.mark.slow),
                                    'eval_pass'])
def test_every_row_is_updated_exactly_once_per_epoch(tmp_path, source):
  """Each update adds one probability vector: after 2 epochs every row of alpha sums to
  gamma^2 * (c + (K-1) eps) + gamma + 1, including the samples of the wrapped last batch."""
  config = helpers.load_config('smoke.py')
  config.num_epochs, config.bsd.prediction_source = 2, source
  config.data.synthetic.num_train = 1000  # not a multiple of the batch: the last batch wraps
  train.train_and_evaluate(config, str(tmp_path))
  state, _ = helpers.read_checkpoint_state(str(tmp_path))
  hp = bsd.hparams(config)
  g, k = hp['gamma'], config.data.synthetic.num_classes
  expected = g ** 2 * (hp['c'] + (k - 1) * hp['eps']) + g + 1
  np.testing.assert_allclose(state['alpha'][:1000].sum(1), expected, rtol=1e-5)


# Slow-marked: BSD's dense table resumes bit-exact by default (above), and the sparse table's
# checkpoints round-trip onto 8, 4 and 1 devices by default (test_checkpointing.py).
@pytest.mark.slow
@pytest.mark.parametrize('flag', ['--config.method=pskd', '--config.bsd.top_k=3',
                                  '--config.method=dlb'], ids=['pskd', 'bsd_sparse', 'dlb'])
def test_tables_and_carries_resume_bit_exact(tmp_path, flag):
  """PS-KD keeps a per-sample table, BSD's sparse posterior a table of several arrays (class
  ids among them), DLB a carry and the previous batch: each survives a stop."""
  # 512 samples: 8 steps per epoch, 2 epochs; the stop lands early in epoch 2.
  extra = [flag, '--config.num_epochs=2', '--config.data.synthetic.num_train=512']
  reference, stopped = str(tmp_path / 'reference'), str(tmp_path / 'stopped')
  _run(reference, *extra)
  rc, out = _run_until(stopped, 'step 8/', signal.SIGTERM, *extra)
  assert rc == 128 + signal.SIGTERM, out
  _run(stopped, *extra)
  state_a, step_a = helpers.read_checkpoint_state(reference)
  state_b, step_b = helpers.read_checkpoint_state(stopped)
  assert step_a == step_b == 16
  chex.assert_trees_all_equal(state_a, state_b)
  assert helpers.read_metrics(reference) == helpers.read_metrics(stopped)
