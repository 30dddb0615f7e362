"""A folder of ordinary photos (config.data.source = 'folder_stream'): images of every size and
format read per step through the streamed pipeline; the folder layout and its checks
(bsd_jax/data/folder_files.py), shared with the in-memory 'folder' source."""
import os
import socket
import subprocess
import sys

import chex
import numpy as np
import pytest

from bsd_jax import data, evaluate, train
from bsd_jax.data import folder_files, images
from bsd_jax.errors import UserError
from tests import helpers, photo_folder

CLASSES, PER_CLASS, EPOCHS = ('cat', 'dog', 'fox'), 8, 2  # batch 8: 3 steps an epoch


def _config(root, **overrides):
  """The smoke config on a photo folder, read at 16 x 16, batch 8, 2 epochs."""
  config = helpers.load_config('smoke.py')
  config.data.source, config.data.root = 'folder_stream', str(root)
  config.data.stream.image_size, config.data.stream.eval_resize = 16, 18
  config.data.stream.worker_count, config.data.stream.worker_threads = 0, 1
  config.data.augment = True
  config.batch_size, config.eval_batch_size = 8, 8
  config.num_epochs, config.log_every_steps = EPOCHS, 1
  return helpers.override(config, overrides)


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
  root = tmp_path_factory.mktemp('photos')
  photo_folder.make(str(root), CLASSES, PER_CLASS)
  return root


@pytest.fixture(scope='module')
def reference(photos, tmp_path_factory):
  """An uninterrupted run on the test process's 8 devices."""
  workdir = tmp_path_factory.mktemp('reference')
  return workdir, train.train_and_evaluate(_config(photos), str(workdir))


@pytest.mark.parametrize('kind', photo_folder.KINDS)
def test_every_format_and_mode_is_read_upright_in_rgb(tmp_path, kind):
  """An image whose top-left quarter is bright and the rest dark, 30 wide and 20 high, comes
  back 20 x 30 x 3 with the bright quarter where it was (an EXIF-rotated JPEG turned back)."""
  pixels = np.full((20, 30, 3), 20, np.uint8)
  pixels[:10, :15] = 230
  path = photo_folder.write_image(str(tmp_path / 'image'), kind, pixels)
  got = images.decode_file(path, 'test')
  assert got.shape == (20, 30, 3) and got.dtype == np.uint8
  assert images.check(path) == (30, 20)
  assert got[:10, :15].mean() > 200 and got[10:, :].mean() < 50 and got[:, 15:].mean() < 50


def test_files_classes_and_the_test_split_from_test_or_val(tmp_path):
  photo_folder.make(str(tmp_path), ('b', 'a'), 2, splits=('train', 'val'))
  (tmp_path / 'train' / 'a' / '.hidden.jpg').write_bytes(b'')  # ignored, like notes.txt
  os.makedirs(tmp_path / 'train' / '.thumbnails')
  files = folder_files.list_files(_config(tmp_path).data)
  assert files.classes == ('a', 'b')
  assert [os.path.splitext(os.path.relpath(p, tmp_path))[0] for p in files.paths['test']] == [
      'val/a/000', 'val/a/001', 'val/b/000', 'val/b/001']
  np.testing.assert_array_equal(files.labels['train'], [0, 0, 1, 1])
  os.rename(tmp_path / 'val', tmp_path / 'test')
  assert os.path.relpath(folder_files.list_files(_config(tmp_path).data).paths['test'][0],
                         tmp_path).startswith('test/a/000')


def test_a_test_fraction_holds_out_the_same_share_of_each_class_in_every_run(tmp_path):
  photo_folder.make(str(tmp_path), ('a', 'b'), 10, splits=('train',))
  with pytest.raises(UserError, match=r'has no test/ or val/ folder; .*config\.data\.'
                                      r'test_fraction'):
    folder_files.list_files(_config(tmp_path).data)
  d = _config(tmp_path, **{'data.test_fraction': 0.3}).data
  files = folder_files.list_files(d)
  assert len(files.paths['train']) == 14 and len(files.paths['test']) == 6
  np.testing.assert_array_equal(files.labels['test'], [0, 0, 0, 1, 1, 1])
  assert not set(files.paths['train']) & set(files.paths['test'])
  assert folder_files.list_files(d).paths == files.paths
  assert files.name.endswith('[test_fraction=0.3]')
  os.makedirs(tmp_path / 'test' / 'a')
  with pytest.raises(UserError, match=r'test_fraction = 0\.3: .* has its own test/ split'):
    folder_files.list_files(d)


def test_images_of_mixed_sizes_in_the_in_memory_folder_source_point_to_the_streamed_one(
    photos):
  with pytest.raises(UserError, match=r"images differ in size .*config\.data\.source = "
                                      r"'folder_stream'"):
    data.load(_config(photos, **{'data.source': 'folder'}))


@pytest.mark.parametrize('source', ['folder_stream', 'folder'])
@pytest.mark.parametrize('kind', ['broken', 'truncated', 'truncated_png', 'empty', 'oversized'])
def test_an_image_that_cannot_be_trained_on_is_one_line_before_the_workdir(tmp_path, kind,
                                                                           source):
  root = tmp_path / 'photos'
  # One image size: the in-memory source would otherwise stop at the first size difference.
  photo_folder.make(str(root), ('a', 'b'), 3, sizes=(20, 21))
  bad = root / 'train' / 'b' / ('bad.png' if kind in ('truncated_png', 'oversized') else 'bad.jpg')
  photo_folder.bad_image(str(bad), kind)
  why = {'broken': 'not an image Pillow can read|cannot identify image file',
         'truncated': 'truncated', 'truncated_png': 'truncated', 'empty': 'empty file|cannot '
         'identify image file', 'oversized': 'decompression bomb'}[kind]
  with pytest.raises(UserError, match=rf'config\.data\.root: cannot read image \S*{bad.name}: '
                                      rf'.*({why})') as info:
    train.train_and_evaluate(_config(root, **{'data.source': source}), str(tmp_path / 'run'))
  assert '\n' not in str(info.value)
  assert not (tmp_path / 'run').exists()


def test_a_photo_folder_trains_evaluates_and_logs(reference):
  workdir, result = reference
  assert result['stopped_by'] is None
  records = helpers.read_metrics(workdir)
  assert [(r['split'], r['step']) for r in records] == [
      ('train', 3), ('test', 3), ('train', 6), ('test', 6)]
  assert all(np.isfinite(r['loss']) for r in records if r['split'] == 'train')
  record = evaluate.evaluate(str(workdir))
  assert record['num_samples'] == len(CLASSES) * PER_CLASS
  assert record['metrics']['nll'] == pytest.approx(records[-1]['nll'], rel=1e-5)


def test_a_stopped_photo_folder_run_resumes_bit_for_bit(photos, reference, tmp_path,
                                                        monkeypatch):
  """A stop after step 4 (inside epoch 2), then a restart: the stream resumes at step 4 and
  the run ends where the uninterrupted one did."""
  helpers.stop_after_step(monkeypatch, 4)
  assert train.train_and_evaluate(_config(photos), str(tmp_path))['stopped_by'] == 'SIGTERM'
  monkeypatch.undo()
  train.train_and_evaluate(_config(photos), str(tmp_path))
  state_a, step_a = helpers.read_checkpoint_state(str(reference[0]))
  state_b, step_b = helpers.read_checkpoint_state(str(tmp_path))
  assert step_a == step_b == EPOCHS * len(CLASSES) * PER_CLASS // 8
  chex.assert_trees_all_equal(state_a, state_b)
  assert helpers.read_metrics(reference[0]) == helpers.read_metrics(tmp_path)


def _launch(processes, devices, root, workdir, *extra):
  with socket.socket() as sock:
    sock.bind(('127.0.0.1', 0))
    env = dict(os.environ, PORT=str(sock.getsockname()[1]), PYTHON=sys.executable)
  overrides = [f'--config.{k}={v}' for k, v in (
      ('data.source', 'folder_stream'), ('data.root', root), ('data.stream.image_size', 16),
      ('data.stream.eval_resize', 18), ('data.augment', True), ('batch_size', 8),
      ('eval_batch_size', 8), ('num_epochs', EPOCHS), ('log_every_steps', 1))]
  proc = subprocess.run(['bash', 'launch/cpu_processes.sh', str(processes), str(devices),
                         'configs/smoke.py', str(workdir)] + overrides + list(extra),
                        cwd=helpers.REPO, env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True, timeout=400)
  assert proc.returncode == 0, proc.stdout
  return helpers.read_checkpoint_state(str(workdir)), helpers.read_metrics(workdir)


@pytest.mark.slow  # two jobs of fresh processes; the in-memory source's check runs by default
def test_two_processes_of_one_device_end_like_one_process_of_two(photos, tmp_path):
  """Each process checks half of the files and reads its rows of every batch (in a grain
  worker process, against threads in the reference): the same end as one process."""
  one = _launch(1, 2, photos, tmp_path / 'one')
  two = _launch(2, 1, photos, tmp_path / 'two', '--config.data.stream.worker_count=1')
  chex.assert_trees_all_close(one[0][0], two[0][0], rtol=1e-5, atol=1e-6)
  assert one[0][1] == two[0][1] == EPOCHS * 3
  assert [(r['split'], r['step']) for r in one[1]] == [(r['split'], r['step']) for r in two[1]]
  for a, b in zip(one[1], two[1]):
    assert a.get('accuracy') == b.get('accuracy')
    assert a.get('loss', a.get('nll')) == pytest.approx(b.get('loss', b.get('nll')), rel=1e-4)
