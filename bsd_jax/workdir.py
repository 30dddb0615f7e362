"""The run directory before training touches it: a usable path, one job at a time (its lock),
and config.json (the run it holds; written once, atomically).

The lock is <workdir>/lock.json, created exclusively by the job that trains there and naming it
(host, pid, start time). A second start refuses at once, naming the holder. A lock whose process
is gone (same host) is taken over with a warning; a lock from another host is refused with the
instruction to remove it if that job is dead (this host cannot tell). Reading commands
(evaluate, results_table) take no lock. In a multi-process job process 0 holds it for all.
"""
import json
import logging
import os
import socket
import time

from bsd_jax import resume_check
from bsd_jax.errors import UserError

CONFIG = 'config.json'


def check_path(workdir: str):
  """UserError when `workdir` is a file, or it or its nearest existing parent is not writable."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f'--workdir {workdir} is a file, not a directory')
  probe = os.path.abspath(workdir)
  while not os.path.exists(probe):
    probe = os.path.dirname(probe)
  if not os.access(probe, os.W_OK | os.X_OK):
    raise UserError(f'--workdir {workdir}: {probe} is not writable')


def check_config(workdir: str, config):
  """UserError when <workdir>/config.json describes another run (resume_check)."""
  path = os.path.join(workdir, CONFIG)
  if os.path.exists(path):
    from bsd_jax.evaluation.common import load_run_config  # reads earlier versions' files too
    resume_check.check(json.loads(load_run_config(workdir).to_json()), config, path)


def write_config(workdir: str, config):
  """config.json of the first start (kept afterwards), written atomically."""
  path = os.path.join(workdir, CONFIG)
  if not os.path.exists(path):
    tmp = f'{path}.tmp{os.getpid()}'
    try:
      with open(tmp, 'w') as f:
        f.write(config.to_json(indent=2))
        f.flush()
        os.fsync(f.fileno())
      os.replace(tmp, path)
    except OSError as e:
      raise UserError(f'{path}: cannot be written ({e.strerror})') from None

NAME = 'lock.json'


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process
    return True
  return True


class WorkdirLock:
  """acquire() / release(); also a context manager."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, NAME)
    self.held = False

  def _holder(self):
    try:
      with open(self.path) as f:
        return json.load(f)
    except (OSError, ValueError):
      return None  # being written, or torn: treated as held by an unknown job

  def _create(self, me) -> bool:
    """Create the lock with its content in one step (a hard link of a complete temporary file:
    a crash never leaves an empty lock); False when it exists."""
    tmp = f'{self.path}.{me["host"]}.{me["pid"]}.tmp'
    with open(tmp, 'w') as f:
      json.dump(me, f)
    try:
      os.link(tmp, self.path)
      return True
    except FileExistsError:
      return False
    finally:
      os.remove(tmp)

  def acquire(self):
    """Create the lock or raise UserError naming its holder (the workdir must exist)."""
    me = {'host': socket.gethostname(), 'pid': os.getpid(),
          'started': time.strftime('%Y-%m-%d %H:%M:%S %Z')}
    for _ in range(3):
      if self._create(me):
        self.held = True
        return
      holder = self._holder()
      if holder is None:
        raise UserError(f'{self.path}: cannot read this lock of another job; if no job runs in '
                        'this workdir, remove the file')
      same_host = holder.get('host') == me['host']
      if same_host and not _alive(int(holder.get('pid', -1))):
        # Take it over by renaming it away: of two jobs doing so at once, one rename succeeds.
        stale = f'{self.path}.stale.{me["pid"]}'
        try:
          os.rename(self.path, stale)
        except FileNotFoundError:
          continue  # another job took it over first; try again
        with open(stale) as f:
          taken = json.load(f)
        if taken != holder:  # the new lock of a job that took it over first: put it back
          try:
            os.link(stale, self.path)
          except FileExistsError:
            pass
          os.remove(stale)
          continue
        os.remove(stale)
        logging.warning('%s: taking over the lock of process %s (started %s), which is gone',
                        self.path, holder.get('pid'), holder.get('started'))
        continue
      where = (f'process {holder.get("pid")} on this host' if same_host
               else f'process {holder.get("pid")} on host {holder.get("host")}')
      raise UserError(f'{self.path}: this workdir is in use by {where}, started '
                      f'{holder.get("started")}; if that job is dead, remove the file')
    raise UserError(f'{self.path}: could not take the lock (other jobs are starting here)')

  def release(self):
    if self.held:
      try:
        os.remove(self.path)
      except FileNotFoundError:
        pass
      self.held = False
