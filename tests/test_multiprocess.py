"""Multi-process jobs on CPU: 2 processes x 4 devices against 1 process x 8 devices.

The processes are real (launch/cpu_processes.sh, or two `python -m bsd_jax.main` joined over
127.0.0.1), each in a subprocess with a timeout: a process whose peer is missing aborts."""
import json
import os
import re
import signal
import socket
import subprocess
import sys

import chex
import numpy as np
import pytest

from bsd_jax import train
from tests import helpers

# The smoke config, shortened: 512 samples, batch 64, 2 epochs = 16 steps, a log line every 4.
OVERRIDES = ['--config.data.synthetic.num_train=512', '--config.num_epochs=2',
             '--config.log_every_steps=4']
STEPS = 16


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _launch(workdir, *extra, overrides=OVERRIDES):
  """launch/cpu_processes.sh 2 4 ...: (exit status, output of both processes)."""
  env = dict(os.environ, PORT=str(_free_port()), PYTHON=sys.executable)
  proc = subprocess.run(['bash', os.path.join(helpers.REPO, 'launch', 'cpu_processes.sh'), '2',
                         '4', 'configs/smoke.py', workdir] + overrides + list(extra),
                        cwd=helpers.REPO, env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True, timeout=400)
  return proc.returncode, proc.stdout


@pytest.fixture(scope='module')
def one_process(tmp_path_factory):
  """The reference: this (test) process, 8 devices."""
  workdir = str(tmp_path_factory.mktemp('one'))
  config = helpers.load_config('smoke.py')
  config.data.synthetic.num_train, config.num_epochs, config.log_every_steps = 512, 2, 4
  train.train_and_evaluate(config, workdir)
  return workdir


@pytest.fixture(scope='module')
def two_processes(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('two'))
  rc, out = _launch(workdir)
  assert rc == 0, out
  return workdir, out


def _assert_same_state(a, b):
  state_a, step_a = helpers.read_checkpoint_state(a)
  state_b, step_b = helpers.read_checkpoint_state(b)
  assert step_a == step_b == STEPS
  # Same 8-device program; cross-process reductions (gloo) may add in another order: a BatchNorm
  # mean near 0.01 was seen 1.3e-6 apart (jax 0.10.2), hence atol 1e-5.
  chex.assert_trees_all_close(state_a, state_b, rtol=1e-5, atol=1e-5)


def test_two_processes_end_like_one_process(one_process, two_processes):
  workdir, out = two_processes
  assert 'process 0 of 2, 4 local of 8 devices' in out
  assert 'This process read 256 of 512 train and 256 of 512 test images' in out  # its rows only
  _assert_same_state(one_process, workdir)
  # Process 0 alone wrote the log: one train and one test record per epoch.
  records = helpers.read_metrics(workdir)
  assert [(r['split'], r['epoch']) for r in records] == [
      ('train', 1), ('test', 1), ('train', 2), ('test', 2)]
  reference = helpers.read_metrics(one_process)
  for got, want in zip(records, reference):
    assert got.keys() == want.keys()
    for key, value in want.items():
      expected = value if isinstance(value, str) else pytest.approx(value, rel=1e-4, abs=1e-6)
      assert got[key] == expected, key


def test_two_process_checkpoint_restores_in_one_process(two_processes):
  workdir, _ = two_processes
  proc = helpers.run_cli([f'--workdir={workdir}'], module='bsd_jax.evaluate')
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out
  with open(os.path.join(workdir, 'eval', 'metrics.json')) as f:
    evaluated = json.load(f)
  last_test = helpers.read_metrics(workdir, 'test')[-1]
  assert evaluated['step'] == STEPS
  assert evaluated['metrics']['accuracy'] == pytest.approx(last_test['accuracy'], abs=1e-6)
  assert evaluated['metrics']['nll'] == pytest.approx(last_test['nll'], rel=1e-4)


@pytest.mark.slow  # 40 s; the dense table's test above runs the same row placement by default
def test_the_sparse_table_two_processes_end_like_one_and_restore_in_one(tmp_path):
  one = str(tmp_path / 'one')
  config = helpers.load_config('smoke.py')
  config.data.synthetic.num_train, config.num_epochs, config.log_every_steps = 512, 2, 4
  config.bsd.top_k = 3
  train.train_and_evaluate(config, one)
  two = str(tmp_path / 'two')
  rc, out = _launch(two, '--config.bsd.top_k=3')
  assert rc == 0, out
  _assert_same_state(one, two)
  state, _ = helpers.read_checkpoint_state(two)
  assert sorted(state['alpha']) == ['ids', 'rest', 'values']
  proc = helpers.run_cli([f'--workdir={two}'], module='bsd_jax.evaluate')  # onto 1 device
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out
  with open(os.path.join(two, 'eval', 'metrics.json')) as f:
    evaluated = json.load(f)
  assert evaluated['metrics']['accuracy'] == pytest.approx(
      helpers.read_metrics(two, 'test')[-1]['accuracy'], abs=1e-6)


def _process(workdir, port, process_id, overrides=OVERRIDES):
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES='4')
  return subprocess.Popen(
      [sys.executable, '-m', 'bsd_jax.main', '--config', 'configs/smoke.py', '--workdir', workdir,
       f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2',
       f'--process_id={process_id}'] + overrides, cwd=helpers.REPO, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_sigterm_to_one_process_stops_both_at_the_same_step_and_resumes(one_process, tmp_path):
  workdir = str(tmp_path / 'preempted')
  port = _free_port()
  procs = [_process(workdir, port, i) for i in (0, 1)]
  seen = []
  for line in procs[0].stdout:  # process 0 logs; process 1 gets the signal
    seen.append(line)
    if 'step 4/16' in line:
      procs[1].send_signal(signal.SIGTERM)
      break
  outs = [p.communicate(timeout=300)[0] for p in procs]
  assert [p.returncode for p in procs] == [128 + signal.SIGTERM] * 2, ''.join(seen) + outs[0]
  _, saved_at = helpers.read_checkpoint_state(workdir)
  assert 4 <= saved_at < STEPS and saved_at % 4 == 0  # a log step: where the processes agree
  rc, out = _launch(workdir)
  assert rc == 0 and 'Resumed' in out, out
  _assert_same_state(one_process, workdir)


def test_unreadable_image_in_one_process_rows_stops_both_with_one_line_errors(tmp_path):
  from PIL import Image
  root = tmp_path / 'images'
  for split in ('train', 'test'):
    for c in ('a', 'b'):
      os.makedirs(root / split / c)
      for i in range(8):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / split / c / f'{i}.png')
  (root / 'train' / 'b' / '7.png').write_bytes(b'not a png')  # sample 15: process 1's rows
  workdir = tmp_path / 'run'
  rc, out = _launch(str(workdir), overrides=[
      '--config.data.source=folder', f'--config.data.root={root}', '--config.batch_size=8',
      '--config.eval_batch_size=8'])
  assert rc == 2, out
  assert out.count('bsd_jax: error:') == 2, out  # one line each (the two may interleave)
  assert re.search(r"bsd_jax: error: config\.data\.root: cannot read image \S*7\.png", out), out
  assert 'bsd_jax: error: another process of this job could not read' in out, out
  assert 'Traceback' not in out and not workdir.exists()


# A process of the job stops (killed, or hung): the other ends within seconds in one line, exit
# 75, and the same command resumes to the end of the uninterrupted run.
LONGER = ['--config.data.synthetic.num_train=512', '--config.num_epochs=4',
          '--config.log_every_steps=4', '--config.peer_timeout_s=10']


@pytest.fixture(scope='module')
def two_processes_longer(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('two_longer'))
  rc, out = _launch(workdir, overrides=LONGER)
  assert rc == 0, out
  return workdir


@pytest.mark.slow
@pytest.mark.parametrize('sig,within_s', [(signal.SIGKILL, 30), (signal.SIGSTOP, 10 + 30)])
def test_a_process_that_stops_ends_the_job_in_one_line_and_the_job_resumes(
    two_processes_longer, tmp_path, sig, within_s):
  workdir = str(tmp_path / 'run')
  port = _free_port()
  procs = [_process(workdir, port, i, LONGER) for i in (0, 1)]
  seen = []
  try:
    for line in procs[0].stdout:
      seen.append(line)
      if 'step 12/32' in line:  # inside epoch 2: the newest checkpoint is the one of step 8
        procs[1].send_signal(sig)
        break
    out = ''.join(seen) + procs[0].communicate(timeout=within_s)[0]
  finally:
    procs[1].kill()
    procs[1].communicate(timeout=60)
  assert procs[0].returncode == 75, out
  errors = [l for l in out.splitlines() if l.startswith('bsd_jax: error: ')]
  assert len(errors) == 1 and 'Traceback' not in out, out
  # Named by its still beat, or (killed) by the collective that failed on its connection.
  assert re.search(r'process 1 of 2 stopped \((no sign of life for \d+ s|a collective failed: '
                   r'[^)]+)\), at step (12|13|14|15|16); .*the same command resumes from '
                   r'checkpoint 8 \(exit status 75\)', errors[0]), errors[0]
  assert not os.path.exists(os.path.join(workdir, 'lock.json'))  # process 0 released it
  rc, out = _launch(workdir, overrides=LONGER)
  assert rc == 0 and 'Resumed' in out and 'at step 8' in out, out
  a, step_a = helpers.read_checkpoint_state(two_processes_longer)
  b, step_b = helpers.read_checkpoint_state(workdir)
  assert step_a == step_b == 32
  chex.assert_trees_all_equal(a, b)  # one machine: bit for bit
