"""A multi-process job whose process stops: every surviving process says so in one line, within
seconds, and exits with EXIT_PEER_LOST, instead of a collective's traceback followed by a long
wait in the distributed service's shutdown barrier and an abort.

Each process keeps a beat in the distributed service's key-value store (a counter raised every
BEAT_S seconds by a thread of its own) and reads the others'. A peer whose beat has not moved
for config.peer_timeout_s (a stopped or hung process), or a store that cannot be reached for as
long (the coordinator, process 0, is gone), ends the job from the watching thread; a collective
that fails in the training loop (a peer killed: its connections close at once) ends it from
there, once the peer's beat has been still for CONFIRM_S. The line names the peer, the step
and the checkpoint the same command resumes from; the lock of process 0 is released first.
"""
import logging
import os
import sys
import threading
import time

EXIT_PEER_LOST = 75  # EX_TEMPFAIL: run the same command again (launch/slurm.sh requeues on it)
BEAT_S = 0.5
CONFIRM_S = 3.0
_KEY = 'bsd_jax/beat/{}'

# What the line reports: the training loop keeps these current.
progress = {'step': None, 'checkpoint': None}
_cleanups = []
_watch = None


def on_exit(fn):
  """Run `fn()` before a lost peer ends this process (the workdir lock's release)."""
  _cleanups.append(fn)


def _client():
  from jax._src import distributed
  return distributed.global_state.client


class _Watch:
  """The beat and the watch of one process (threads; daemon: they never keep it alive)."""

  def __init__(self, timeout_s: float):
    import jax
    self.me, self.n, self.timeout = jax.process_index(), jax.process_count(), timeout_s
    self.client = _client()
    now = time.monotonic()
    self.seen = {p: (None, now) for p in range(self.n) if p != self.me}  # beat, when it moved
    self.reached = now  # the last time the store answered
    self.stop = threading.Event()
    for target in (self._beat, self._poll, self._judge):
      threading.Thread(target=target, daemon=True, name=f'bsd_jax-{target.__name__[1:]}').start()

  def _beat(self):
    count = 0
    while not self.stop.wait(BEAT_S):
      count += 1
      try:
        self.client.key_value_set(_KEY.format(self.me), str(count), True)
      except Exception:  # noqa: BLE001 - the store is gone: _judge reports it
        pass

  def _poll(self):
    while not self.stop.wait(BEAT_S):
      try:
        for p in self.seen:
          try:
            beat = self.client.key_value_try_get(_KEY.format(p))
          except Exception as e:  # noqa: BLE001 - not yet set is NOT_FOUND; others: unreachable
            if 'NOT_FOUND' not in str(e) and 'not found' not in str(e).lower():
              raise
            beat = None
          if beat is not None and beat != self.seen[p][0]:
            self.seen[p] = (beat, time.monotonic())
        self.reached = time.monotonic()
      except Exception:  # noqa: BLE001 - the coordinator cannot be reached
        continue

  def stopped(self, still_s):
    """[(process, why)] of the peers whose beat has been still for `still_s` seconds, or the
    coordinator's when the store has not answered for as long."""
    now = time.monotonic()
    if now - self.reached > still_s and self.me != 0:
      return [(0, f'the coordinator (process 0) has not answered for {now - self.reached:.0f} s')]
    return [(p, f'no sign of life for {now - moved:.0f} s') for p, (_, moved) in self.seen.items()
            if now - moved > still_s]

  def _judge(self):
    while not self.stop.wait(BEAT_S):
      lost = self.stopped(self.timeout)
      if lost:
        end(lost)


def start(timeout_s: float):
  """Begin beating and watching (a multi-process job only; after jax.distributed.initialize)."""
  global _watch
  import jax
  if jax.process_count() > 1 and _watch is None:
    _watch = _Watch(timeout_s)


def lost_after_failure(wait_s: float = 10.0):
  """After a collective failed: the peers that stopped ([] when none did within `wait_s`)."""
  if _watch is None:
    return []
  deadline = time.monotonic() + wait_s
  while time.monotonic() < deadline:
    lost = _watch.stopped(CONFIRM_S)
    if lost:
      return lost
    time.sleep(BEAT_S)
  return []


def end(lost):
  """One line naming the stopped peers, the step and the checkpoint to resume from; the
  cleanups; then exit EXIT_PEER_LOST at once (os._exit: jax's shutdown barrier would wait for
  the peer that is gone)."""
  import jax
  names = '; '.join(f'process {p} of {jax.process_count()} stopped ({why})' for p, why in lost)
  step, ckpt = progress['step'], progress['checkpoint']
  resume = (f'the same command resumes from checkpoint {ckpt}' if ckpt is not None else
            'no checkpoint was saved yet: the same command starts over')
  for fn in _cleanups:
    try:
      fn()
    except Exception as e:  # noqa: BLE001 - the line below matters more
      logging.warning('cleanup before exit failed: %s', e)
  logging.shutdown()
  sys.stderr.write(f'bsd_jax: error: {names}, at step {step}; this job cannot go on without it: '
                   f'{resume} (exit status {EXIT_PEER_LOST})\n')
  sys.stderr.flush()
  sys.stdout.flush()
  os._exit(EXIT_PEER_LOST)
