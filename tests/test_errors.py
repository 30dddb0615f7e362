"""Bad input fails with a one-line message naming the key or path, before anything is written."""
import os

import pytest

from bsd_jax import train
from bsd_jax.errors import UserError
from tests import helpers


def _expect_error(config, workdir, match):
  with pytest.raises(UserError, match=match) as info:
    train.train_and_evaluate(config, str(workdir))
  assert '\n' not in str(info.value)
  return info


@pytest.mark.parametrize('key, value, match', [
    ('bsd.c', 0.0, r'config\.bsd\.c must be > 0'),
    ('bsd.c', -2.0, r'config\.bsd\.c must be > 0'),
    ('bsd.eps', 0.0, r'config\.bsd\.eps must be > 0'),
    ('bsd.gamma', 0.0, r'config\.bsd\.gamma must be in \(0, 1\]'),
    ('bsd.gamma', 1.5, r'config\.bsd\.gamma must be in \(0, 1\]'),
    ('bsd.gamma', 1.0, r'config\.bsd\.c must be set when config\.bsd\.gamma = 1'),
    ('bsd.label_weight_end', 0.0, r'config\.bsd\.label_weight_end'),
    ('bsd.top_k', -1, r'config\.bsd\.top_k must be >= 0'),
    ('bsd.top_k', 11, r'config\.bsd\.top_k = 11 is more than the 10 classes of the data'),
    ('bsd.top_k_shadow', True, r'config\.bsd\.top_k_shadow needs config\.bsd\.top_k > 0'),
    ('bsd.rest_spread', 'even',
     r"config\.bsd\.rest_spread must be one of 'uniform', 'prediction', 'class', 'blend', "
     r"got 'even'"),
    ('method', 'pskdd', r"config\.method: unknown method 'pskdd'"),
    ('model.name', 'resnet19', r"config\.model\.name: unknown model 'resnet19'"),
    ('batch_size', 60, r'config\.batch_size = 60 must be a positive multiple of the device'),
    ('lr_schedule', 'linear', r'config\.lr_schedule'),
    ('eval_every_epochs', 0, r'config\.eval_every_epochs must be >= 1, got 0'),
    ('peer_timeout_s', 5.0, r'config\.peer_timeout_s must be a number of seconds >= 10, got 5'),
    ('label_noise.kind', 'pairflip', r"config\.label_noise\.kind: unknown kind 'pairflip'"),
    ('label_noise.rate', 1.5, r'config\.label_noise\.rate must be in \[0, 1\]'),
    ('label_noise.superclass_csv', '/no/such.csv', r'superclass_csv: /no/such\.csv is not a file'),
    ('data.source', 'hub', r"config\.data\.source: unknown source 'hub'"),
])
def test_bad_config_values(tmp_path, key, value, match):
  config = helpers.load_config('smoke.py')
  node, _, leaf = key.rpartition('.')
  (config[node] if node else config)[leaf] = value
  workdir = tmp_path / 'run'
  _expect_error(config, workdir, match)
  assert not workdir.exists()


def test_class_profiles_are_refused_for_more_classes_than_they_fit(tmp_path):
  config = helpers.load_config('smoke.py')
  config.bsd.top_k, config.bsd.rest_spread = 3, 'class'
  config.data.synthetic.num_classes, config.data.synthetic.num_train = 5000, 64
  _expect_error(config, tmp_path / 'run', r"config\.bsd\.rest_spread = 'class' keeps a \[K, K\] "
                r'table of class profiles on every device, 0\.09 GiB for the 5000 classes of the '
                r'data: at most 1000 classes')
  assert not (tmp_path / 'run').exists()


def test_rest_spread_by_prediction_needs_the_train_pass(tmp_path):
  config = helpers.load_config('smoke.py')
  config.bsd.top_k, config.bsd.rest_spread, config.bsd.prediction_source = 3, 'prediction', \
      'eval_pass'
  _expect_error(config, tmp_path / 'run', r"config\.bsd\.rest_spread = 'prediction' needs "
                r"config\.bsd\.prediction_source = 'train_pass'")
  assert not (tmp_path / 'run').exists()


def test_unknown_tfds_dataset(tmp_path):
  config = helpers.load_config('smoke.py')
  config.data.source, config.data.name = 'tfds', 'no_such_dataset_xyz'
  _expect_error(config, tmp_path / 'run', r"config\.data\.name: unknown tfds dataset")
  assert not (tmp_path / 'run').exists()


def _write_png(path, value=0):
  from PIL import Image
  import numpy as np
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


def _write_bomb(path):
  """A PNG of ~60 bytes whose header claims 20,000 x 20,000 pixels: over Pillow's
  decompression-bomb limit, which Pillow raises as DecompressionBombError, not an OSError."""
  import struct
  import zlib

  def chunk(kind, payload):
    return (struct.pack('>I', len(payload)) + kind + payload
            + struct.pack('>I', zlib.crc32(kind + payload)))

  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 20000, 20000, 8, 2,
                                                                 0, 0, 0)) + chunk(b'IEND', b''))


@pytest.mark.parametrize('layout, match', [
    ({'train/a/1.png': 1, 'train/a/2.png': 'bomb', 'test/a/1.png': 1},
     r'config\.data\.root: cannot read image .*train/a/2\.png: .*decompression-bomb limit'),
    (None, r'config\.data\.root: .* is not a directory'),
    ({}, r'config\.data\.root: .*train is missing'),
    ({'train/a/1.png': 1, 'test/a/1.png': 1, 'train/b/1.png': 1}, r'only in train: \[.b.\]'),
    ({'train/a/1.png': 1, 'train/b/notes.txt': 0, 'test/a/1.png': 1, 'test/b/1.png': 1},
     r'class folder .*train/b holds no images \(png/jpg'),
    ({'train/x.png': 1, 'test/a/1.png': 1}, r'config\.data\.root: .*train has no class folders'),
])
def test_bad_image_folders(tmp_path, layout, match):
  root = tmp_path / 'images'
  if layout is not None:
    root.mkdir()
    for rel, kind in layout.items():
      if kind == 'bomb':
        _write_bomb(str(root / rel))
      elif kind:
        _write_png(str(root / rel))
      else:
        os.makedirs(root / os.path.dirname(rel), exist_ok=True)
        (root / rel).write_text('not an image')
  config = helpers.load_config('smoke.py')
  config.data.source, config.data.root = 'folder', str(root)
  _expect_error(config, tmp_path / 'run', match)
  assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('key, value, match', [
    ('num_train', 512, r'config\.json was written for another run \(data\.synthetic\.num_train: '
     r'saved 1024, now 512; num_epochs: saved 1, now 2\)'),
    pytest.param('num_classes', 5, r'\(data\.synthetic\.num_classes: saved 10, now 5; num_epochs: ',
                 marks=pytest.mark.slow),
])
def test_workdir_made_for_other_data_is_refused_and_left_alone(tmp_path, key, value, match):
  config = helpers.load_config('smoke.py')
  config.num_epochs = 1
  train.train_and_evaluate(config, str(tmp_path))
  snapshot = {p: os.path.getmtime(os.path.join(d, p)) for d, _, files in os.walk(tmp_path)
              for p in files}
  metrics = (tmp_path / 'metrics.jsonl').read_bytes()
  config.num_epochs = 2
  config.data.synthetic[key] = value
  _expect_error(config, tmp_path, match)
  assert (tmp_path / 'metrics.jsonl').read_bytes() == metrics
  assert {p: os.path.getmtime(os.path.join(d, p)) for d, _, files in os.walk(tmp_path)
          for p in files} == snapshot


def test_cli_errors_are_one_line_with_exit_status_2(tmp_path):
  for args, expected in [
      (['--config.bsd.gama=0.9'], "unknown config key gama Did you mean 'gamma'"),
      (['--config.bsd.c=-1'], 'config.bsd.c must be > 0'),
  ]:
    proc = helpers.run_cli(['--config', 'configs/smoke.py', '--workdir', str(tmp_path / 'r')]
                           + args)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2
    errors = [l for l in out.splitlines() if l.startswith('bsd_jax: error:')]
    assert len(errors) == 1 and expected in errors[0], out
    assert 'Traceback' not in out
  assert not (tmp_path / 'r').exists()
