"""One job at a time in a run directory: its lock.

The lock is <workdir>/lock.json, created exclusively by the job that trains there and naming it
by a token (host, boot id, PID namespace, pid and its start time, a random part). A second start
refuses at once, naming the holder. A lock whose job this host can tell is gone (holder_alive)
is taken over with a warning, one job at a time; a lock from another host, or of a pid in
another PID namespace, is refused with the instruction to remove it if that job is dead. A job
removes the lock at its end only if it still names it. Reading commands
(evaluate, results_table) take no lock. In a multi-process job process 0 holds it for all."""
import json
import logging
import os
import secrets
import socket
import time

from bsd_jax.errors import UserError

NAME = 'lock.json'
# A takeover of a dead job's lock holds this file (created exclusively) while it checks and
# removes that lock; one older than this many seconds was left by a crash and is removed.
TAKEOVER_STALE_S = 30


def _read(path, how=None):
  """The file's text, stripped (or `how(path)`: os.readlink); None where it cannot be read."""
  try:
    if how is not None:
      return how(path)
    with open(path) as f:
      return f.read().strip()
  except OSError:
    return None


def _pid_start(pid: int):
  """The start time of process `pid` in clock ticks since boot (/proc/<pid>/stat field 22), or
  None where it cannot be read (not Linux, or not a process this namespace sees)."""
  stat = _read(f'/proc/{pid}/stat')
  if stat is None:
    return None
  return int(stat.rsplit(')', 1)[1].split()[19])  # after the command name, field 22 is at 19


def job_token() -> dict:
  """What identifies this job in its lock: the host name, the kernel's boot id, the PID
  namespace, the pid and its start time, a random part, and a readable start date."""
  return {'host': socket.gethostname(), 'boot_id': _read('/proc/sys/kernel/random/boot_id'),
          'pid_ns': _read('/proc/self/ns/pid', os.readlink), 'pid': os.getpid(),
          'pid_start': _pid_start(os.getpid()), 'token': secrets.token_hex(8),
          'started': time.strftime('%Y-%m-%d %H:%M:%S %Z')}


def holder_alive(holder: dict, me: dict) -> bool:
  """Whether the job of a lock on this host name may still run. Dead only when this machine
  can tell: another boot id (the host restarted since), or the same PID namespace where its pid
  is gone or now belongs to a process started at another time. A pid in another namespace (a
  container sharing the host name) is not ours to see: alive. Locks of earlier versions name
  only host and pid: dead when that pid is gone here."""
  pid = int(holder.get('pid', -1))
  if holder.get('boot_id') and me['boot_id'] and holder['boot_id'] != me['boot_id']:
    return False
  if holder.get('pid_ns') and me['pid_ns'] and holder['pid_ns'] != me['pid_ns']:
    return True
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process
    pass
  if holder.get('pid_start') is not None:
    start = _pid_start(pid)
    return start is None or start == holder['pid_start']
  return True


def _remove_if_token(path, token):
  """Remove `path` if it (still) holds `token`."""
  try:
    with open(path) as f:
      if json.load(f).get('token') == token:
        os.remove(path)
  except (OSError, ValueError):
    pass


class WorkdirLock:
  """acquire() / release(). `_step(name)` marks the points where jobs starting at once
  interleave (tests/test_workdir_lock.py drives them)."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, NAME)
    self.held = False
    self.me = None

  def _step(self, name):
    """Nothing; a test overrides it to interleave several starters."""

  def _holder(self):
    try:
      with open(self.path) as f:
        return json.load(f)
    except FileNotFoundError:
      return {}
    except (OSError, ValueError):
      return None  # being written, or torn: treated as held by an unknown job

  def _create(self, path, me) -> bool:
    """Create `path` with its content in one step (a hard link of a complete temporary file:
    a crash never leaves an empty lock); False when it exists."""
    tmp = f'{self.path}.{me["token"]}.tmp'
    with open(tmp, 'w') as f:
      json.dump(me, f)
    try:
      os.link(tmp, path)
      return True
    except FileExistsError:
      return False
    finally:
      os.remove(tmp)

  def _take_over(self, dead, me) -> None:
    """Remove the lock of the dead job `dead`, if it is still the lock there. Under the
    takeover file, so that no two jobs check and remove at once: a lock removed is always the
    one found dead, never a live job's that replaced it."""
    guard = self.path + '.takeover'
    if not self._create(guard, dict(me, at=time.time())):
      try:
        with open(guard) as f:
          other = json.load(f)
        # Left by a job that crashed inside its takeover? Its starters share this host's clock
        # (only a job on the holder's host takes over).
        if time.time() - float(other.get('at', 0)) > TAKEOVER_STALE_S:
          _remove_if_token(guard, other.get('token'))
      except (OSError, ValueError):
        pass
      time.sleep(0.05)
      return
    try:
      self._step('takeover')
      if self._holder() == dead:
        os.remove(self.path)
        logging.warning('%s: taking over the lock of process %s (started %s), which is gone',
                        self.path, dead.get('pid'), dead.get('started'))
    finally:
      _remove_if_token(guard, me['token'])

  def acquire(self):
    """Create the lock or raise UserError naming its holder (the workdir must exist)."""
    me = job_token()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
      self._step('create')
      if self._create(self.path, me):
        self.held, self.me = True, me
        return
      holder = self._holder()
      if holder == {}:
        continue  # released meanwhile
      if holder is None:
        raise UserError(f'{self.path}: cannot read this lock of another job; if no job runs in '
                        'this workdir, remove the file')
      same_host = holder.get('host') == me['host']
      if same_host and not holder_alive(holder, me):
        self._step('found dead')
        self._take_over(holder, me)
        continue
      where = (f'process {holder.get("pid")} on this host' if same_host
               else f'process {holder.get("pid")} on host {holder.get("host")}')
      raise UserError(f'{self.path}: this workdir is in use by {where}, started '
                      f'{holder.get("started")}; if that job is dead, remove the file')
    raise UserError(f'{self.path}: could not take the lock (other jobs are starting here)')

  def release(self):
    """Remove the lock if it still names this job (nothing when another job's is there)."""
    if self.held:
      holder = self._holder()
      if holder and holder.get('token') == self.me['token']:
        try:
          os.remove(self.path)
        except FileNotFoundError:
          pass
      else:
        logging.warning('%s no longer names this job (%s): left as it is', self.path,
                        'removed' if holder == {} else f'process {(holder or {}).get("pid")}')
      self.held = False
