"""config.steps_per_call: several train steps per jitted call change nothing but the speed."""
import re
import signal

import jax
import numpy as np
import pytest

from bsd_jax import periodic
from tests import helpers


@pytest.mark.parametrize('step,k,periods,total,expected', [
    (0, 8, (7, 10), 30, 7),    # the log step comes first
    (7, 8, (7, 10), 30, 3),    # then the epoch's end
    (10, 8, (7, 10), 30, 4),   # then the next log step (14)
    (14, 8, (7, 10), 30, 6),   # the epoch's end again (20)
    (24, 8, (100, 30), 27, 3),  # the last step
    (0, 1, (7, 10), 30, 1),
    (3, 8, (0, 20), 40, 8),    # a period of 0 is never due
])
def test_a_call_ends_where_work_is_due(step, k, periods, total, expected):
  assert periodic.call_length(step, k, periods, total) == expected


def _progress_lines(out):
  """The progress lines without their speed and ETA (which depend on the clock)."""
  return [line.split('|')[0].split('] ')[-1].strip() for line in out.splitlines()
          if re.search(r' step \d+/\d+ loss', line)]


def _run(tmp_path, method, k):
  # 10 steps an epoch, a log line every 7 steps: calls of 7, 3, 4, 6, ... steps, not only K.
  flags = ['--config.method', method, '--config.num_epochs=3', '--config.batch_size=32',
           '--config.data.synthetic.num_train=320', '--config.data.synthetic.num_test=64',
           '--config.log_every_steps=7', '--config.data.augment=True',
           f'--config.steps_per_call={k}']
  out = helpers.run_smoke(tmp_path / f'k{k}', *flags)
  leaves = {}
  for step in (10, 30):  # after the first epoch and at the end
    state, _ = helpers.read_checkpoint_state(tmp_path / f'k{k}', step)
    leaves[step] = jax.tree.leaves(state)
    assert leaves[step]
  return _progress_lines(out), helpers.read_metrics(tmp_path / f'k{k}'), leaves


@pytest.mark.slow  # 35 s: K = 1, 3 and 8 runs
def test_steps_per_call_changes_nothing_but_the_speed(tmp_path):
  method = 'dlb'  # an extra view and a carried state (BSD: the stop-and-resume test below)
  lines1, metrics1, leaves1 = _run(tmp_path, method, 1)
  lines3, metrics3, leaves3 = _run(tmp_path, method, 3)
  lines8, metrics8, leaves8 = _run(tmp_path, method, 8)
  # The same progress lines at the same steps, the same records.
  assert [l.split()[3] for l in lines8] == ['7/30', '14/30', '21/30', '28/30']
  assert lines3 == lines8
  assert lines1 == lines8 or _loss_close(lines1, lines8)
  assert [sorted(r) for r in metrics1] == [sorted(r) for r in metrics8]
  # K = 3 and K = 8 run one loop program: bit for bit.
  assert metrics3 == metrics8
  for step in (10, 30):
    for a, b in zip(leaves3[step], leaves8[step], strict=True):
      np.testing.assert_array_equal(a, b)
  # K = 1 runs the single-step program, which XLA fuses otherwise: the state equal to float
  # rounding after one epoch (the rounding then grows, to 1e-2 of the momentum buffers' scale
  # after three); the records equal to 1e-3 throughout. How far one epoch's rounding goes
  # depends on the CPU: up to 1.2e-4 on one AMD EPYC, 5.1e-4 on another (2 of 4,608 elements
  # of one array beyond 5e-4), hence atol 1e-3. It still sees a real change: the same epoch
  # with the learning rate 1% higher moves 410 elements by more than 1e-3 (up to 6.7e-3).
  for r1, r8 in zip(metrics1, metrics8):
    assert {k: v for k, v in r1.items() if not isinstance(v, float)} == {
        k: v for k, v in r8.items() if not isinstance(v, float)}
    np.testing.assert_allclose([v for v in r1.values() if isinstance(v, float)],
                               [v for v in r8.values() if isinstance(v, float)], rtol=1e-3,
                               atol=1e-3)
  for a, b in zip(leaves1[10], leaves8[10], strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def _loss_close(lines_a, lines_b):
  """Progress lines equal but for the last digits of their loss."""
  def parts(line):
    words = line.split()
    return words[:5] + words[6:], float(words[5])
  return all(parts(a)[0] == parts(b)[0] and abs(parts(a)[1] - parts(b)[1]) < 1e-3
             for a, b in zip(lines_a, lines_b, strict=True))


@pytest.mark.slow  # 36 s: K > 1 is opt-in (the default is 1); the call lengths run by default
def test_a_run_of_several_steps_per_call_stops_and_resumes_bit_exact(tmp_path):
  """SIGTERM lands between calls; the resumed run (here with another K > 1) ends where the
  uninterrupted one does. The stopped run logs every 2 steps (a line and a sync every call), so
  that the stop lands inside epoch 2 and not at its end."""
  epochs = '--config.num_epochs=2'
  helpers.run_smoke(tmp_path / 'reference', epochs, '--config.steps_per_call=4')
  workdir = tmp_path / 'stopped'
  rc, out = helpers.run_smoke_until(workdir, 'step 18/', signal.SIGTERM, epochs,
                                    '--config.steps_per_call=2', '--config.log_every_steps=2')
  assert rc == 128 + signal.SIGTERM, out
  out = helpers.run_smoke(workdir, epochs, '--config.steps_per_call=4')
  resumed_at = int(out.split('Resumed from')[1].split(' at step ')[1].split()[0])
  assert resumed_at % 16 != 0  # inside an epoch (configs/smoke.py: 16 steps an epoch)
  final = {}
  for name in ('reference', 'stopped'):
    state, step = helpers.read_checkpoint_state(tmp_path / name)
    assert step == 32
    final[name] = jax.tree.leaves(state)
  for a, b in zip(final['reference'], final['stopped'], strict=True):
    np.testing.assert_array_equal(a, b)
  assert helpers.read_metrics(tmp_path / 'reference') == helpers.read_metrics(workdir)


@pytest.mark.parametrize('k', [1, 4])
def test_the_running_totals_hold_the_steps_since_each_was_taken(k):
  from bsd_jax import data, experiment, feeds, step
  config = helpers.load_config('smoke.py')
  config.steps_per_call = k
  config.data.synthetic.num_train, config.data.synthetic.num_test = 256, 64  # 4 steps of 64
  ds = data.load(config)
  exp = experiment.build(config, ds)
  state = jax.jit(exp.init_state, out_shardings=exp.state_shardings)(
      jax.random.PRNGKey(0), exp.padded_labels)
  with feeds.make(config, ds, exp) as feed:
    steps = step.TrainSteps(config, exp, feed, epoch_sums={
        'loss_sum': 10.0, 'count': 5.0, 'correct': 1.0, 'confidence_sum': 2.0})
    for n in ((1, 1, 1) if k == 1 else (3,)):
      state = steps.advance(state, int(state.step), n)
    first = steps.take('interval')
    assert first['count'] == 3 * 64 and np.isfinite(first['loss_sum'])
    state = steps.advance(state, 3, 1)
    second = steps.take('interval')
    epoch = steps.take('epoch')
  assert second['count'] == 64
  assert epoch['count'] == 5 + 4 * 64  # from the checkpoint's sums on
  np.testing.assert_allclose(epoch['loss_sum'], 10 + first['loss_sum'] + second['loss_sum'],
                             rtol=1e-6)
  assert all(v == 0 for v in steps.peek('interval').values())  # both start again at the end
  assert all(v == 0 for v in steps.peek('epoch').values())
