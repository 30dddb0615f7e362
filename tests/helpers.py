"""Shared test fixtures: configs by path, checkpoint reading, subprocess runs of the CLI."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
from ml_collections import config_flags

from bsd_jax import data, experiment, sharding, step

N, K = 8 * 37, 10  # 296 table rows: a shape that cannot be confused with another in the HLO
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name='smoke.py'):
  """A configs/ file as a locked ConfigDict (as the CLI would load it)."""
  return config_flags.config_flags._ConfigFileParser('config').parse(
      os.path.join(REPO, 'configs', name))


def override(config, overrides: dict):
  """Sets config keys given by dotted name ({'data.root': ..., 'num_epochs': 2}); returns it."""
  for key, value in overrides.items():
    node, _, leaf = key.rpartition('.')
    (config[node] if node else config)[leaf] = value
  return config


def stop_after_step(monkeypatch, step_now: int):
  """Runs started until monkeypatch.undo() stop as SIGTERM would stop them, right after
  `step_now` (the loop's next stop check from there)."""
  import signal

  from bsd_jax import periodic

  class StopAfterStep(periodic.StopRequest):
    def agreed(self, now, every):
      if now == step_now:
        self.signum = signal.SIGTERM
      return super().agreed(now, every)

  monkeypatch.setattr(periodic, 'StopRequest', StopAfterStep)


def read_checkpoint_state(workdir, step=None):
  """The TrainState leaves of a checkpoint as numpy arrays (any device count), and its step."""
  directory = os.path.join(workdir, 'checkpoints')
  if step is None:
    step = max(int(d) for d in os.listdir(directory) if d.isdigit())
  path = os.path.join(directory, str(step), 'state')
  with ocp.PyTreeCheckpointer() as ckptr:
    meta = ckptr.metadata(path)
    meta = getattr(meta, 'item_metadata', meta)  # orbax >= 0.11.10 wraps the tree
    meta = getattr(meta, 'tree', meta)
    restore_args = ocp.checkpoint_utils.construct_restore_args(
        jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), meta))
    state = ckptr.restore(path, args=ocp.args.PyTreeRestore(restore_args=restore_args))
  return state, step


def run_cli(args, module='bsd_jax.main', **kwargs):
  """python -m MODULE ARGS from the repo root, on one CPU device."""
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.Popen([sys.executable, '-m', module] + list(args), cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def step_setup(devices, method_name='bsd', n=N, supcon=None, table_dtype='float32', top_k=0,
               num_classes=K, bsd_gamma=None, rest_spread='uniform'):
  """Everything a train step needs, built by experiment.build as training builds it, on a mesh
  over `devices`: random 16x16 images of `num_classes` classes, batch 16 (`supcon`:
  config.supcon values; the per-sample table stored in `table_dtype`; `top_k`, `rest_spread`:
  config.bsd's).
  Returns (state, jitted train step, device data, host batch, device batch); the batch has two
  padding samples (mask 0)."""
  config = load_config("smoke.py")
  config.method, config.batch_size, config.table_dtype = method_name, 16, table_dtype
  config.bsd.top_k, config.bsd.gamma, config.bsd.rest_spread = top_k, bsd_gamma, rest_spread
  for key, value in (supcon or {}).items():
    config.supcon[key] = value
  config.data.augment = True
  rng = np.random.default_rng(1)
  labels = rng.integers(0, num_classes, n).astype(np.int32)
  images = rng.integers(0, 256, (n, 16, 16, 3)).astype(np.uint8)
  ds = data.Dataset('helpers', images, labels, images[:16], labels[:16], num_classes)
  mesh = sharding.make_mesh(devices)
  exp = experiment.build(config, ds, mesh)
  state = jax.jit(exp.init_state, out_shardings=exp.state_shardings)(jax.random.PRNGKey(0),
                                                                      exp.padded_labels)
  train_step = step.jit_train_step(config, exp)
  data_dev = {'labels': jax.device_put(labels, sharding.replicated(mesh)),
              'images': sharding.put_rows(images, None, n, mesh)}  # split by rows, as in training
  batch = {'index': rng.choice(n, 16, replace=n < 16).astype(np.int32),
           'mask': np.array([1.0] * 14 + [0.0] * 2, np.float32)}
  batch_dev = jax.device_put(batch, sharding.batch_sharded(mesh))
  return state, train_step, data_dev, batch, batch_dev


def read_metrics(workdir, split=None):
  """The records of <workdir>/metrics.jsonl (of one split, if given)."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f if line.strip()]
  return [r for r in records if split is None or r['split'] == split]


SMOKE = ['--config', 'configs/smoke.py']


def run_smoke(workdir, *extra, expect=0):
  """The smoke config through the CLI to its end; asserts the exit status, returns the output."""
  proc = run_cli(SMOKE + ['--workdir', str(workdir)] + list(extra))
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == expect, out
  return out


def run_smoke_until(workdir, marker, sig, *extra):
  """Start the smoke config through the CLI, send `sig` when a line contains `marker`; return
  (exit status, output)."""
  proc = run_cli(SMOKE + ['--workdir', str(workdir)] + list(extra))
  seen = []
  for line in proc.stdout:
    seen.append(line)
    if marker in line:
      proc.send_signal(sig)
      break
  out, _ = proc.communicate(timeout=300)
  return proc.returncode, ''.join(seen) + out


def read_events(workdir):
  """{tag: [(step, value), ...]} of the TensorBoard scalars in `workdir`, read with
  TensorBoard's own reader."""
  from tensorboard.backend.event_processing import event_accumulator
  acc = event_accumulator.EventAccumulator(str(workdir),
                                           size_guidance={event_accumulator.SCALARS: 0})
  acc.Reload()
  return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()['scalars']}


def events_of_metrics(workdir):
  """What read_events should give for the records of metrics.jsonl: {tag: [(step, float32)]}."""
  out = {}
  for r in read_metrics(workdir):
    for key, value in r.items():
      if key not in ('step', 'epoch', 'split'):
        out.setdefault(f"{r['split']}/{key}", []).append((r['step'], float(np.float32(value))))
  return out
