"""When periodic work is due, and the progress line's speed and ETA (with a fake clock)."""
from bsd_jax import periodic


def test_itstime_every_and_at_the_end():
  assert [s for s in range(1, 11) if periodic.itstime(s, 4)] == [4, 8]
  assert [s for s in range(1, 11) if periodic.itstime(s, 4, total=10)] == [4, 8, 10]
  assert [s for s in range(1, 11) if periodic.itstime(s, 0, total=10)] == [10]  # 0 = never


class FakeClock:
  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def test_progress_line_measures_since_the_last_reset():
  clock = FakeClock()
  progress = periodic.Progress(total_steps=1000, batch_size=64, clock=clock)
  progress.reset(100)
  clock.now += 20.0  # 200 steps in 20 s: 10 steps/s, 640 img/s, 700 steps left = 70 s
  assert progress.line(300) == '| 10.00 steps/s 640 img/s | ETA 1m10s'
  clock.now += 4.0  # the line reset the window: 100 steps in 4 s
  assert progress.rate(400) == 25.0
  assert progress.elapsed() == 4.0


def test_no_speed_right_after_a_reset():
  """A first call of several steps can end on a log step: the window is empty, no 0 steps/s."""
  clock = FakeClock()
  progress = periodic.Progress(total_steps=1000, batch_size=64, clock=clock)
  progress.reset(8)
  clock.now += 1.0
  assert not progress.measured(8) and progress.line(8) == ''
  assert progress.measured(9)


def test_format_seconds():
  assert periodic.format_seconds(59.9) == '0m59s'
  assert periodic.format_seconds(3599) == '59m59s'
  assert periodic.format_seconds(2 * 3600 + 5 * 60 + 7) == '2h05m'


def test_a_line_is_due_by_time_after_every_s_seconds_and_never_at_0():
  clock = FakeClock()
  progress = periodic.Progress(total_steps=1000, batch_size=64, clock=clock)
  clock.now += 29.0
  assert not progress.due(30.0)
  clock.now += 1.0
  assert progress.due(30.0) and not progress.due(0)
  progress.line(10)  # a line starts the wait again
  assert not progress.due(30.0)


def test_only_ctrl_c_is_told_that_a_second_one_quits_at_once(caplog):
  import signal
  for signum, offered in ((signal.SIGTERM, False), (signal.SIGINT, True)):
    caplog.clear()
    periodic.StopRequest()._handle(signum, None)
    line = caplog.records[-1].getMessage()
    assert line.startswith(f'Received {signal.Signals(signum).name}: stopping when the running '
                           'step')
    assert ('Ctrl-C again' in line) == offered
