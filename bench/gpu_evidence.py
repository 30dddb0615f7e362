"""Every GPU figure bsd_jax needs, from one short call: writes summary.json and summary.md.

    bash bench/gpu_evidence.sh OUT              # on one GPU, under 9 minutes in all
    bash bench/gpu_evidence.sh --tiny OUT       # the same pipeline on CPU, small, about 30 s

Stages, each in its own process (so that JAX and PyTorch each find the GPU free) with a time
budget, its output in OUT/logs/<stage>.log:

1. versions: python, jax, jaxlib, flax, optax, orbax-checkpoint, torch (+ its CUDA), the
   platform's version (CUDA) and the device's name;
2. step_time_<B>: bench/step_time.py for CIFAR ResNet-18 in bfloat16, CE and BSD, with --torch
   (when importable) and --peak_tflops, at batch 128 and 512: images/s of JAX and PyTorch,
   JAX/PyTorch, BSD/CE, MFU (when the PyTorch side fails or runs out of time, JAX alone
   again: step_time_<B>_jax_only);
3. loop_overhead_k1, loop_overhead_k8: bench/loop_overhead.py (the loop against the bare step)
   with 1 and 8 steps per call (config.steps_per_call);
4. train: ResNet-18 with BSD on the CIFAR-10 JPEG set (--data: the
   cifar10-jpeg.tar.gz tarball or its unpacked folder) for --epochs epochs, or fewer when its
   time runs out (then it is stopped with SIGTERM, which checkpoints and ends the run cleanly):
   wall time, images/s (median of the progress lines) and the last test top-1 and ECE.

summary.json and summary.md are rewritten after every stage, so a call cut short still leaves
what it measured. A failed stage is recorded with its log and the next stage runs; the exit
status is 1 when any stage failed, 2 for bad arguments (before any work). --tiny swaps in the
smoke CNN, small batches and sizes, and an image folder of 20 train / 10 test images per class
cut from the same data.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(os.path.dirname(REPO), 'shared', 'data', 'cifar10-jpeg',
                            'cifar10-jpeg.tar.gz')
H200_BF16_TFLOPS = 989.0  # dense bf16 matrix products, H200 SXM (NVIDIA's data sheet)
TRAIN_RESERVE_S = 150.0   # kept for the real run, which comes last

VERSIONS = r'''
import importlib.metadata as md, json, platform, jax, jax.extend
def version(name):
  try:
    return md.version(name)
  except md.PackageNotFoundError:
    return None
v = {'python': platform.python_version()}
for name in ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'torch'):
  v[name.replace('-', '_')] = version(name)
d = jax.devices()[0]  # before torch is imported: the GPU goes to JAX first
v['platform'] = d.platform
v['platform_version'] = jax.extend.backend.get_backend().platform_version.strip()
v['device'] = d.device_kind
v['device_count'] = jax.device_count()
try:
  import torch
  v['torch_cuda'] = torch.version.cuda
except ImportError:
  v['torch_cuda'] = None
print('VERSIONS ' + json.dumps(v))
'''


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('out', help='directory for summary.json, summary.md, logs/ and the run')
  p.add_argument('--tiny', action='store_true', help='the CPU rehearsal: small and quick')
  p.add_argument('--data', default=DEFAULT_DATA,
                 help='CIFAR-10 JPEG: cifar10-jpeg.tar.gz or its unpacked cifar10-jpeg folder')
  p.add_argument('--epochs', type=int, default=30, help='epochs of the real run (at most)')
  p.add_argument('--budget_s', type=float, default=None,
                 help='seconds for all stages (default: 510 on a GPU, 300 with --tiny); the last '
                 f'{TRAIN_RESERVE_S:.0f} are kept for the real run')
  p.add_argument('--peak_tflops', type=float, default=H200_BF16_TFLOPS,
                 help='the device\'s peak, for MFU (default: an H200 SXM\'s dense bf16, 989)')
  return p.parse_args(argv)


def _has_torch():
  return subprocess.run([sys.executable, '-c', 'import torch'], capture_output=True).returncode == 0


class Stages:
  """Runs each stage as a subprocess with its share of the budget; keeps the summary. On a GPU
  every stage runs with JAX_PLATFORMS=cuda: a JAX that cannot use the GPU fails the stage
  instead of measuring the CPU."""

  def __init__(self, out, budget_s, summary, env):
    self.out, self.deadline, self.summary = out, time.monotonic() + budget_s, summary
    self.env = env
    os.makedirs(os.path.join(out, 'logs'), exist_ok=True)

  def left(self, reserve=0.0):
    return self.deadline - time.monotonic() - reserve

  def run(self, name, argv, timeout_s, env=None, stop_signal=signal.SIGKILL, reserve=0.0):
    """(exit status, output) of argv, stopped with `stop_signal` after timeout_s (at most the
    budget left but `reserve`; SIGKILL 30 s later if it is still there); the status 'timeout'
    is recorded when it was stopped."""
    timeout_s = max(min(timeout_s, self.left(reserve)), 1.0)
    log_path = os.path.join(self.out, 'logs', f'{name}.log')
    start = time.monotonic()
    with open(log_path, 'w') as log:
      # bsd_jax from this checkout, installed or not (a GPU machine may only have wheels).
      path = os.pathsep.join(p for p in (REPO, os.environ.get('PYTHONPATH')) if p)
      proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, PYTHONPATH=path, **self.env, **(env or {})))
      try:
        rc = proc.wait(timeout=timeout_s)
        status = 'ok' if rc == 0 else f'failed (exit status {rc})'
      except subprocess.TimeoutExpired:
        proc.send_signal(stop_signal)
        try:
          rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
          proc.kill()
          rc = proc.wait()
        status = 'timeout'
    seconds = time.monotonic() - start
    self.summary['stages'][name] = {'status': status, 'seconds': round(seconds, 1),
                                    'log': os.path.relpath(log_path, self.out)}
    print(f'{name}: {status} in {seconds:.0f} s (log: {log_path})', flush=True)
    with open(log_path) as f:
      return rc, f.read()

  def record(self, name, fn):
    """fn() -> the stage's figures; an exception marks the stage failed."""
    try:
      self.summary[name] = fn()
    except Exception as e:  # a stage that failed must not cost the others their figures
      self.summary['stages'].setdefault(name, {})['status'] = f'failed: {e}'
      print(f'{name}: failed: {e}', flush=True)
    write_summary(self.out, self.summary)


def versions(stages):
  _, out = stages.run('versions', [sys.executable, '-c', VERSIONS], 90)
  return json.loads(re.search(r'^VERSIONS (.*)$', out, re.M).group(1))


def step_time(stages, args, batch, torch):
  json_path = os.path.join(args.out, f'step_time_{batch}.json')
  if args.tiny:
    size = ['--model', 'cnn', '--image_size', '8', '--num_train', '512', '--steps', '3',
            '--rounds', '2', '--warmup', '1']
  else:
    size = ['--model', 'resnet18', '--compute_dtype', 'bfloat16', '--num_train', '50000',
            '--steps', '30', '--rounds', '5']
  argv = [sys.executable, 'bench/step_time.py', '--batch_size', str(batch), '--num_classes',
          '10', '--methods', 'ce,bsd', '--peak_tflops', str(args.peak_tflops), '--json',
          json_path] + size
  name = f'step_time_{batch}'
  # JAX takes 75% of the GPU's memory at start by default; leave PyTorch its share.
  rc, _ = stages.run(name, argv + (['--torch'] if torch else []), 100 if args.tiny else 150,
                     env={'XLA_PYTHON_CLIENT_MEM_FRACTION': '0.45'}, reserve=TRAIN_RESERVE_S)
  if rc != 0 and torch:  # the PyTorch side failed or was too slow: keep JAX's figures
    torch = False
    rc, _ = stages.run(name + '_jax_only', argv, 100 if args.tiny else 90,
                       reserve=TRAIN_RESERVE_S)
  if rc != 0:
    raise RuntimeError(f'bench/step_time.py exit status {rc}')
  with open(json_path) as f:
    r = json.load(f)
  m = r['methods']
  out = {'batch_size': batch, 'device': r['device_kind'], 'model': r['model'],
         'compute_dtype': r['compute_dtype'],
         'jax_ce_images_per_s': m['ce']['images_per_s'],
         'jax_bsd_images_per_s': m['bsd']['images_per_s'],
         'bsd_over_ce_step_time': r['bsd/ce'],
         'mfu_ce': m['ce'].get('mfu'), 'mfu_bsd': m['bsd'].get('mfu'),
         'torch_ce_images_per_s': None, 'torch_bsd_images_per_s': None,
         'jax_over_torch_speed_ce': None, 'jax_over_torch_speed_bsd': None}
  if torch:
    out.update(torch_ce_images_per_s=m['torch_ce']['images_per_s'],
               torch_bsd_images_per_s=m['torch_bsd']['images_per_s'],
               jax_over_torch_speed_ce=r['jax_over_torch_speed_ce'],
               jax_over_torch_speed_bsd=r['jax_over_torch_speed_bsd'])
  return out


def loop_overhead(stages, args, k):
  size = (['--num_train', '512', '--epochs', '2', '--steps', '32', '--rounds', '1']
          if args.tiny else [])
  rc, out = stages.run(f'loop_overhead_k{k}', [sys.executable, 'bench/loop_overhead.py',
                                               '--steps_per_call', str(k)] + size,
                       90 if args.tiny else 70, reserve=TRAIN_RESERVE_S)
  if rc != 0:
    raise RuntimeError(f'bench/loop_overhead.py exit status {rc}')
  return {'steps_per_call': k,
          'device': re.search(r'^\d+ (\S+) device\(s\)', out, re.M).group(1),
          'loop_steps_per_s': float(re.search(r'^loop: ([\d.]+)', out, re.M).group(1)),
          'bare_step_steps_per_s': float(re.search(r'^bare step: ([\d.]+)', out, re.M).group(1)),
          'loop_over_step_time': float(re.search(r'^loop/step time ratio: ([\d.]+)$', out,
                                                 re.M).group(1))}


def unpack(data, dest, per_class=None):
  """The CIFAR-10 JPEG folder at `data` (a folder) or unpacked from it (the tarball) into
  `dest`; `per_class` = (train, test): only the first images of each class."""
  if os.path.isdir(data) and per_class is None:
    return data
  if os.path.isdir(dest):
    shutil.rmtree(dest)
  keep = (lambda name: True) if per_class is None else (
      lambda name: int(os.path.splitext(os.path.basename(name))[0]) <
      per_class['/test/' in f'/{name}'])
  if os.path.isdir(data):
    for base, _, files in os.walk(data):
      for f in files:
        rel = os.path.relpath(os.path.join(base, f), data)
        if f.endswith('.jpg') and keep(rel):
          os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
          shutil.copy(os.path.join(base, f), os.path.join(dest, rel))
    return dest
  with tarfile.open(data) as tar:
    for member in tar:
      parts = member.name.split('/')
      if member.isfile() and member.name.endswith('.jpg') and keep('/'.join(parts[1:])):
        member.name = '/'.join(parts[1:])  # drop the top folder (cifar10-jpeg/)
        if hasattr(tarfile, 'data_filter'):  # Python >= 3.11.4: refuse odd members
          tar.extract(member, dest, filter='data')
        else:
          tar.extract(member, dest)
  return dest


def train(stages, args):
  if not os.path.exists(args.data):
    raise RuntimeError(f'--data {args.data}: no such file or folder (the CIFAR-10 JPEG set)')
  root = unpack(args.data, os.path.join(args.out, 'cifar10-jpeg'),
                per_class=(20, 10) if args.tiny else None)
  workdir = os.path.join(args.out, 'run')
  if os.path.exists(workdir):
    shutil.rmtree(workdir)
  epochs = 2 if args.tiny else args.epochs
  flags = ['--config', 'configs/cifar10.py', '--workdir', workdir,
           '--config.data.source=folder', f'--config.data.root={root}',
           f'--config.num_epochs={epochs}', '--config.checkpoint_every_epochs=10',
           '--config.log_every_steps=50']
  if args.tiny:
    flags += ['--config.model.name=cnn', '--config.batch_size=40', '--config.eval_batch_size=50',
              '--config.log_every_steps=2']
  else:
    flags += ['--config.compute_dtype=bfloat16']
  start = time.monotonic()
  # Stopped when the budget runs out: SIGTERM saves a checkpoint and ends the run at once.
  rc, out = stages.run('train', [sys.executable, '-m', 'bsd_jax.main'] + flags,
                       stages.left() - 15, stop_signal=signal.SIGTERM)
  wall = time.monotonic() - start
  if rc not in (0, 128 + signal.SIGTERM):
    raise RuntimeError(f'bsd_jax.main exit status {rc}')
  from bsd_jax.rundir.metric_log import MetricLog
  tests = [r for r in MetricLog(workdir, enabled=False).read() if r['split'] == 'test']
  if not tests:
    raise RuntimeError('the run ended before its first test evaluation')
  rates = [float(x) for x in re.findall(r'steps/s ([\d.]+) img/s', out)]
  return {'dataset': 'CIFAR-10 (JPEG q75)', 'model': 'cnn' if args.tiny else 'resnet18',
          'device': re.search(r'\d+ devices \((\w+)\)', out).group(1),
          'method': 'bsd', 'epochs_planned': epochs, 'epochs_done': tests[-1]['epoch'],
          'stopped_early': rc != 0, 'wall_s': round(wall, 1),
          'images_per_s': statistics.median(rates) if rates else None,
          'test_accuracy': tests[-1]['accuracy'], 'test_ece': tests[-1]['ece']}


def _fmt(v):
  if isinstance(v, float):
    return f'{v:.4g}'
  return '-' if v is None else str(v)


def write_summary(out, summary):
  """summary.json, and summary.md: one table per stage."""
  with open(os.path.join(out, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  lines = [f'# GPU evidence ({summary["mode"]})', '',
           f'`{summary["command"]}`, started {summary["started"]}'
           + (f', {summary["total_s"]:.0f} s in all' if 'total_s' in summary else ''), '']
  for name, value in summary.items():
    if not isinstance(value, dict) or name == 'stages':
      continue
    lines += [f'## {name}', '', '| field | value |', '|---|---|']
    lines += [f'| {k} | {_fmt(v)} |' for k, v in value.items()] + ['']
  lines += ['## stages', '', '| stage | status | seconds | log |', '|---|---|---|---|']
  lines += [f'| {n} | {s.get("status")} | {_fmt(s.get("seconds"))} | {_fmt(s.get("log"))} |'
            for n, s in summary['stages'].items()]
  with open(os.path.join(out, 'summary.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')


def _usage_error(message):
  print(f'gpu_evidence: error: {message}', file=sys.stderr)
  return 2


def main(argv=None):
  args = parse_args(argv)
  if os.path.exists(args.out) and not os.path.isdir(args.out):
    return _usage_error(f'{args.out} exists and is not a directory')
  if not os.path.exists(args.data):
    return _usage_error(f'--data {args.data}: no such file or folder (the CIFAR-10 JPEG set, '
                        'cifar10-jpeg.tar.gz)')
  if args.epochs < 1:
    return _usage_error('--epochs must be >= 1')
  args.out = os.path.abspath(args.out)
  os.makedirs(args.out, exist_ok=True)
  budget = args.budget_s or (300.0 if args.tiny else 510.0)
  summary = {'mode': 'tiny (CPU rehearsal)' if args.tiny else 'gpu',
             'command': ' '.join(['bench/gpu_evidence.py'] + (argv or sys.argv[1:])),
             'started': time.strftime('%Y-%m-%d %H:%M:%S'), 'stages': {}}
  start = time.monotonic()
  stages = Stages(args.out, budget, summary, {} if args.tiny else {'JAX_PLATFORMS': 'cuda'})
  torch = _has_torch()
  stages.record('versions', lambda: versions(stages))
  for batch in ((16, 32) if args.tiny else (128, 512)):
    stages.record(f'step_time_{batch}', lambda: step_time(stages, args, batch, torch))
  for k in (1, 8):
    stages.record(f'loop_overhead_k{k}', lambda: loop_overhead(stages, args, k))
  stages.record('train', lambda: train(stages, args))
  failed = [n for n, s in summary['stages'].items() if s['status'] not in ('ok', 'timeout')
            or (s['status'] == 'timeout' and n != 'train')]
  summary['total_s'] = round(time.monotonic() - start, 1)
  write_summary(args.out, summary)
  print(f'summary: {os.path.join(args.out, "summary.md")}'
        + (f'; failed: {", ".join(failed)}' if failed else ''))
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())
