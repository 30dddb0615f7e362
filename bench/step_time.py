"""Steady-state train-step time of BSD against CE: same model, batch, devices, the trainer's step.

    python bench/step_time.py                      # the smoke model on this machine
    python bench/step_time.py --model resnet18 --batch_size 128 --num_classes 100 \
        --compute_dtype bfloat16 --torch           # + the PyTorch equivalent, side by side

Each method's step is the one `bsd_jax.main` runs (step.jit_train_step: jitted, state
donated, the per-sample table row-sharded), on synthetic data of --num_train samples held in
device memory. Compilation and --warmup steps are excluded; then --rounds rounds time --steps
steps of each method in turn (interleaved, so that drift in the machine's speed hits both) and
the median round gives the step time. The last line is `bsd/ce step-time ratio: X.XXX`.

A method may carry keys of its config section: `--methods bsd,bsd:top_k=32` times the dense
posterior against the sparse one (config.bsd.top_k = 32) in the same rounds, and
`bsd:top_k=32:rest_spread=prediction` the sparse one with its unkept mass spread by prediction:

    python bench/step_time.py --cpu_devices 8 --num_classes 21843 --num_train 16384 \
        --image_size 8 --batch_size 256 \
        --methods bsd,bsd:top_k=32,bsd:top_k=32:rest_spread=prediction,ce
"""
import argparse
import json
import os
import statistics
import sys
import time



def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--config', default='configs/smoke.py', help='base config file')
  p.add_argument('--model', help='config.model.name (default: the config\'s)')
  p.add_argument('--batch_size', type=int, help='global batch (default: the config\'s)')
  p.add_argument('--compute_dtype', choices=['float32', 'bfloat16'])
  p.add_argument('--table_dtype', choices=['float32', 'bfloat16'])
  p.add_argument('--num_train', type=int, default=50_000, help='samples = rows of the table')
  p.add_argument('--num_classes', type=int, default=100)
  p.add_argument('--image_size', type=int, default=32)
  p.add_argument('--methods', default='ce,bsd', help='the first is the reference of the ratio; '
                 'METHOD:KEY=VALUE[:KEY=VALUE] sets keys of the method\'s config section '
                 '(bsd:top_k=32:rest_spread=prediction)')
  p.add_argument('--steps', type=int, default=20, help='timed steps per round')
  p.add_argument('--rounds', type=int, default=5)
  p.add_argument('--warmup', type=int, default=3, help='untimed steps after compilation')
  p.add_argument('--cpu_devices', type=int, help='fake CPU devices (XLA host platform)')
  p.add_argument('--peak_tflops', type=float, help='device peak, for an MFU estimate')
  p.add_argument('--torch', action='store_true', help='also time the PyTorch equivalent '
                 '(bench/torch_step.py; model resnet18 or cnn)')
  p.add_argument('--json', help='also write the results to this file')
  return p.parse_args(argv)


def _config(args, spec):
  """The config of one --methods entry: METHOD, or METHOD:KEY=VALUE (a key of the method's
  section, typed like its default)."""
  from ml_collections import config_flags

  from bsd_jax import methods
  from bsd_jax.studies import sweep_grid
  from bsd_jax.errors import UserError
  config = config_flags.config_flags._ConfigFileParser('config').parse(args.config)
  method, *settings = spec.split(':')
  config.method = method
  if settings and args.torch:
    raise SystemExit(f'--methods {spec}: --torch times the plain methods only')
  for setting in settings:
    key, _, text = setting.partition('=')
    key = f'{methods.METHODS[method].section or method}.{key}'
    try:
      node, leaf = sweep_grid._parent_and_leaf(config, key)
      node[leaf] = sweep_grid._typed(config, key, text)
    except UserError as e:
      raise SystemExit(f'--methods {spec}: {str(e).replace("--grid ", "config.")}') from None
  config.data.source = 'synthetic'
  config.data.synthetic.num_train = args.num_train
  config.data.synthetic.num_test = 8
  config.data.synthetic.num_classes = args.num_classes
  config.data.synthetic.image_size = args.image_size
  for key in ('batch_size', 'compute_dtype', 'table_dtype'):
    if getattr(args, key) is not None:
      config[key] = getattr(args, key)
  if args.model:
    config.model.name = args.model
  return config


class JaxRunner:
  """One method's jitted train step, state and a ring of device-resident batches."""

  def __init__(self, config, ds):
    import jax

    from bsd_jax import experiment, sharding, step
    from bsd_jax.data import order
    self.exp = exp = experiment.build(config, ds)
    self.state = jax.jit(exp.init_state, out_shardings=exp.state_shardings)(
        jax.random.PRNGKey(0), exp.padded_labels)
    self.step = step.jit_train_step(config, exp)
    self.table_mib = sharding.bytes_per_device(self.state.table) / 2**20  # per-sample table
    self.data = {'labels': jax.device_put(ds.train_labels, sharding.replicated(exp.mesh)),
                 'images': sharding.put_rows(ds.train_images, None, ds.num_train, exp.mesh)}
    index, mask = order.epoch_batches(0, 0, ds.num_train, config.batch_size)
    self.batches = [jax.device_put({'index': index[s], 'mask': mask[s]},
                                   sharding.batch_sharded(exp.mesh))
                    for s in range(min(16, exp.steps_per_epoch))]
    self.done = 0
    compiled = self.step.lower(self.state, self.data, self.batches[0]).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    self.flops = float((cost or {}).get('flops', 0.0))

  def run(self, n):
    import jax
    start = time.perf_counter()
    for _ in range(n):
      self.state, sums = self.step(self.state, self.data,
                                   self.batches[self.done % len(self.batches)])
      self.done += 1
    jax.block_until_ready((self.state, sums))
    return time.perf_counter() - start


def time_interleaved(runners, steps, rounds, warmup):
  """Median seconds per step of each runner over `rounds` interleaved rounds."""
  for r in runners.values():
    r.run(1 + warmup)  # the first call compiles (jit caches the lowering above)
  times = {name: [] for name in runners}
  for _ in range(rounds):
    for name, r in runners.items():
      times[name].append(r.run(steps) / steps)
  return {name: statistics.median(t) for name, t in times.items()}, times


def main(argv=None):
  args = parse_args(argv)
  if args.cpu_devices:
    os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                               f' --xla_force_host_platform_device_count={args.cpu_devices}')
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  import jax

  from bsd_jax import config_check, data
  methods = args.methods.split(',')
  configs = {m: _config(args, m) for m in methods}
  for config in configs.values():
    config_check.check_config(config, jax.device_count())
  base = configs[methods[0]]
  ds = data.load(base)
  devices = jax.devices()
  print(f'{len(devices)} x {devices[0].device_kind} ({devices[0].platform}); model '
        f'{base.model.name}, batch {base.batch_size}, compute {base.compute_dtype}, table '
        f'{base.table_dtype} [{ds.num_train}, {ds.num_classes}]; {args.rounds} rounds x '
        f'{args.steps} steps', flush=True)
  runners = {m: JaxRunner(configs[m], ds) for m in methods}
  if args.torch:
    import torch_step
    for m in methods:
      runners[f'torch_{m}'] = torch_step.TorchRunner(configs[m], ds)
  median, all_times = time_interleaved(runners, args.steps, args.rounds, args.warmup)
  results = {'devices': len(devices), 'device_kind': devices[0].device_kind,
             'model': base.model.name, 'batch_size': base.batch_size,
             'compute_dtype': base.compute_dtype, 'table_dtype': base.table_dtype,
             'num_train': ds.num_train, 'num_classes': ds.num_classes, 'methods': {}}
  for name, seconds in median.items():
    r = runners[name]
    spread = max(all_times[name]) / min(all_times[name]) - 1
    line = (f'{name:14s} {seconds * 1e3:9.2f} ms/step {base.batch_size / seconds:9.0f} img/s '
            f'(rounds spread {spread:.1%})')
    entry = {'step_ms': seconds * 1e3, 'images_per_s': base.batch_size / seconds,
             'round_step_ms': [t * 1e3 for t in all_times[name]]}
    if hasattr(r, 'table_mib'):
      entry['table_mib_per_device'] = r.table_mib
      line += f' table {r.table_mib:.3g} MiB/device'
    flops = getattr(r, 'flops', 0.0)
    if flops:
      entry['tflops_per_s'] = flops / seconds / 1e12
      line += f' {entry["tflops_per_s"]:.3f} TFLOP/s (XLA cost analysis)'
      if args.peak_tflops:
        entry['mfu'] = entry['tflops_per_s'] / args.peak_tflops
        line += f' MFU {entry["mfu"]:.1%}'
    results['methods'][name] = entry
    print(line)
  ref = methods[0]
  if args.torch:
    for m in methods:
      results[f'jax_over_torch_speed_{m}'] = median[f'torch_{m}'] / median[m]
      print(f'{m}: JAX/PyTorch speed {median[f"torch_{m}"] / median[m]:.3f} (images/s ratio)')
  for m in methods[1:]:
    results[f'{m}/{ref}'] = median[m] / median[ref]
    if args.torch:
      print(f'PyTorch {m}/{ref} step-time ratio: '
            f'{median[f"torch_{m}"] / median[f"torch_{ref}"]:.3f}')
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(results, f, indent=2)
  for m in methods[1:]:
    print(f'{m}/{ref} step-time ratio: {results[f"{m}/{ref}"]:.3f}')
  return results


if __name__ == '__main__':
  main()
