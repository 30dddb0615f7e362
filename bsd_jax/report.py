"""python -m bsd_jax.report DIR [--class_names FILE]

A study's report from what its runs wrote: DIR is a sweep directory (<label>/seed<s>/, as
bsd_jax.sweep lays it out) or one run directory. Writes DIR/report.md and its figures in
DIR/report_figures/:
  - the results table (bsd_jax/studies/results_table.py: mean ± std over seeds of the last epoch, with
    the columns after temperature scaling when the runs had a validation split);
  - curves.png: test top-1, NLL and ECE (and ECE after scaling) against epoch, each label's mean
    over seeds with a band from the lowest to the highest seed;
  - reliability.png: every label's reliability diagram before and after temperature scaling,
    the bins of its runs' final evaluation (eval/metrics.json) pooled over seeds;
  - human.png: where runs have eval/human.json (evaluate --suite human), each label's KL from
    people's label distributions (before and after temperature scaling) and its top-1 and
    second-choice agreement with people, mean over seeds, and the same in a table;
  - posterior.png: for BSD runs, the statistics of the targets over epochs (and, under label
    noise, how many noisy samples' targets went back to the clean label);
  - class_targets_<label>.png: for BSD runs, the final mean target of each given label (the
    seeds' eval/class_targets.npz averaged) as a heatmap, and the ten class pairs with the most
    mass in report.md, by class name (the names the run recorded; else --class_names, a file of
    one name per line in class order; else an image folder's class folders).
It reads only metrics.jsonl, config.json and eval/; it works while runs are still going (their
curves so far are drawn, the table leaves them out and says so) and on a single run. Bad input:
one line on stderr, exit status 2.
"""
import os
import sys

from bsd_jax.errors import UserError, fail
from bsd_jax.studies.report import FIGURES, build

USAGE = __doc__.split('\n\n')[0]


def main(argv):
  args = argv[1:]
  if any(a in ('-h', '--help', '--helpfull') for a in args):
    print(__doc__)
    return
  names_file = None
  for a in list(args):
    if a.startswith('--class_names='):
      names_file = a.split('=', 1)[1]
      args.remove(a)
  if '--class_names' in args:
    i = args.index('--class_names')
    names_file = args[i + 1] if i + 1 < len(args) else ''
    del args[i:i + 2]
  if len(args) != 1 or args[0].startswith('-') or not os.path.isdir(args[0]):
    fail('bsd_jax.report', f'give one run or sweep directory; got {args} ({USAGE.strip()})')
  if names_file is not None and not os.path.isfile(names_file):
    fail('bsd_jax.report', f'--class_names: {names_file!r} is not a file')
  try:
    build(args[0], names_file)
  except UserError as e:
    fail('bsd_jax.report', str(e))
  print(f'wrote {os.path.join(args[0], "report.md")} and {os.path.join(args[0], FIGURES)}/')


if __name__ == '__main__':
  main(sys.argv)
