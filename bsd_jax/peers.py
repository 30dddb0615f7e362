"""A multi-process job whose process stops: every surviving process says so in one line, within
seconds, and exits with EXIT_PEER_LOST, instead of a collective's traceback followed by a long
wait in the distributed service's shutdown barrier and an abort.

Each process keeps a beat in the distributed service's key-value store (a counter raised every
BEAT_S seconds by a thread of its own) and reads the others'. A peer whose beat has not moved
for config.peer_timeout_s while the store kept answering (a process killed, stopped with
SIGSTOP, or frozen with its host), or a store that has not answered for as long (the
coordinator, process 0, is gone), ends the job from the watching thread; a collective that
fails in the training loop (a peer killed: its connections close at once) ends it from there,
once the peer's beat has been still for CONFIRM_S (or, where the failed collective leaves the
store silent, from the error's words: lost_after_failure). The beat comes from its own thread, so a
process that still runs but no longer steps (a deadlock in the program) is not detected. A
process that finishes (stop()) says so in the store, and is not waited for. If this process
itself was paused (a suspended job), the watch starts over on waking instead of blaming the
others. The line names the peer, the step and the checkpoint the same command resumes from; the
cleanups (the lock of process 0) run first, for at most CLEANUP_S."""
import contextlib
import logging
import os
import sys
import threading
import time

from bsd_jax.errors import UserError

EXIT_PEER_LOST = 75  # EX_TEMPFAIL: run the same command again (launch/slurm.sh requeues on it)
BEAT_S = 0.5
CONFIRM_S = 3.0
CLEANUP_S = 10.0
MIN_TIMEOUT_S = 10.0
_BEATS, _DONE = 'bsd_jax/beat/', 'bsd_jax/done/'

# What the line reports: the training loop keeps these current.
progress = {'step': None, 'checkpoint': None}
_cleanups = []
_watch = None


@contextlib.contextmanager
def on_exit(fn):
  """Within the block, run `fn()` before a lost peer ends this process (the workdir lock's
  release)."""
  _cleanups.append(fn)
  try:
    yield
  finally:
    _cleanups.remove(fn)


class _Watch:
  """The beat and the watch of one process (daemon threads: they never keep it alive)."""

  def __init__(self, timeout_s: float):
    import jax
    from jax._src import distributed
    self.me, self.n, self.timeout = jax.process_index(), jax.process_count(), timeout_s
    self.client = distributed.global_state.client
    self.lock = threading.Lock()
    self.reached = time.monotonic()  # the last round in which the store answered
    self.seen = {p: (None, self.reached) for p in range(self.n) if p != self.me}
    self.done = set()  # peers that finished
    self.store_error = None  # why the store last failed to answer
    self.finished = threading.Event()
    for target in (self._beat, self._poll):
      threading.Thread(target=target, daemon=True, name=f'bsd_jax-{target.__name__[1:]}').start()

  def _beat(self):
    count, warned = 0, False
    while not self.finished.wait(BEAT_S):
      count += 1
      try:
        self.client.key_value_set(f'{_BEATS}{self.me}', str(count), True)
      except Exception as e:  # noqa: BLE001 - the store is gone: the others report it
        if not warned:
          logging.warning('bsd_jax: cannot write this process\'s beat: %s', e)
          warned = True

  def _dir(self, prefix):
    """{process: value} of the keys under `prefix` (one request; none yet is {})."""
    try:
      pairs = self.client.key_value_dir_get(prefix)
    except Exception as e:  # noqa: BLE001 - an empty directory may answer NOT_FOUND
      if 'NOT_FOUND' in str(e) or 'not found' in str(e).lower():
        return {}
      raise
    return {int(k.rstrip('/').rsplit('/', 1)[-1]): v for k, v in pairs}

  def _poll(self):
    slept_from = time.monotonic()
    while not self.finished.wait(BEAT_S):
      now = time.monotonic()
      # A wait of BEAT_S that took far longer: this process was paused (a suspended job, a
      # frozen VM), not the others: start over. (A slow answer of the store is not a pause.)
      if now - slept_from > BEAT_S + min(5.0, self.timeout / 2):
        with self.lock:
          self.reached = now
          self.seen = {p: (beat, now) for p, (beat, _) in self.seen.items()}
      try:
        beats, done = self._dir(_BEATS), set(self._dir(_DONE))  # the peers' beats, who finished
      except Exception as e:  # noqa: BLE001 - the coordinator cannot be reached: judged below
        beats, self.store_error = None, str(e).split('\n')[0][:300]
      with self.lock:
        if beats is not None:
          self.reached = time.monotonic()
          self.done |= done
          for p, (old, _) in list(self.seen.items()):
            if beats.get(p) not in (None, old):
              self.seen[p] = (beats[p], self.reached)
      lost = self.stopped(self.timeout)
      if lost:
        end(lost)
      slept_from = time.monotonic()

  def stopped(self, still_s):
    """[(process, why)] of the peers whose beat has been still for `still_s` seconds of a store
    that kept answering, or the coordinator's when the store has not answered for as long."""
    with self.lock:
      now = time.monotonic()
      if self.me != 0 and now - self.reached > still_s:
        return [(0, f'the coordinator (process 0) has not answered for {now - self.reached:.0f} s')]
      return [(p, f'no sign of life for {self.reached - moved:.0f} s')
              for p, (_, moved) in self.seen.items()
              if p not in self.done and self.reached - moved > still_s]

  def finish(self):
    self.finished.set()
    try:
      self.client.key_value_set(f'{_DONE}{self.me}', '1', True)
    except Exception as e:  # noqa: BLE001 - the others then take this process for stopped
      logging.warning('bsd_jax: cannot tell the other processes this one finished: %s', e)


def check_timeout(timeout_s):
  """The config's peer_timeout_s, or UserError naming it (before the job starts)."""
  if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) \
      or not timeout_s >= MIN_TIMEOUT_S:
    raise UserError(f'config.peer_timeout_s must be a number of seconds >= {MIN_TIMEOUT_S:g}, '
                    f'got {timeout_s!r}')
  return float(timeout_s)


def start(timeout_s: float):
  """Begin beating and watching (a multi-process job only; after jax.distributed.initialize)."""
  global _watch
  import jax
  if jax.process_count() > 1 and _watch is None:
    _watch = _Watch(timeout_s)


def stop():
  """This process has finished its part: stop watching, and let the others know."""
  if _watch is not None:
    _watch.finish()


# Words of a collective or store that failed because a process of the job went away.
_COMMUNICATION = ('Gloo', 'Connection reset', 'Connection refused', 'Socket closed', 'UNAVAILABLE',
                  'DEADLINE_EXCEEDED', 'heartbeat', 'NCCL', 'connection')


def lost_after_failure(error=None, wait_s: float = 10.0):
  """After `error` (an exception of a collective, a save, ...): the peers that stopped, [] when
  none did within `wait_s` (at once for a single process). The failed collective may leave this
  process's store silent too (seen on CPU with Gloo); then, for an error that speaks of the
  connection, the peer is the other process of a 2-process job, or one not known by number."""
  if _watch is None:
    return []
  text = str(error or '').split('\n')[0]
  deadline = time.monotonic() + wait_s
  while time.monotonic() < deadline:
    lost = _watch.stopped(CONFIRM_S)
    if lost:
      return lost
    with _watch.lock:
      silent = time.monotonic() - _watch.reached > CONFIRM_S
    if silent and any(word in text for word in _COMMUNICATION):
      return [(1 - _watch.me if _watch.n == 2 else None, f'a collective failed: {text[:200]}')]
    time.sleep(BEAT_S)
  with _watch.lock:
    now = time.monotonic()
    logging.warning('bsd_jax: no process of the job stopped (the store answered %.1f s ago%s; '
                    'beats moved %s s ago)', now - _watch.reached,
                    f', then: {_watch.store_error}' if _watch.store_error else '',
                    {p: round(now - moved, 1) for p, (_, moved) in _watch.seen.items()})
  return []


def _run_cleanups():
  for fn in list(_cleanups):
    try:
      fn()
    except Exception as e:  # noqa: BLE001 - the line that follows matters more
      logging.warning('cleanup before exit failed: %s', e)


def end(lost):
  """One line naming the stopped peers, the step and the checkpoint to resume from; the
  cleanups (for at most CLEANUP_S: a hung shared filesystem must not keep the job); then exit
  EXIT_PEER_LOST at once (os._exit: jax's shutdown barrier would wait for the peer that is
  gone)."""
  import jax
  names = '; '.join(('another process of the job' if p is None else
                     f'process {p} of {jax.process_count()}') + f' stopped ({why})'
                    for p, why in lost)
  step, ckpt = progress['step'], progress['checkpoint']
  resume = (f'the same command resumes from checkpoint {ckpt}' if ckpt is not None else
            'no checkpoint was saved yet: the same command starts over')
  cleanup = threading.Thread(target=_run_cleanups, daemon=True)
  cleanup.start()
  cleanup.join(CLEANUP_S)
  logging.shutdown()
  sys.stderr.write(f'bsd_jax: error: {names}, at step {step}; this job cannot go on without it: '
                   f'{resume} (exit status {EXIT_PEER_LOST})\n')
  sys.stderr.flush()
  sys.stdout.flush()
  os._exit(EXIT_PEER_LOST)
