"""How much the training loop adds to the bare jitted step, on a dispatch-bound tiny model.

    python bench/loop_overhead.py            # smoke CNN, 8x8 images, batch 16, 4096 samples
    python bench/loop_overhead.py --steps_per_call 1   # one step per jitted call

In one invocation: the real loop (bsd_jax.train.train_and_evaluate, evaluation and checkpoints
at the end only, synthetic data in device memory) and the bare jitted step that loop runs with
steps_per_call 1 (step.TrainSteps.call: the batch taken from the epoch's plan on the devices), on
the same model, batch and devices, called back to back. The loop's speed is the one its own
progress line reports for each epoch after the first (the window starts after the previous
epoch's end and excludes compilation); the step's is --steps steps after warm-up, timed to the
last result. Both take the median over --rounds. The
last line is `loop/step time ratio: X.XXX` (loop time per step / bare step time).
"""
import argparse
import logging
import os
import re
import statistics
import sys
import tempfile
import time


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--config', default='configs/smoke.py', help='base config file')
  p.add_argument('--batch_size', type=int, default=16)
  p.add_argument('--num_train', type=int, default=4096, help='samples (steps/epoch = this / batch)')
  p.add_argument('--image_size', type=int, default=8)
  p.add_argument('--method', default='bsd')
  p.add_argument('--epochs', type=int, default=4, help='loop epochs per round (>= 2)')
  p.add_argument('--steps', type=int, default=512, help='bare steps per round')
  p.add_argument('--rounds', type=int, default=3)
  p.add_argument('--steps_per_call', type=int, default=None,
                 help="the loop's config.steps_per_call (default: the config's)")
  return p.parse_args(argv)


def _config(args):
  from ml_collections import config_flags
  config = config_flags.config_flags._ConfigFileParser('config').parse(args.config)
  config.method = args.method
  config.batch_size = args.batch_size
  config.data.source = 'synthetic'
  config.data.augment = False
  config.data.synthetic.num_train = args.num_train
  config.data.synthetic.num_test = args.batch_size
  config.data.synthetic.image_size = args.image_size
  config.num_epochs = args.epochs
  config.eval_every_epochs = config.checkpoint_every_epochs = args.epochs  # at the end only
  config.eval_batch_size = args.batch_size
  config.log_every_steps = -(-args.num_train // args.batch_size)  # one progress line an epoch
  if args.steps_per_call is not None:
    config.steps_per_call = args.steps_per_call
  return config


class _Rates(logging.Handler):
  """Collects the steps/s of the loop's progress lines."""

  def __init__(self):
    super().__init__()
    self.rates = []

  def emit(self, record):
    match = re.search(r'\| ([\d.]+) steps/s', record.getMessage())
    if match:
      self.rates.append(float(match.group(1)))


def loop_rate(config):
  """Median steps/s of the loop over the epochs after the first."""
  from bsd_jax import train
  handler = _Rates()
  logging.getLogger().addHandler(handler)
  try:
    with tempfile.TemporaryDirectory() as workdir:
      train.train_and_evaluate(config, os.path.join(workdir, 'run'))
  finally:
    logging.getLogger().removeHandler(handler)
  return statistics.median(handler.rates[1:])


def step_rate(config, steps):
  """Steps/s of the bare jitted step the loop calls with steps_per_call 1 (its batch taken from
  the epoch's plan, already on the devices), called back to back."""
  import jax

  from bsd_jax import data, experiment, feeds, step
  ds = data.load(config)
  exp = experiment.build(config, ds)
  state = jax.jit(exp.init_state, out_shardings=exp.state_shardings)(
      jax.random.PRNGKey(0), exp.padded_labels)
  one = config.copy_and_resolve_references()
  one.steps_per_call = 1
  with feeds.make(one, ds, exp) as feed:
    steps_1 = step.TrainSteps(one, exp, feed)
    plan, totals = feed.epoch_plan(0), steps_1.totals
    for _ in range(8):  # compilation and warm-up
      state, totals = steps_1.call(state, feed.train_data, plan, {}, totals)
    jax.block_until_ready(totals)
    start = time.perf_counter()
    for _ in range(steps):
      state, totals = steps_1.call(state, feed.train_data, plan, {}, totals)
    jax.block_until_ready(totals)
    return steps / (time.perf_counter() - start)


def main(argv=None):
  args = parse_args(argv)
  if args.epochs < 2:
    sys.exit('loop_overhead.py: error: --epochs must be >= 2 (the first epoch compiles)')
  if args.steps_per_call is not None and args.steps_per_call < 1:
    sys.exit('loop_overhead.py: error: --steps_per_call must be >= 1')
  import jax
  logging.getLogger().setLevel(logging.INFO)
  logging.getLogger('absl').setLevel(logging.WARNING)
  config = _config(args)
  loops, steps = [], []
  for r in range(args.rounds):  # interleaved, so that drift in the machine's speed hits both
    loops.append(loop_rate(config))
    steps.append(step_rate(config, args.steps))
    print(f'round {r + 1}: loop {loops[-1]:.1f} steps/s, bare step {steps[-1]:.1f} steps/s',
          flush=True)
  loop, step = statistics.median(loops), statistics.median(steps)
  print(f'{jax.device_count()} {jax.devices()[0].platform} device(s), {config.model.name} '
        f'{tuple(config.model.cnn_widths)}, {args.image_size}x{args.image_size} images, batch '
        f'{args.batch_size}, method {args.method}, steps per call: {config.steps_per_call}')
  print(f'loop: {loop:.1f} steps/s ({1e3 / loop:.3f} ms/step)')
  print(f'bare step: {step:.1f} steps/s ({1e3 / step:.3f} ms/step)')
  print(f'loop/step time ratio: {step / loop:.3f}')


if __name__ == '__main__':
  main()
