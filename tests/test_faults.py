"""Fault injection: a run directory survives every fault a long job meets, or the run refuses in
one line with nothing in the workdir changed (docs/training.md, What survives which fault).

Each fault is applied to a real run of the smoke config through the command line (one CPU
device) and the resumed run is compared, bit for bit, with an uninterrupted one.
"""
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

import chex
import numpy as np
import pytest

from bsd_jax import data, experiment
from bsd_jax.rundir import checkpoints
from bsd_jax.errors import UserError
from tests import helpers

# configs/smoke.py on 256 of its samples (batch 64), a progress line every 2 steps
SMALL = ('--config.data.synthetic.num_train=256', '--config.data.synthetic.num_test=128',
         '--config.log_every_steps=2')
EPOCHS, STEPS_PER_EPOCH = 5, 4
LAST = EPOCHS * STEPS_PER_EPOCH


def _run(workdir, *extra, expect=0):
  return helpers.run_smoke(workdir, *SMALL, *extra, expect=expect)


def _start(workdir, *extra):
  return helpers.run_cli(helpers.SMOKE + ['--workdir', str(workdir)] + list(SMALL + extra))


def _run_until(workdir, marker):
  """The smoke run killed (-9) when a line contains `marker`."""
  return helpers.run_smoke_until(workdir, marker, signal.SIGKILL, *SMALL)[1]


def _one_error_line(out, prog='bsd_jax'):
  errors = [line for line in out.splitlines() if line.startswith(f'{prog}: error: ')]
  assert len(errors) == 1 and 'Traceback' not in out, out
  return errors[0]


def _snapshot(workdir):
  """{relative path: sha1} of every file under `workdir`."""
  out = {}
  for root, _, files in os.walk(workdir):
    for name in files:
      path = os.path.join(root, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, workdir)] = hashlib.sha1(f.read()).hexdigest()
  return out


def _assert_same_run(reference, workdir):
  state_a, step_a = helpers.read_checkpoint_state(reference)
  state_b, step_b = helpers.read_checkpoint_state(workdir)
  assert step_a == step_b == EPOCHS * STEPS_PER_EPOCH
  chex.assert_trees_all_equal(state_a, state_b)
  assert helpers.read_metrics(reference) == helpers.read_metrics(workdir)  # none lost, none twice


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('reference')
  _run(workdir)
  return str(workdir)


def _damage(step_dir):
  """Truncate every data file of a checkpoint's state (as a full disk or a crash would)."""
  for root, _, files in os.walk(os.path.join(step_dir, 'state')):
    for name in files:
      if not name.startswith(('_', 'commit')) and 'manifest' not in name:
        path = os.path.join(root, name)
        with open(path, 'r+b') as f:
          f.truncate(os.path.getsize(path) // 3)


# 1. Resuming with another config.

def test_resume_with_another_model_and_seed_is_refused_naming_each_key(reference, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(reference, workdir)
  before = _snapshot(workdir)
  out = _run(workdir, "--config.model.cnn_widths=(8,8)", '--config.seed=3',
             '--config.learning_rate=0.2', expect=2)
  line = _one_error_line(out)
  assert 'model.cnn_widths: saved [16, 32], now [8, 8]' in line
  assert 'seed: saved 0, now 3' in line and 'learning_rate: saved 0.05, now 0.2' in line
  assert _snapshot(workdir) == before


def test_keys_that_may_change_on_resume_are_accepted(reference, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(reference, workdir)
  out = _run(workdir, '--config.log_every_steps=4', '--config.eval_batch_size=128')
  assert 'nothing to do' in out


def test_a_lost_config_json_is_checked_against_the_checkpoints_copy_and_restored(reference,
                                                                                 tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(reference, workdir)
  os.remove(os.path.join(workdir, 'config.json'))
  before = _snapshot(workdir)
  line = _one_error_line(_run(workdir, '--config.learning_rate=0.2', expect=2))
  assert f'the config of checkpoint {LAST}' in line
  assert 'learning_rate: saved 0.05, now 0.2' in line
  assert _snapshot(workdir) == before
  out = _run(workdir)
  assert f'config.json was missing: restored from the copy saved with checkpoint {LAST}' in out
  assert 'nothing to do' in out
  with open(os.path.join(workdir, 'config.json')) as a, \
       open(os.path.join(reference, 'config.json')) as b:
    assert json.load(a) == json.load(b)


def test_checkpoints_saved_without_a_config_and_no_config_json_are_refused(tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(os.path.join(helpers.REPO, 'tests', 'fixtures', 'run_9c28292'), workdir)
  os.remove(os.path.join(workdir, 'config.json'))
  before = _snapshot(workdir)
  line = _one_error_line(_run(workdir, expect=2))
  assert 'config.json is missing and the checkpoints' in line
  assert 'saved without a copy of it' in line and 'restore config.json' in line
  assert _snapshot(workdir) == before


def test_restore_is_strict_about_every_shape_but_the_table_rows(reference):
  config = helpers.load_config('smoke.py')
  config.model.cnn_widths = (8, 8)
  exp = experiment.build(config, data.load(config))
  ckpt = checkpoints.Checkpointer(reference, 3)
  config.data.synthetic.num_train, config.data.synthetic.num_test = 256, 128
  with pytest.raises(UserError, match=rf'checkpoints/{LAST}: array batch_stats/BatchNorm_0/mean was '
                     r'saved with shape \(16,\), this config makes \(8,\)') as info:
    ckpt.restore(EPOCHS * STEPS_PER_EPOCH, exp.abstract_state)
  assert '\n' not in str(info.value)
  ckpt.close()


# 2. A torn record.

def test_a_torn_last_record_is_dropped_and_the_run_ends_bit_exact(reference, tmp_path):
  workdir = str(tmp_path / 'run')
  _run_until(workdir, f'step {int(2.5 * STEPS_PER_EPOCH)}/')  # killed in epoch 3
  with open(os.path.join(workdir, 'metrics.jsonl'), 'a') as f:
    f.write('{"step": 12, "epoch": 3, "split": "tra')  # kill -9 during an append
  out = _run(workdir)
  assert 'dropping a partial record' in out
  _assert_same_run(reference, workdir)


# 3. Damaged checkpoints.

def test_a_damaged_newest_checkpoint_is_moved_aside_and_the_run_ends_bit_exact(reference,
                                                                               tmp_path):
  workdir = str(tmp_path / 'run')
  _run_until(workdir, f'step {int(3.5 * STEPS_PER_EPOCH)}/')  # checkpoints 4, 8, 12
  _damage(os.path.join(workdir, 'checkpoints', '12'))
  out = _run(workdir)
  assert 'Checkpoint 12 cannot be restored' in out and 'Resumed from' in out
  assert 'at step 8' in out
  assert 'Moved the damaged checkpoint 12' in out
  moved = os.listdir(os.path.join(workdir, 'damaged_checkpoints'))
  assert len(moved) == 1 and moved[0].startswith('12-')  # kept, not deleted
  _assert_same_run(reference, workdir)


def test_when_no_checkpoint_restores_the_run_refuses_in_one_line(reference, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(reference, workdir)
  steps = sorted(os.listdir(os.path.join(workdir, 'checkpoints')))
  for step in steps:
    _damage(os.path.join(workdir, 'checkpoints', step))
  before = _snapshot(workdir)
  line = _one_error_line(_run(workdir, expect=2))
  assert 'no checkpoint can be restored' in line and 'nothing was moved' in line
  assert _snapshot(workdir) == before and len(steps) == 3


def test_evaluate_reads_checkpoints_without_touching_a_save_in_progress(reference, tmp_path):
  from bsd_jax import evaluate
  workdir = str(tmp_path / 'run')
  shutil.copytree(reference, workdir)
  in_progress = os.path.join(workdir, 'checkpoints', f'{LAST + 4}.orbax-checkpoint-tmp-123')
  os.makedirs(os.path.join(in_progress, 'state'))  # a training job writing a later checkpoint
  assert evaluate.evaluate(workdir)['step'] == EPOCHS * STEPS_PER_EPOCH
  assert os.path.isdir(in_progress)


def test_a_torn_record_inside_the_log_keeps_the_record_appended_to_it(tmp_path):
  """Earlier versions appended after a torn line: the complete record on it is kept."""
  from bsd_jax.rundir.metric_log import MetricLog
  with open(tmp_path / 'metrics.jsonl', 'w') as f:
    f.write('{"step": 16, "epoch": 1, "split": "train", "loss": 1.0}\n'
            '{"step": 16, "epoch": 1, "spl{"step": 16, "epoch": 1, "split": "test", "nll": 2.0}\n'
            '{"step": 32, "epoch": 2, "split": "train", "loss": 0.5}\n')
  log = MetricLog(str(tmp_path))
  log.rewind(32)
  assert [(r['split'], r['step']) for r in log.read()] == [
      ('train', 16), ('test', 16), ('train', 32)]
  with open(tmp_path / 'metrics.jsonl', 'a') as f:
    f.write('not json\n{"step": 48}\n')
  with pytest.raises(UserError, match=r'metrics\.jsonl: line 4 is not a JSON record'):
    log.read()


# 4. One job per workdir.

@pytest.mark.slow
def test_a_second_job_on_a_running_workdir_is_refused(tmp_path):
  workdir = str(tmp_path / 'run')
  longer = ('--config.data.synthetic.num_train=4096', '--config.num_epochs=20')  # about 40 s
  first = _start(workdir, *longer)
  try:
    for line in first.stdout:  # the first job is training: it holds the lock
      if 'epoch 1/20 test' in line:
        break
    out = _run(workdir, *longer, expect=2)
    line = _one_error_line(out)
    assert f'in use by process {first.pid} on this host' in line
  finally:
    first.kill()
    first.communicate(timeout=60)
  records = helpers.read_metrics(workdir)
  assert len(records) == len({(r['step'], r['split']) for r in records})  # written once


def _lock(workdir, **holder):
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'lock.json'), 'w') as f:
    json.dump(dict({'host': socket.gethostname(), 'started': 'then'}, **holder), f)


@pytest.mark.slow
def test_a_lock_of_a_process_that_is_gone_is_taken_over(tmp_path):
  gone = subprocess.Popen([sys.executable, '-c', 'pass'])
  gone.wait()
  workdir = str(tmp_path / 'run')
  _lock(workdir, pid=gone.pid)
  out = _run(workdir, '--config.num_epochs=1')
  assert f'taking over the lock of process {gone.pid}' in out
  assert not os.path.exists(os.path.join(workdir, 'lock.json'))  # released at the end


def test_a_lock_from_another_host_is_refused_with_what_to_do(tmp_path):
  workdir = str(tmp_path / 'run')
  _lock(workdir, host='node-17', pid=4242)
  line = _one_error_line(_run(workdir, expect=2))
  assert 'in use by process 4242 on host node-17' in line and 'remove the file' in line
  assert os.listdir(workdir) == ['lock.json']


# 5. Clear failures.

def test_a_nan_loss_is_one_line_with_exit_status_3(tmp_path):
  line = _one_error_line(_run(tmp_path / 'run', '--config.learning_rate=1e30', expect=3))
  assert 'training loss is nan at step 2; no checkpoint has been written' in line


def test_a_workdir_that_is_a_file_is_refused(tmp_path):
  path = tmp_path / 'file'
  path.write_text('mine')
  line = _one_error_line(_run(path, expect=2))
  assert f'--workdir {path} is a file, not a directory' in line
  assert path.read_text() == 'mine'


def _size(path):
  return sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(path) for n in names)


@pytest.fixture
def small_disk(reference, tmp_path):
  """A tmpfs (root only) with room for the run's files and 2.5 checkpoints."""
  checkpoint = max(_size(os.path.join(reference, 'checkpoints', s))
                   for s in os.listdir(os.path.join(reference, 'checkpoints')))
  mount = tmp_path / 'disk'
  mount.mkdir()
  size = int(2.5 * checkpoint + _size(reference) - _size(os.path.join(reference, 'checkpoints')))
  proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(mount)],
                        capture_output=True, text=True)
  if proc.returncode != 0:
    pytest.skip(f'cannot mount a small tmpfs here: {proc.stderr.strip()}')
  yield mount
  subprocess.run(['umount', '-l', str(mount)], check=False)


def test_a_disk_that_fills_up_during_a_save_keeps_the_last_checkpoint(reference, small_disk):
  workdir = str(small_disk / 'run')
  out = _run(workdir, '--config.keep_checkpoints=10', expect=2)
  line = _one_error_line(out)
  assert 'saving the checkpoint failed' in line and 'is intact' in line, line
  kept = helpers.read_checkpoint_state(workdir)[1]
  assert kept >= STEPS_PER_EPOCH
  subprocess.run(['mount', '-o', 'remount,size=20m', str(small_disk)], check=True)
  _run(workdir, '--config.keep_checkpoints=10')  # room again: resumes from the intact one
  _assert_same_run(reference, workdir)


# 6. kill -9 at random moments, several times in a row.

def _kill_at_random_moments(workdir, kills, seed):
  rng = random.Random(seed)
  for _ in range(kills):
    proc = _start(workdir)
    for line in proc.stdout:  # once it trains (compilation takes most of the start)
      if 'Compiled and ran the first train call' in line or 'nothing to do' in line:
        break
    time.sleep(rng.uniform(0.0, 2.0))
    proc.kill()
    proc.communicate(timeout=60)
  _run(workdir)


@pytest.mark.slow  # test_train_e2e kills one run at a fixed moment by default
def test_kill_9_at_random_moments_then_resume_ends_bit_exact(reference, tmp_path):
  workdir = str(tmp_path / 'run')
  _kill_at_random_moments(workdir, kills=3, seed=0)
  _assert_same_run(reference, workdir)


@pytest.mark.slow
def test_kill_9_many_times_at_random_moments_ends_bit_exact(reference, tmp_path):
  workdir = str(tmp_path / 'run')
  _kill_at_random_moments(workdir, kills=12, seed=1)
  _assert_same_run(reference, workdir)
  assert not os.path.exists(os.path.join(workdir, 'lock.json'))
  np.testing.assert_equal(sorted(os.listdir(os.path.join(workdir, 'checkpoints'))),
                          sorted(os.listdir(os.path.join(reference, 'checkpoints'))))


def test_only_keys_that_act_in_the_run_are_compared():
  from bsd_jax.rundir import resume_check
  saved = {'method': 'bsd', 'lr_schedule': 'cosine', 'lr_milestones': [100, 150],
           'bsd': {'gamma': 0.99, 'label_weight_end': 0.5, 'eps': 0.001},
           'pskd': {'alpha_T': 0.8}, 'log_every_steps': 100}
  new = json.loads(json.dumps(saved))
  new['lr_milestones'], new['bsd']['label_weight_end'] = [50], 0.3  # inactive: cosine, gamma set
  new['pskd']['alpha_T'], new['log_every_steps'] = 0.5, 10  # another method; may change
  assert resume_check.differences(saved, new) == []
  new['bsd']['eps'], new['lr_schedule'] = 0.01, 'multistep'
  assert resume_check.differences(saved, new) == [
      ('bsd.eps', 0.001, 0.01), ('lr_milestones', [100, 150], [50]),
      ('lr_schedule', 'cosine', 'multistep')]
