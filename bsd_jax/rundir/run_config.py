"""A run directory's config.json: a usable path before training touches it, the config of the
run it holds (written once, atomically; checked at every restart), and that config read back as
the run was made, also from directories written by earlier versions (`load_run_config`)."""
import json
import logging
import os

from ml_collections import config_dict

from bsd_jax.errors import UserError
from bsd_jax.rundir import resume_check
from bsd_jax.rundir.resume_check import ABSENT_MEANS

CONFIG = 'config.json'


def load_run_config(workdir):
  """The locked config of a run directory (its config.json), as the run was made."""
  path = os.path.join(workdir, CONFIG)
  if not os.path.exists(path):
    raise UserError(f'{path} is missing: {workdir} is not a bsd_jax run directory')
  try:
    with open(path) as f:
      saved = json.load(f)
  except ValueError as e:
    raise UserError(f'{path} cannot be read ({e}): restore it, or use another --workdir') from None
  if isinstance(saved.get('model'), str):  # written before config.model became a group
    saved['model'] = {'name': saved.pop('model'),
                      'cnn_widths': saved.pop('cnn_widths', [32, 64, 128])}
  for key, value in ABSENT_MEANS.items():
    *sections, leaf = key.split('.')
    node = saved
    for section in sections:
      node = node.setdefault(section, {})
      if not isinstance(node, dict):
        raise UserError(f'{path}: {section!r} is not a section (a config.json edited by hand?); '
                        'restore it, or use another --workdir')
    node.setdefault(leaf, value)
  config = config_dict.ConfigDict(saved)
  config.lock()
  return config


def check_path(workdir: str):
  """UserError when `workdir` is a file, or it or its nearest existing parent is not writable."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f'--workdir {workdir} is a file, not a directory')
  probe = os.path.abspath(workdir)
  while not os.path.exists(probe):
    probe = os.path.dirname(probe)
  if not os.access(probe, os.W_OK | os.X_OK):
    raise UserError(f'--workdir {workdir}: {probe} is not writable')


def check_config(workdir: str, config, restore: bool = True):
  """UserError when <workdir>/config.json describes another run (resume_check). Without
  config.json, a workdir with checkpoints is checked against the config its newest checkpoint
  saved (and config.json written back from it when `restore`); one whose checkpoints saved none
  (earlier versions) is refused: its run cannot be told."""
  path = os.path.join(workdir, CONFIG)
  if os.path.exists(path):
    resume_check.check(json.loads(load_run_config(workdir).to_json()), config, path)
    return
  steps = _checkpoint_steps(workdir)
  if not steps:
    return
  for step in reversed(steps):
    meta = os.path.join(workdir, 'checkpoints', str(step), 'meta', 'metadata')
    try:
      with open(meta) as f:
        saved = json.load(f).get('config')
    except (OSError, ValueError):
      continue
    if saved is not None:
      resume_check.check(saved, config, f'{meta} (the config of checkpoint {step})')
      if restore:
        _write_json(path, json.dumps(saved, indent=2))
        logging.warning('%s was missing: restored from the copy saved with checkpoint %d',
                        path, step)
      return
  raise UserError(f'{path} is missing and the checkpoints in {workdir} (steps {steps}) were '
                  'saved without a copy of it, so this config cannot be checked against the run '
                  'they hold: restore config.json, or use another --workdir')


def _checkpoint_steps(workdir):
  try:
    names = os.listdir(os.path.join(workdir, 'checkpoints'))
  except OSError:
    return []
  return sorted(int(n) for n in names if n.isdigit())


def _write_json(path, text):
  tmp = f'{path}.tmp{os.getpid()}'
  try:
    with open(tmp, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except OSError as e:
    raise UserError(f'{path}: cannot be written ({e.strerror})') from None


def write_config(workdir: str, config):
  """config.json of the first start (kept afterwards), written atomically."""
  path = os.path.join(workdir, CONFIG)
  if not os.path.exists(path):
    _write_json(path, config.to_json(indent=2))
