"""Time and memory for one process of a P-process job to read its share of an in-memory split.

    for p in 1 2 4; do python bench/read_share.py --root /tmp/data/cifar10-jpeg --processes $p; done

In a multi-process job each process reads every label but decodes only the images of the rows
its devices hold (bsd_jax/data.py, sharding.process_rows). This reads process 0's share of a
job of --processes processes with one device each, through the trainer's own data.load, and
prints the wall time and the peak resident memory of this process. Run each P in its own
invocation: the peak is per process.
"""
import argparse
import os
import resource
import sys
import time


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--config', default='configs/smoke.py', help='base config file')
  p.add_argument('--root', help="image folder (config.data.source='folder')")
  p.add_argument('--tfds_name', help="tfds dataset (config.data.source='tfds')")
  p.add_argument('--tfds_data_dir')
  p.add_argument('--processes', type=int, default=1)
  args = p.parse_args(argv)
  if bool(args.root) == bool(args.tfds_name):
    p.error('give one of --root and --tfds_name')
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from ml_collections import config_flags

  from bsd_jax import data, sharding
  config = config_flags.config_flags._ConfigFileParser('config').parse(args.config)
  if args.root:
    config.data.source, config.data.root = 'folder', args.root
  else:
    config.data.source, config.data.name = 'tfds', args.tfds_name
    config.data.tfds_data_dir, config.data.download = args.tfds_data_dir, False

  owners = list(range(args.processes))  # process 0 of P processes, one device each
  start = time.perf_counter()
  ds = data.load(config, rows=lambda num: sharding.sample_rows(num, owners, 0))
  seconds = time.perf_counter() - start
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB (Linux)
  print(f'processes {args.processes}: process 0 read {ds.train_images.shape[0]} of '
        f'{ds.num_train} train and {ds.test_images.shape[0]} of {ds.test_labels.shape[0]} test '
        f'images in {seconds:.1f} s, peak RSS {peak:.2f} GiB')


if __name__ == '__main__':
  main()
