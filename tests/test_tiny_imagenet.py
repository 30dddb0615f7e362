"""The Tiny ImageNet source on a fixture in the official tiny-imagenet-200 layout (directory and
zip): labels of the train and the validation (test) split agree, and a run trains and
evaluates on it."""
import os
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from bsd_jax import data, evaluate, train
from bsd_jax.errors import UserError
from tests import helpers

WNIDS = ('n02124075', 'n01443537', 'n04067472')  # not in sorted order on purpose
WORDS = {'n01443537': 'goldfish, Carassius auratus', 'n02124075': 'Egyptian cat',
         'n04067472': 'reel'}
COLORS = {'n01443537': (200, 30, 30), 'n02124075': (30, 200, 30), 'n04067472': (30, 30, 200)}


def _image(path, wnid, rng):
  """A 64x64 JPEG of the class's colour with a little noise: its class can be read back."""
  pixels = np.clip(np.asarray(COLORS[wnid]) + rng.integers(-10, 10, (64, 64, 3)), 0, 255)
  Image.fromarray(pixels.astype(np.uint8)).save(path, quality=95)


def make_fixture(root, per_class=6, val_per_class=3):
  rng = np.random.default_rng(0)
  os.makedirs(root)
  with open(os.path.join(root, 'wnids.txt'), 'w') as f:
    f.write(''.join(w + '\n' for w in WNIDS))
  with open(os.path.join(root, 'words.txt'), 'w') as f:  # more ids than the 200, as the real one
    f.write(''.join(f'{w}\t{WORDS[w]}\n' for w in sorted(WORDS)) + 'n00000001\tentity\n')
  for w in WNIDS:
    os.makedirs(os.path.join(root, 'train', w, 'images'))
    with open(os.path.join(root, 'train', w, f'{w}_boxes.txt'), 'w') as f:
      f.write('')
    for i in range(per_class):
      _image(os.path.join(root, 'train', w, 'images', f'{w}_{i}.JPEG'), w, rng)
  os.makedirs(os.path.join(root, 'val', 'images'))
  os.makedirs(os.path.join(root, 'test', 'images'))
  lines = []
  for i in range(val_per_class * len(WNIDS)):
    w = WNIDS[(i * 7) % len(WNIDS)]
    _image(os.path.join(root, 'val', 'images', f'val_{i}.JPEG'), w, rng)
    lines.append(f'val_{i}.JPEG\t{w}\t0\t0\t63\t63\n')
  with open(os.path.join(root, 'val', 'val_annotations.txt'), 'w') as f:
    f.writelines(lines)
  _image(os.path.join(root, 'test', 'images', 'test_0.JPEG'), WNIDS[0], rng)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  base = tmp_path_factory.mktemp('tiny')
  root = str(base / 'tiny-imagenet-200')
  make_fixture(root)
  shutil.make_archive(str(base / 'tiny-imagenet-200'), 'zip', str(base), 'tiny-imagenet-200')
  return root, str(base / 'tiny-imagenet-200.zip')


def _config(root, **overrides):
  config = helpers.load_config('smoke.py')
  config.data.source, config.data.root = 'tiny_imagenet', root
  config.batch_size, config.eval_batch_size, config.num_epochs = 8, 8, 2
  return helpers.override(config, overrides)


def _colour_class(images):
  """The class index each image's colour says (sorted wnid order)."""
  order = sorted(WNIDS)
  means = images.reshape(len(images), -1, 3).mean(1)
  return np.array([min(range(3), key=lambda k: np.abs(m - COLORS[order[k]]).sum())
                   for m in means])


@pytest.mark.parametrize('which', ['directory', 'zip'])
def test_train_and_validation_labels_agree_with_the_images(tiny, which):
  ds = data.load(_config(tiny[0] if which == 'directory' else tiny[1]))
  assert ds.num_classes == 3 and ds.image_shape == (64, 64, 3)
  assert ds.num_train == 18 and ds.test_labels.shape == (9,)
  assert ds.class_names == ('goldfish', 'Egyptian cat', 'reel')  # sorted wnids, words.txt
  np.testing.assert_array_equal(_colour_class(ds.train_images), ds.train_labels)
  np.testing.assert_array_equal(_colour_class(ds.test_images), ds.test_labels)
  assert np.bincount(ds.test_labels).tolist() == [3, 3, 3]


def test_a_run_trains_and_evaluates_on_it(tiny, tmp_path):
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(_config(tiny[1], **{'data.val_size': 3}), workdir)
  tests = helpers.read_metrics(workdir, 'test')
  assert [r['epoch'] for r in tests] == [1, 2] and 'top5' not in tests[-1]  # 3 classes
  record = evaluate.evaluate(workdir)
  assert record['num_samples'] == 9 and record['val_samples'] == 3
  assert record['metrics']['accuracy'] == pytest.approx(tests[-1]['accuracy'])


@pytest.mark.parametrize('breakage, message', [
    (lambda r: os.remove(os.path.join(r, 'wnids.txt')), r'wnids.txt is missing'),
    (lambda r: os.remove(os.path.join(r, 'val', 'val_annotations.txt')),
     r'val/val_annotations.txt is missing'),
    (lambda r: open(os.path.join(r, 'val', 'val_annotations.txt'), 'a').write(
        'val_0.JPEG\tn09999999\t0\t0\t1\t1\n'), r'line 10 names a wnid not in wnids.txt'),
    (lambda r: open(os.path.join(r, 'words.txt'), 'a').write('no tab here\n'),
     r'words.txt line 5 is not'),
    (lambda r: shutil.rmtree(os.path.join(r, 'train', WNIDS[1], 'images')),
     r'train/n01443537/images holds no .JPEG images'),
    (lambda r: Image.new('RGB', (32, 32)).save(
        os.path.join(r, 'val', 'images', 'val_0.JPEG'), format='JPEG'), r'val_0.JPEG is 32x32'),
    # an image without an annotation line would be dropped from the test split
    (lambda r: Image.new('RGB', (64, 64)).save(
        os.path.join(r, 'val', 'images', 'val_extra.JPEG'), format='JPEG'),
     r'val/images/val_extra.JPEG has no line in val/val_annotations.txt \(1 of 10'),
])
def test_a_missing_or_malformed_file_is_one_line_naming_it(tiny, tmp_path, breakage, message):
  root = str(tmp_path / 'tiny-imagenet-200')
  shutil.copytree(tiny[0], root)
  breakage(root)
  with pytest.raises(UserError, match=message) as info:
    data.load(_config(root))
  assert '\n' not in str(info.value)


def test_a_zip_that_is_not_tiny_imagenet_is_one_line(tmp_path):
  path = tmp_path / 'other.zip'
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr('readme.txt', 'hello')
  with pytest.raises(UserError, match=r'holds no wnids.txt'):
    data.load(_config(str(path)))


def test_a_damaged_zip_member_and_a_repeated_annotation_are_one_line(tiny, tmp_path):
  root = str(tmp_path / 'tiny-imagenet-200')
  shutil.copytree(tiny[0], root)
  with open(os.path.join(root, 'val', 'val_annotations.txt'), 'a') as f:
    f.write(f'val_0.JPEG\t{WNIDS[0]}\t0\t0\t63\t63\n')
  with pytest.raises(UserError, match=r'line 10 lists val_0.JPEG a second time'):
    data.load(_config(root))
  damaged = tmp_path / 'damaged.zip'
  data_bytes = bytearray(open(tiny[1], 'rb').read())
  start = data_bytes.find(b'val_1.JPEG') + 200  # inside the member's compressed bytes
  data_bytes[start:start + 64] = bytes(64)
  damaged.write_bytes(bytes(data_bytes))
  with pytest.raises(UserError, match=r'cannot read') as info:
    data.load(_config(str(damaged)))
  assert '\n' not in str(info.value)
