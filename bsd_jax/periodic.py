"""What the training loop does now and then: when (`itstime`, and where a call of several steps
ends: `call_length`), the progress line with its speed and ETA (`Progress`), and stopping on a
signal (`StopRequest`)."""
import logging
import signal
import time

import jax

from bsd_jax import distributed


def itstime(step: int, every: int, total: int = None) -> bool:
  """Whether periodic work of period `every` (steps; 0 = never) is due after `step` steps, the
  last step `total` always included when given."""
  return (every > 0 and step % every == 0) or (total is not None and step == total)


def call_length(step: int, steps_per_call: int, periods, total: int) -> int:
  """Steps of the next call after `step` steps: at most `steps_per_call`, ending where work of
  any of `periods` (steps; 0 = none) is due and at `total`, so that a call never runs past a
  log step, an epoch's end or the last step."""
  n = min(steps_per_call, total - step)
  for every in periods:
    if every > 0:
      n = min(n, every - step % every)
  return n


def format_seconds(s) -> str:
  s = int(s)
  return f'{s // 3600}h{s % 3600 // 60:02d}m' if s >= 3600 else f'{s // 60}m{s % 60:02d}s'


class Progress:
  """Steps per second, images per second and the ETA over the steps since the last `reset`
  (compilation, evaluation and checkpoints are kept out by resetting after them). `clock` is
  injectable for tests."""

  def __init__(self, total_steps: int, batch_size: int, clock=time.perf_counter):
    self.total_steps, self.batch_size, self.clock = total_steps, batch_size, clock
    self.reset(0)

  def reset(self, step: int):
    self._start, self._step = self.clock(), step

  def elapsed(self) -> float:
    """Seconds since the last reset."""
    return self.clock() - self._start

  def rate(self, step: int) -> float:
    return (step - self._step) / max(self.elapsed(), 1e-9)

  def due(self, every_s: float) -> bool:
    """Whether `every_s` seconds (0: never) have passed since the last line or reset."""
    return every_s > 0 and self.elapsed() >= every_s

  def measured(self, step: int) -> bool:
    """Whether steps were taken since the last reset (else there is no speed to give)."""
    return step > self._step

  def line(self, step: int) -> str:
    """'| 12.34 steps/s 1580 img/s | ETA 1m05s' for the steps since the last reset ('' when
    there are none: right after compilation); resets."""
    if not self.measured(step):
      return ''
    rate = self.rate(step)
    eta = format_seconds((self.total_steps - step) / max(rate, 1e-9))
    self.reset(step)
    return f'| {rate:.2f} steps/s {rate * self.batch_size:.0f} img/s | ETA {eta}'


class StopRequest:
  """SIGTERM / SIGINT set a flag; the loop checkpoints after the current step and returns (the
  host runs at most one call ahead of the devices: step.TrainSteps). A second Ctrl-C stops at
  once (the last checkpoint is still there).

  In a multi-process job all processes must stop after the same step (orbax saves together):
  they compare flags every `every` steps, so a signal to any process stops all of them at the
  next such step."""

  def __init__(self):
    self.signum = None
    self._previous = {}

  def _handle(self, signum, frame):
    if self.signum is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.signum = signum
    logging.warning('Received %s: stopping when the running step (or evaluation) ends, then '
                    'saving a checkpoint%s', signal.Signals(signum).name,
                    ' (Ctrl-C again to quit at once)' if signum == signal.SIGINT else '')

  def agreed(self, step_now: int, every: int) -> bool:
    """Whether to stop after step `step_now` (the same answer on every process)."""
    if jax.process_count() == 1:
      return self.signum is not None
    return step_now % every == 0 and distributed.any_process(self.signum is not None)

  def name(self) -> str:
    return signal.Signals(self.signum or signal.SIGTERM).name

  def __enter__(self):
    for s in (signal.SIGTERM, signal.SIGINT):
      self._previous[s] = signal.signal(s, self._handle)
    return self

  def __exit__(self, *exc):
    for s, h in self._previous.items():
      signal.signal(s, h)
