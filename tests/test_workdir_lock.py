"""The workdir lock (bsd_jax/rundir/lock.py): exactly one of several jobs starting at once holds it,
also when they interleave inside a takeover of a dead job's lock; a job releases only its own
lock; whose lock is dead is decided by boot id, PID namespace, pid and its start time."""
import json
import os
import subprocess
import sys
import threading

import pytest

from bsd_jax.rundir import lock as workdir_lib
from bsd_jax.errors import UserError


def _gone_pid():
  proc = subprocess.Popen([sys.executable, '-c', 'pass'])
  proc.wait()
  return proc.pid


def _write_lock(directory, **fields):
  holder = dict(workdir_lib.job_token(), **fields)
  with open(os.path.join(directory, 'lock.json'), 'w') as f:
    json.dump(holder, f)
  return holder


def _lock_file(directory):
  with open(os.path.join(directory, 'lock.json')) as f:
    return json.load(f)


class _Staged(workdir_lib.WorkdirLock):
  """A lock whose steps wait for the test: at step `name`, set `reached[name]`, then wait for
  `proceed[name]`."""

  def __init__(self, directory, reached=None, proceed=None):
    super().__init__(directory)
    self.reached, self.proceed = reached or {}, proceed or {}

  def _step(self, name):
    if name in self.reached:
      self.reached.pop(name).set()
    if name in self.proceed:
      assert self.proceed.pop(name).wait(20), f'step {name} waited too long'


def test_three_starters_inside_a_takeover_leave_exactly_one_holder(tmp_path):
  """A and B both find a dead job's lock; A takes it over and holds the lock; B enters its
  takeover (which the old rename-and-put-back lost A's lock in) while C starts."""
  directory = str(tmp_path)
  dead = _write_lock(directory, pid=_gone_pid(), pid_start=1)
  ev = {name: threading.Event() for name in ('a_found', 'b_found', 'a_done', 'b_in', 'c_done')}
  a = _Staged(directory, reached={'found dead': ev['a_found']},
              proceed={'found dead': ev['b_found']})
  b = _Staged(directory, reached={'found dead': ev['b_found'], 'takeover': ev['b_in']},
              proceed={'found dead': ev['a_done'], 'takeover': ev['c_done']})
  c = workdir_lib.WorkdirLock(directory)
  outcome = {}

  def start(name, lock, done=None):
    try:
      lock.acquire()
      outcome[name] = 'held'
    except UserError as e:
      outcome[name] = str(e)
    finally:
      if done is not None:
        done.set()

  threads = [threading.Thread(target=start, args=('a', a, ev['a_done'])),
             threading.Thread(target=start, args=('b', b))]
  for t in threads:
    t.start()
  assert ev['b_in'].wait(20)  # B is inside its takeover, holding the takeover file
  start('c', c, ev['c_done'])
  for t in threads:
    t.join(20)
  assert outcome['a'] == 'held'
  assert 'in use by process' in outcome['b'] and 'in use by process' in outcome['c']
  assert [a.held, b.held, c.held] == [True, False, False]
  assert _lock_file(directory)['token'] == a.me['token'] != dead['token']
  a.release()
  assert not os.path.exists(os.path.join(directory, 'lock.json'))
  assert not os.path.exists(os.path.join(directory, 'lock.json.takeover'))


def test_a_release_by_a_job_that_no_longer_holds_the_lock_removes_nothing(tmp_path):
  directory = str(tmp_path)
  first = workdir_lib.WorkdirLock(directory)
  first.acquire()
  other = _write_lock(directory)  # another job's lock took its place
  first.release()
  assert _lock_file(directory)['token'] == other['token']
  assert not first.held


@pytest.mark.parametrize('fields,taken_over', [
    ({'pid': 'gone'}, True),                               # the pid is gone here
    ({'pid': 'me', 'pid_start': 1}, True),                 # the pid now belongs to another start
    ({'pid': 'gone', 'boot_id': 'another-boot'}, True),    # the host restarted since
    ({'pid': 'gone', 'pid_ns': 'pid:[1]'}, False),         # another PID namespace: cannot see
    ({'pid': 'me'}, False),                                # alive
    ({'pid': 'gone', 'host': 'node-17'}, False),           # another host: cannot see
])
def test_which_locks_are_taken_over(tmp_path, fields, taken_over):
  directory = str(tmp_path)
  pid = {'gone': _gone_pid(), 'me': os.getpid()}[fields.pop('pid')]
  _write_lock(directory, pid=pid, **fields)
  lock = workdir_lib.WorkdirLock(directory)
  if taken_over:
    lock.acquire()
    assert _lock_file(directory)['token'] == lock.me['token']
  else:
    with pytest.raises(UserError, match=f'in use by process {pid}'):
      lock.acquire()


def test_a_lock_of_an_earlier_version_naming_a_gone_pid_is_taken_over(tmp_path):
  with open(tmp_path / 'lock.json', 'w') as f:
    json.dump({'host': workdir_lib.job_token()['host'], 'pid': _gone_pid(), 'started': 'then'}, f)
  lock = workdir_lib.WorkdirLock(str(tmp_path))
  lock.acquire()
  assert lock.held and _lock_file(str(tmp_path))['token'] == lock.me['token']
