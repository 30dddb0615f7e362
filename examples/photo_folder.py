"""Make a folder of photo-like images from an image folder of small ones (CIFAR-10's JPEGs), to
try bsd_jax as on your own photos (docs/your_data.md): every image upscaled to its own size and
aspect, the formats and modes cycled (JPEG, PNG, WebP, grey, CMYK, RGBA, a JPEG stored sideways
with an EXIF orientation), and a non-image file in each class folder.

    python examples/photo_folder.py data/cifar10-jpeg data/photos \
        --classes airplane,automobile,bird,cat,deer,dog,frog --train_per_class 300

reads SRC/{train,test}/<class>/* and writes DEST/{train,test}/<class>/*: the first
--train_per_class (and --test_per_class) images of each class, in sorted file order (fewer where a
class has fewer). DEST must not exist: nothing is overwritten. Exit status 2 on bad input."""
import argparse
import os
import sys

import numpy as np
from PIL import Image

KINDS = ('jpeg', 'png', 'webp', 'grey', 'cmyk', 'rgba', 'exif_rotated')
SPLITS = {'train': 'train_per_class', 'test': 'test_per_class'}


def write_image(path_stem, kind, pixels):
  """Writes `pixels` (uint8 [H, W, 3]) as `kind`; returns the file's path."""
  im = Image.fromarray(pixels)
  if kind == 'jpeg':
    path = path_stem + '.jpg'
    im.save(path, 'JPEG', quality=90)
  elif kind == 'png':
    path = path_stem + '.png'
    im.save(path)
  elif kind == 'webp':
    path = path_stem + '.webp'
    im.save(path, 'WEBP', quality=90)
  elif kind == 'grey':
    path = path_stem + '.png'
    im.convert('L').save(path)
  elif kind == 'cmyk':
    path = path_stem + '.jpeg'
    im.convert('CMYK').save(path, 'JPEG', quality=90)
  elif kind == 'rgba':
    path = path_stem + '.PNG'
    im.convert('RGBA').save(path)
  elif kind == 'exif_rotated':  # stored turned 90 degrees; orientation 6 turns it back
    path = path_stem + '.JPG'
    exif = Image.Exif()
    exif[0x0112] = 6
    im.transpose(Image.Transpose.ROTATE_90).save(path, 'JPEG', quality=90, exif=exif)
  else:
    raise ValueError(kind)
  return path


def _fail(message):
  print(f'photo_folder.py: {message}', file=sys.stderr)
  sys.exit(2)


def _arguments(argv):
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  p.add_argument('src', help='an image folder: SRC/{train,test}/<class>/*')
  p.add_argument('dest', help='the new folder (must not exist)')
  p.add_argument('--classes', default='', help='comma-separated class folders (default: all)')
  p.add_argument('--train_per_class', type=int, default=300)
  p.add_argument('--test_per_class', type=int, default=100)
  p.add_argument('--min_side', type=int, default=48)
  p.add_argument('--max_side', type=int, default=160)
  p.add_argument('--seed', type=int, default=0)
  args = p.parse_args(argv)
  if os.path.exists(args.dest):
    _fail(f'{args.dest} exists: give a new folder (nothing is overwritten)')
  for split in SPLITS:
    if not os.path.isdir(os.path.join(args.src, split)):
      _fail(f'{os.path.join(args.src, split)} is not a folder (SRC holds train/ and test/)')
  have = sorted(os.listdir(os.path.join(args.src, 'train')))
  args.classes = args.classes.split(',') if args.classes else have
  missing = [c for c in args.classes if c not in have]
  if missing:
    _fail(f'--classes: no folder {missing[0]} in {args.src}/train (it has {", ".join(have)})')
  if not 8 <= args.min_side <= args.max_side:
    _fail('--min_side and --max_side: 8 <= min_side <= max_side')
  return args


def main(argv=None):
  args = _arguments(argv)
  rng = np.random.default_rng(args.seed)
  count = 0
  for split, per_class in SPLITS.items():
    for c in args.classes:
      src = os.path.join(args.src, split, c)
      names = sorted(n for n in os.listdir(src) if not n.startswith('.'))[:getattr(args, per_class)]
      dest = os.path.join(args.dest, split, c)
      os.makedirs(dest)
      for i, name in enumerate(names):
        with Image.open(os.path.join(src, name)) as im:
          size = tuple(int(s) for s in rng.integers(args.min_side, args.max_side + 1, 2))
          pixels = np.asarray(im.convert('RGB').resize(size, Image.BICUBIC))
        write_image(os.path.join(dest, f'{i:04d}'), KINDS[count % len(KINDS)], pixels)
        count += 1
      with open(os.path.join(dest, 'notes.txt'), 'w') as f:
        f.write('not an image: bsd_jax ignores files that are not images\n')
  print(f'{args.dest}: {count} images of {len(args.classes)} classes, sides '
        f'{args.min_side} to {args.max_side} pixels, formats {", ".join(KINDS)}')


if __name__ == '__main__':
  main()
