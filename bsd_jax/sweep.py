"""python -m bsd_jax.sweep --config C --workdir runs/table --methods ce,bsd --seeds 0,1
    [--grid KEY=V1,V2 ...] [--bsd_label_weights W1,W2] [--parallel N]

Runs a grid of methods x seeds x the --grid keys' values (bsd_jax/studies/sweep_grid.py) on one
host, `--parallel` runs at a time, each a plain `python -m bsd_jax.main` in
<workdir>/<label>/seed<s> with its output in log.txt there, then writes and prints the results table
(bsd_jax/studies/results_table.py). The same `--config.KEY=VALUE` overrides apply to every run. Run
again with the same arguments, it skips finished runs and resumes stopped ones; another sweep into
the same workdir adds its runs to the table (sweep.json keeps them all). Several runs share one GPU
well when a single run does not fill it (CIFAR-size models): each run then gets 1/parallel of the
GPU memory."""
import json
import os
import signal
import subprocess
import sys
import time

from absl import flags

from bsd_jax import cli, methods
from bsd_jax.studies import results_table, sweep_grid
from bsd_jax.errors import UserError, fail

cli.define_config_flags()
_METHODS = flags.DEFINE_list('methods', ','.join(methods.METHODS), 'Methods to run.')
_SEEDS = flags.DEFINE_list('seeds', '0,1', 'Values of config.seed, one run each.')
_WEIGHTS = flags.DEFINE_list(
    'bsd_label_weights', '', 'BSD runs at each of these config.bsd.label_weight_end values '
    '(default: the config value only).')
_GRID = flags.DEFINE_multi_string(
    'grid', [], 'KEY=V1,V2: runs at each of these values of config KEY, crossed with the methods, '
    'the seeds and every other --grid (a key of one method\'s section, e.g. '
    'pskd.alpha_T, varies that method\'s runs only). Repeat for more keys.')
_PARALLEL = flags.DEFINE_integer('parallel', 1, 'Runs at a time.')


def _fail(message):
  fail('bsd_jax.sweep', message)


def _config_overrides(argv):
  """The --config.KEY=VALUE arguments (also given as --config.KEY VALUE), to pass to every run."""
  out = []
  for i, arg in enumerate(argv):
    if arg.startswith('--config.'):
      out.append(arg if '=' in arg else f'{arg}={argv[i + 1]}')
  return out


def _env(parallel):
  env = dict(os.environ)
  if parallel > 1 and 'XLA_PYTHON_CLIENT_MEM_FRACTION' not in env:
    env['XLA_PYTHON_CLIENT_MEM_FRACTION'] = f'{min(0.75, 0.9 / parallel):.3f}'
  return env


def run_grid(config_path, workdir, overrides, runs, parallel, env):
  """Run every (label, seed, args) of `runs`, `parallel` at a time; returns the failed ones."""
  pending = list(runs)
  active = {}  # Popen -> (label, seed, start time, log file)
  failed = []
  done = 0
  start = time.time()
  try:
    while pending or active:
      while pending and len(active) < parallel:
        label, seed, args = pending.pop(0)
        run_dir = os.path.join(workdir, label, f'seed{seed}')
        os.makedirs(run_dir, exist_ok=True)
        log = open(os.path.join(run_dir, 'log.txt'), 'a')
        cmd = [sys.executable, '-m', 'bsd_jax.main', f'--config={config_path}',
               f'--workdir={run_dir}'] + overrides + args
        log.write(' '.join(cmd) + '\n')
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        active[proc] = (label, seed, time.time(), log)
        print(f'started  {label} seed {seed} -> {run_dir}', flush=True)
      time.sleep(0.5)
      for proc in [p for p in active if p.poll() is not None]:
        label, seed, t0, log = active.pop(proc)
        log.close()
        done += 1
        run_dir = os.path.join(workdir, label, f'seed{seed}')
        status = 'finished' if proc.returncode == 0 else f'FAILED (exit {proc.returncode})'
        summary = results_table.last_test_summary(run_dir) if proc.returncode == 0 else ''
        print(f'{status} {label} seed {seed} in {time.time() - t0:.0f} s {summary} '
              f'[{done}/{len(runs)} runs, {time.time() - start:.0f} s]', flush=True)
        if proc.returncode != 0:
          failed.append((label, seed))
          with open(os.path.join(run_dir, 'log.txt')) as f:
            print(''.join('    ' + l for l in f.readlines()[-5:]), end='', flush=True)
  except KeyboardInterrupt:
    # The runs got the same Ctrl-C (one process group) and checkpoint; wait for them to stop.
    for proc in active:
      proc.send_signal(signal.SIGTERM)
    for proc in active:
      proc.wait()
    print('Interrupted: run the same command again to resume.', file=sys.stderr)
    sys.exit(130)
  return failed


def _write_manifest(workdir, config_path, overrides, runs):
  """<workdir>/sweep.json: the labels in table order and each run's config, overrides and
  arguments. A second sweep into the same workdir adds its runs to the earlier sweeps' (a run of
  the same label and seed is replaced), so that the table keeps every run there."""
  path = os.path.join(workdir, 'sweep.json')
  earlier = {'labels': [], 'runs': []}
  if os.path.exists(path):
    try:
      with open(path) as f:
        earlier = json.load(f)
    except ValueError as e:
      _fail(f'{path} cannot be read ({e}): restore it, or use another --workdir')
  new = [{'label': l, 'seed': s, 'config': config_path, 'overrides': overrides, 'args': a}
         for l, s, a in runs]
  replaced = {(r['label'], r['seed']) for r in new}
  kept = [r for r in earlier.get('runs', []) if (r['label'], r['seed']) not in replaced]
  manifest = {'config': config_path, 'overrides': overrides,
              'labels': list(dict.fromkeys(earlier.get('labels', []) + [r['label'] for r in new])),
              'runs': kept + new}
  with open(path + '.tmp', 'w') as f:
    json.dump(manifest, f, indent=2)
  os.replace(path + '.tmp', path)


def main(argv):
  del argv
  if not cli.WORKDIR.value:
    _fail('--workdir is required')
  if _PARALLEL.value < 1:
    _fail(f'--parallel must be >= 1, got {_PARALLEL.value}')
  config_path = os.path.abspath(cli.config_file())
  overrides = _config_overrides(sys.argv[1:])
  try:
    runs = sweep_grid.plan(cli.CONFIG.value, _METHODS.value, _SEEDS.value, _WEIGHTS.value,
                           _GRID.value, check_data=True)
  except UserError as e:
    _fail(str(e))
  workdir = cli.WORKDIR.value
  os.makedirs(workdir, exist_ok=True)
  _write_manifest(workdir, config_path, overrides, runs)
  print(f'{len(runs)} runs, {_PARALLEL.value} at a time, in {workdir}', flush=True)
  failed = run_grid(config_path, workdir, overrides, runs, _PARALLEL.value, _env(_PARALLEL.value))
  try:
    table = results_table.write_table(workdir)
  except UserError as e:  # a run's metrics.jsonl that cannot be read
    _fail(str(e))
  print(table)
  if failed:
    print(f'{len(failed)} run(s) failed: {failed}; their log.txt says why', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  cli.run(main, flags_parser=lambda argv: cli.parse_flags(argv, 'bsd_jax.sweep'))
