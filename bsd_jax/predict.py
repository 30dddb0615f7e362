"""python -m bsd_jax.predict --workdir runs/x [--step N] [--top 5] [--json] IMAGE_OR_DIR ...

The top classes of each image by a trained run, by class name, with their probabilities: the
run's evaluation view of an image (its data source's resize and crop) and, where the run has a
validation split, the temperature fitted on it (the first line on stderr says which). A folder is
walked (files that are not images are left out). One line per image on stdout, `path: class p,
class p, ...`, or with --json one JSON record per line. An image that cannot be read is one line
on stderr naming it, and the others are still answered; the exit status is then 1. Bad flags, a
run that cannot be loaded or a path that does not exist: one line, exit status 2, before any
image is read."""
import json
import logging
import sys
import time

import numpy as np
from absl import flags
from PIL import Image

from bsd_jax import cli, inference
from bsd_jax.errors import UserError, fail

_WORKDIR = flags.DEFINE_string('workdir', None, 'A bsd_jax run directory.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest that reads).')
_TOP = flags.DEFINE_integer('top', 5, 'How many classes to show per image (at most all).')
_JSON = flags.DEFINE_bool('json', False, 'One JSON record per image on stdout: path, step, '
                          'temperature, top: [{class, index, probability}].')
PROG = 'bsd_jax.predict'
PROGRESS_SECONDS = 10.0


def _line(path, top):
  return f'{path}: ' + ', '.join(f'{t["class"]} {t["probability"]:.4f}' for t in top)


def predict(classifier, paths, top, write):
  """Answers every file of `paths` through `write(path, top)`; returns the files that could
  not be read, {path: why}."""
  failed, done, last = {}, 0, time.monotonic()
  batch = classifier.config.eval_batch_size
  for start in range(0, len(paths), batch):
    views, ok = [], []
    for path in paths[start:start + batch]:
      try:
        views.append(classifier.view(path))
        ok.append(path)
      except (OSError, ValueError, Image.DecompressionBombError) as e:
        failed[path] = str(e) or type(e).__name__
        print(f'{PROG}: cannot read image {path}: {failed[path]}', file=sys.stderr)
    if ok:
      _, probs = classifier.probabilities(np.stack(views))
      for path, p in zip(ok, probs):
        order = np.argsort(-p, kind='stable')[:top]
        write(path, [{'class': classifier.class_names[k], 'index': int(k),
                      'probability': float(p[k])} for k in order])
    done += len(paths[start:start + batch])
    if time.monotonic() - last > PROGRESS_SECONDS:
      print(f'{PROG}: {done}/{len(paths)} images', file=sys.stderr)
      last = time.monotonic()
  return failed


def main(argv):
  paths = argv[1:]
  if not _WORKDIR.value:
    fail(PROG, '--workdir is required')
  if not paths:
    fail(PROG, 'give one or more image files or folders after the flags')
  if _TOP.value < 1:
    fail(PROG, f'--top must be >= 1, got {_TOP.value}')
  logging.getLogger('absl').setLevel(logging.WARNING)
  try:
    files = inference.image_files(paths)
  except FileNotFoundError as e:
    fail(PROG, f'{e.args[0]} does not exist')
  if not files:
    fail(PROG, f'no image files in {", ".join(paths)}')
  try:
    classifier = inference.Classifier(_WORKDIR.value, _STEP.value)
  except UserError as e:
    fail(PROG, str(e), e.exit_status)
  top = min(_TOP.value, len(classifier.class_names))
  print(f'{PROG}: {len(files)} images, the model of {_WORKDIR.value} at step {classifier.step}, '
        f'{classifier.describe_temperature()}', file=sys.stderr)

  def write(path, classes):
    if _JSON.value:
      print(json.dumps({'path': path, 'step': classifier.step,
                        'temperature': classifier.temperature, 'top': classes}))
    else:
      print(_line(path, classes))
    sys.stdout.flush()

  failed = predict(classifier, files, top, write)
  if failed:
    print(f'{PROG}: {len(failed)} of {len(files)} images could not be read', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  cli.run(main)
