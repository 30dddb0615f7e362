"""python -m bsd_jax.results_table SWEEP_DIR: a sweep's table (bsd_jax/studies/results_table.py)."""
import os
import sys

from bsd_jax.errors import UserError, fail
from bsd_jax.studies.results_table import write_table

USAGE = """usage: python -m bsd_jax.results_table SWEEP_DIR

Writes SWEEP_DIR/table.md and table.json from the runs of a sweep (the --workdir of
bsd_jax.sweep) and prints the markdown table."""


def main(argv):
  if len(argv) == 2 and argv[1] in ('-h', '--help', '--helpfull'):
    print(USAGE)
    return
  if len(argv) != 2 or not os.path.isdir(argv[1]):
    fail('bsd_jax.results_table', 'give one sweep directory (the --workdir of bsd_jax.sweep); '
         f'got {argv[1:]}')
  try:
    print(write_table(argv[1]))
  except UserError as e:
    fail('bsd_jax.results_table', str(e))


if __name__ == '__main__':
  main(sys.argv)
