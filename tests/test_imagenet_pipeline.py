"""The streamed ImageNet pipeline (configs/imagenet.py, source 'tfds_stream') on a tiny real
imagenet2012: tfds's own builder prepares it offline, as `bsd_jax.prepare imagenet2012 --manual_dir`
would, from archives laid out like ImageNet's (a train tar of per-synset tars, a flat val tar)
holding a few small random JPEGs.

(tfds.testing.mock_data is not used: in tfds 4.9.10 its data sources report the dataset as not
prepared, with no splits, and their __getitems__ fails, so the checks and the batched reads
under test could not run on it.)
"""
import json
import io
import socket
import tarfile
import time

import chex
import jax
import numpy as np
import pytest
from PIL import Image

from bsd_jax import data, metrics, saved_run, sharding, train
from bsd_jax.data import order, stream_batches
from bsd_jax.methods import bsd
from bsd_jax.errors import UserError
from tests import helpers

SYNSETS = ('n01440764', 'n01443537', 'n01484850')  # classes 0, 1, 2 of imagenet2012
PER_CLASS, NUM_VAL = 8, 10                         # 24 train, 10 validation images
STEPS_PER_EPOCH, EPOCHS = 3, 2                     # batch 8


def _jpeg(rng):
  h, w = rng.integers(20, 40, 2)
  buf = io.BytesIO()
  Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, 'JPEG')
  return buf.getvalue()


def _add(tar, name, payload):
  info = tarfile.TarInfo(name)
  info.size = len(payload)
  tar.addfile(info, io.BytesIO(payload))


def _write_archives(manual_dir, rng):
  with tarfile.open(manual_dir / 'ILSVRC2012_img_train.tar', 'w') as outer:
    for synset in SYNSETS:
      inner = io.BytesIO()
      with tarfile.open(fileobj=inner, mode='w') as tar:
        for i in range(PER_CLASS):
          _add(tar, f'{synset}_{i}.JPEG', _jpeg(rng))
      _add(outer, f'{synset}.tar', inner.getvalue())
  with tarfile.open(manual_dir / 'ILSVRC2012_img_val.tar', 'w') as tar:
    for i in range(NUM_VAL):
      _add(tar, f'ILSVRC2012_val_{i + 1:08d}.JPEG', _jpeg(rng))


@pytest.fixture(scope='module')
def imagenet_dir(tmp_path_factory):
  """A prepared imagenet2012 (array_record) in a temporary data_dir."""
  import tensorflow_datasets as tfds
  manual = tmp_path_factory.mktemp('manual')
  _write_archives(manual, np.random.default_rng(0))
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  builder = tfds.builder('imagenet2012', data_dir=data_dir, file_format='array_record')
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  return data_dir


def _config(data_dir, **overrides):
  """configs/imagenet.py shrunk: 16x16 crops, a small float32 CNN, batch 8, 2 epochs, no
  grain worker processes."""
  config = helpers.load_config('imagenet.py')
  config.data.tfds_data_dir = data_dir
  config.model.name, config.model.cnn_widths = 'cnn', (8, 16)
  config.compute_dtype = 'float32'  # bf16 on CPU: slower, and too coarse to compare 1 vs 2 jobs
  config.data.stream.image_size, config.data.stream.eval_resize = 16, 18
  config.data.stream.worker_count, config.data.stream.worker_threads = 0, 1
  config.batch_size, config.eval_batch_size = 8, 8
  config.num_epochs, config.log_every_steps = EPOCHS, 1
  return helpers.override(config, overrides)


@pytest.fixture(scope='module')
def reference(imagenet_dir, tmp_path_factory):
  """An uninterrupted streamed run on 8 devices."""
  workdir = tmp_path_factory.mktemp('reference')
  result = train.train_and_evaluate(_config(imagenet_dir), str(workdir))
  return workdir, result


def test_streamed_run_trains_evaluates_and_logs(reference):
  workdir, result = reference
  assert jax.device_count() == 8 and result['stopped_by'] is None
  records = helpers.read_metrics(workdir)
  assert [(r['split'], r['epoch'], r['step']) for r in records] == [
      ('train', 1, 3), ('test', 1, 3), ('train', 2, 6), ('test', 2, 6)]
  assert all(np.isfinite(r['loss']) for r in records if r['split'] == 'train')
  assert {'accuracy', 'nll', 'ece', 'brier'} <= set(records[-1])
  assert (workdir / 'config.json').exists()


def test_streamed_run_with_several_steps_per_call(imagenet_dir, reference, tmp_path):
  """Calls of 2 and 1 steps (3 an epoch) carry K = 2 steps of streamed images: the records of
  the one-step reference, to float rounding (another compiled program: docs/training.md)."""
  config = _config(imagenet_dir, steps_per_call=2, log_every_steps=2)
  train.train_and_evaluate(config, str(tmp_path))
  got, expected = helpers.read_metrics(tmp_path), helpers.read_metrics(reference[0])
  assert [(r['split'], r['step'], sorted(r)) for r in got] == [
      (r['split'], r['step'], sorted(r)) for r in expected]
  for g, e in zip(got, expected):
    np.testing.assert_allclose([g[k] for k in sorted(e) if isinstance(e[k], float)],
                               [e[k] for k in sorted(e) if isinstance(e[k], float)],
                               rtol=1e-3, atol=1e-4)


def test_dataset_ids_labels_and_sizes(imagenet_dir):
  ds = data.load(_config(imagenet_dir))
  assert ds.streamed and ds.num_classes == 1000
  assert ds.num_train == len(SYNSETS) * PER_CLASS and ds.test_labels.shape == (NUM_VAL,)
  # Sample id = position in the split: the label of id i is record i's label.
  np.testing.assert_array_equal(
      ds.train_labels, [ds.train_source[i]['label'] for i in range(ds.num_train)])
  assert sorted(set(ds.train_labels.tolist())) == [0, 1, 2]
  assert ds.image_shape == (16, 16, 3)
  # A class-balanced subset renumbers the ids and reads the records it kept.
  sub = data.load(_config(imagenet_dir, **{'data.train_subset_per_class': 2}))
  assert sub.num_train == 6 and np.bincount(sub.train_labels).tolist() == [2, 2, 2]
  np.testing.assert_array_equal(sub.train_labels, ds.train_labels[sub.train_keys])


def test_validation_split_of_the_streamed_source(imagenet_dir, tmp_path):
  """Held out of the train records before the subset, class-balanced; the final evaluation
  streams it and fits T on it."""
  ds = data.load(_config(imagenet_dir))
  held = data.load(_config(imagenet_dir, **{'data.val_size': 6,
                                             'data.train_subset_per_class': 4}))
  assert np.bincount(held.val_labels).tolist() == [2, 2, 2]
  assert np.bincount(held.train_labels).tolist() == [4, 4, 4]
  assert not set(held.val_keys) & set(held.train_keys)
  np.testing.assert_array_equal(held.val_labels, ds.train_labels[held.val_keys])
  config = _config(imagenet_dir, **{'data.val_size': 6})
  train.train_and_evaluate(config, str(tmp_path))
  with open(tmp_path / 'eval' / 'metrics.json') as f:
    record = json.load(f)
  assert record['val_samples'] == 6 and record['num_samples'] == NUM_VAL
  # T fitted on the streamed validation split: the checkpoint's validation logits, streamed
  # again here, give the same T (or no T fits them, and the record says None).
  config, ds, exp, state, _ = saved_run.load_checkpoint(str(tmp_path))
  val_logits, _ = saved_run.checkpoint_run(config, ds, exp).predictions(state, 'val')
  assert val_logits.shape[0] == 6
  try:
    expected = metrics.fit_temperature(val_logits, ds.val_labels)
  except ValueError:
    expected = None
  assert (record['temperature'] is None) == (expected is None)
  if expected is not None:
    assert record['temperature'] == pytest.approx(expected, rel=1e-5)


def test_each_process_reads_exactly_its_rows_of_the_global_batch(imagenet_dir):
  """process_positions against jax's own batch sharding, for processes owning devices in
  blocks or interleaved; the records each process reads; images independent of the split."""
  mesh = sharding.make_mesh()
  devices = list(mesh.devices.flat)
  batch, step = 16, 1  # 24 samples: step 1 is the epoch's last batch, half of it wrap-around
  index_map = sharding.batch_sharded(mesh).devices_indices_map((batch,))
  ds = data.load(_config(imagenet_dir))
  whole = None
  for owners in ([0] * 4 + [1] * 4, [0, 1] * 4, [0, 0, 1, 1, 2, 2, 3, 3]):
    assembled = np.zeros((batch, 16, 16, 3), np.uint8)
    seen = []
    for p in sorted(set(owners)):
      rows = sharding.process_positions(batch, owners, p)
      held = sorted(r for d, o in zip(devices, owners) if o == p
                    for r in range(*index_map[d][0].indices(batch)))
      assert rows.tolist() == held
      seen.extend(rows.tolist())
      read = []

      class Spy(stream_batches.Records):
        def __call__(self, ids):
          read.append(np.array(ids))
          return super().__call__(ids)

      fn = stream_batches.TrainImages(Spy(ds.train_source, ds.image_key), seed=0,
                                      num_train=ds.num_train, batch_size=batch, positions=rows,
                                      size=16, resize=18, augment=True)
      assembled[rows] = fn(step)['images']
      global_index = order.step_batch(0, step, ds.num_train, batch)['index']
      np.testing.assert_array_equal(read[0], global_index[rows])
    assert sorted(seen) == list(range(batch))  # disjoint parts whose union is the batch
    if whole is None:
      whole = stream_batches.TrainImages(
          stream_batches.Records(ds.train_source, ds.image_key), seed=0,
          num_train=ds.num_train, batch_size=batch, positions=np.arange(batch), size=16,
          resize=18, augment=True)(step)['images']
    np.testing.assert_array_equal(assembled, whole)  # augmentation keyed by sample, not process


@pytest.mark.parametrize('kind', ['previous_batch', 'class_pair'])
def test_extra_views_read_their_records(imagenet_dir, kind):
  """DLB reads the previous step's batch again, CS-KD a same-class partner of every sample."""
  ds = data.load(_config(imagenet_dir))
  read = []

  class Spy(stream_batches.Records):
    def __call__(self, ids):
      read.append(np.array(ids))
      return super().__call__(ids)

  partners = order.ClassPartners(ds.train_labels) if kind == 'class_pair' else None
  fn = stream_batches.TrainImages(Spy(ds.train_source, ds.image_key), seed=0,
                                  num_train=ds.num_train, batch_size=8, positions=np.arange(8),
                                  size=16, resize=18, augment=True, extra_view=kind,
                                  partners=partners)
  out = fn(4)
  assert out['extra_images'].shape == out['images'].shape == (8, 16, 16, 3)
  expected = order.step_batch(0, 4, ds.num_train, 8, kind, partners)['extra_index']
  np.testing.assert_array_equal(read[1], expected)
  if kind == 'previous_batch':
    np.testing.assert_array_equal(read[1], order.step_batch(0, 3, ds.num_train, 8)['index'])
  else:
    np.testing.assert_array_equal(ds.train_labels[read[1]], ds.train_labels[read[0]])


def test_label_noise_and_eval_pass_refresh_stream(imagenet_dir, tmp_path):
  """Noisy labels live on the devices like the clean ones; BSD's eval_pass streams the training
  set in order with the evaluation view."""
  config = _config(imagenet_dir, **{'num_epochs': 1, 'bsd.prediction_source': 'eval_pass',
                                    'label_noise.kind': 'symmetric', 'label_noise.rate': 0.5})
  train.train_and_evaluate(config, str(tmp_path))
  record = helpers.read_metrics(tmp_path)[0]
  assert record['split'] == 'train' and 'accuracy_clean_labels' in record
  assert (tmp_path / 'noisy_labels.npz').exists()
  # The ordered pass updated every row once: alpha = gamma alpha0 + p sums to this.
  hp = bsd.hparams(config)
  expected = hp['gamma'] * (hp['c'] + 999 * hp['eps']) + 1
  state, _ = helpers.read_checkpoint_state(str(tmp_path))
  np.testing.assert_allclose(state['alpha'][:len(SYNSETS) * PER_CLASS].sum(1), expected,
                             rtol=1e-5)


def test_grain_worker_processes_give_the_same_batches(imagenet_dir):
  ds = data.load(_config(imagenet_dir))
  fn = stream_batches.TrainImages(stream_batches.Records(ds.train_source, ds.image_key),
                                  seed=0, num_train=ds.num_train, batch_size=8,
                                  positions=np.arange(8), size=16, resize=18, augment=True)
  outs = {}
  for workers in (0, 2):
    it = stream_batches.iterate(fn, 1, 5, workers, 1)
    outs[workers] = [b['images'] for b in it]
    stream_batches.close_iterator(it)
  assert len(outs[0]) == 4
  for a, b in zip(outs[0], outs[2]):
    np.testing.assert_array_equal(a, b)


def test_stopped_and_resumed_streamed_run_ends_bit_exact(imagenet_dir, reference, tmp_path,
                                                         monkeypatch):
  """A stop after step 4 (inside epoch 2), then a restart: the stream resumes at step 4."""
  helpers.stop_after_step(monkeypatch, 4)
  first = train.train_and_evaluate(_config(imagenet_dir), str(tmp_path))
  assert first['stopped_by'] == 'SIGTERM'
  assert helpers.read_checkpoint_state(str(tmp_path))[1] == 4
  monkeypatch.undo()
  train.train_and_evaluate(_config(imagenet_dir), str(tmp_path))
  state_a, step_a = helpers.read_checkpoint_state(str(reference[0]))
  state_b, step_b = helpers.read_checkpoint_state(str(tmp_path))
  assert step_a == step_b == EPOCHS * STEPS_PER_EPOCH
  chex.assert_trees_all_equal(state_a, state_b)
  assert helpers.read_metrics(reference[0]) == helpers.read_metrics(tmp_path)


def test_evaluate_command_streams_the_test_split(reference):
  from bsd_jax import evaluate
  workdir, _ = reference
  record = evaluate.evaluate(str(workdir))
  last_test = helpers.read_metrics(workdir, 'test')[-1]
  assert record['num_samples'] == NUM_VAL
  assert record['metrics']['nll'] == pytest.approx(last_test['nll'], rel=1e-5)


def test_shift_suite_sees_the_sets_through_the_streamed_evaluation_view(imagenet_dir, reference,
                                                                       tmp_path):
  """ImageNet-V2 and -A (tests/tfds_fixtures.py) on the streamed run: each JPEG resized to
  eval_resize 18 on its shorter side and centre-cropped to 16, as the test split is; the same
  suite may run during training (the config check lets it through on a streamed source)."""
  from bsd_jax import config_check, evaluate, inference
  from bsd_jax.data import host_augment
  from bsd_jax.evaluation import common, imagenet_classes
  from tests import tfds_fixtures
  workdir, _ = reference
  data_dir, files = tfds_fixtures.imagenet_shift_sets(str(tmp_path), [6, 11, 13, 11, 6])
  record = evaluate.evaluate(str(workdir), 'shift', sets=['imagenet_v2', 'imagenet_a'],
                             data_dir=data_dir)
  assert record['clean']['nll'] == pytest.approx(
      helpers.read_metrics(workdir, 'test')[-1]['nll'], rel=1e-5)
  classifier = inference.Classifier(str(workdir))
  for name in ('imagenet_v2', 'imagenet_a'):
    views = np.stack([host_augment.eval_view(payload, 16, 18)
                      for payload, _ in files[name].values()])
    labels = np.array([label for _, label in files[name].values()])
    logits = classifier.probabilities(views)[0].astype(np.float64)
    if name == 'imagenet_a':
      logits = logits[:, list(imagenet_classes.IMAGENET_A_CLASSES)]
      labels = np.searchsorted(imagenet_classes.IMAGENET_A_CLASSES, labels)
    expected = common.summary(metrics.softmax(logits), labels)
    for key in ('accuracy', 'nll', 'ece'):
      assert record['results'][name][key] == pytest.approx(expected[key], rel=1e-4), (name, key)
  config = _config(imagenet_dir, **{'evals.shift.every_epochs': 1,
                                     'evals.shift.sets': 'imagenet_v2',
                                     'evals.shift.data_dir': data_dir})
  config_check.check_config(config, num_devices=8)
  # CIFAR-C needs the test split in memory: refused on a streamed run, as evaluate and in training.
  cifar_c = tmp_path / 'cifar_c'
  cifar_c.mkdir()
  np.save(cifar_c / 'labels.npy', np.zeros(5, np.int64))
  np.save(cifar_c / 'fog.npy', np.zeros((5, 32, 32, 3), np.uint8))
  match = r'--corruptions npy:.*: CIFAR-10-C and CIFAR-100-C need a test split held in memory'
  with pytest.raises(UserError, match=match):
    evaluate.evaluate(str(workdir), 'corruptions', source=f'npy:{cifar_c}', names=['fog'])
  config = _config(imagenet_dir, **{'evals.corruptions.every_epochs': 1,
                                     'evals.corruptions.source': f'npy:{cifar_c}',
                                     'evals.corruptions.names': 'fog'})
  with pytest.raises(UserError, match='config.evals.corruptions: ' + match):
    config_check.check_config(config, num_devices=8)


def test_not_prepared_imagenet_is_one_line_and_fast(tmp_path):
  config = _config(str(tmp_path / 'empty'))
  start = time.monotonic()
  with pytest.raises(UserError, match=r"'imagenet2012' is not prepared .*ILSVRC2012_img_train\.tar"
                     r".*python -m bsd_jax.prepare imagenet2012 --manual_dir M --data_dir D"
                     r".*config\.data\.tfds_data_dir") as info:
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert time.monotonic() - start < 30
  assert '\n' not in str(info.value)
  assert not (tmp_path / 'run').exists()


def test_tfrecord_dataset_is_refused_with_the_conversion_command(tmp_path):
  from tensorflow_datasets import testing as tfds_testing
  tfds_testing.DummyMnist(data_dir=str(tmp_path)).download_and_prepare()  # tfrecord files
  config = _config(str(tmp_path), **{'data.name': 'dummy_mnist'})
  with pytest.raises(UserError, match=r'holds tfrecord files; convert them with `tfds '
                                      r'convert_format .*--out_file_format=array_record`'):
    data.load(config)


def test_supcon_is_refused_on_the_streamed_source(tmp_path):
  config = _config(str(tmp_path), **{'supcon.weight': 0.5})
  with pytest.raises(UserError, match=r"config\.supcon is not supported with "
                                      r"config\.data\.source = 'tfds_stream'"):
    train.train_and_evaluate(config, str(tmp_path / 'run'))


@pytest.mark.slow  # the same check for the in-memory source runs by default (test_multiprocess)
def test_two_processes_stream_like_one(imagenet_dir, reference, tmp_path):
  """launch/cpu_processes.sh 2 4: each process reads half of the labels (the cache is removed
  first) and streams half of every batch; the run ends like the 1-process, 8-device one."""
  import glob
  import os
  import subprocess
  import sys
  caches = os.path.join(imagenet_dir, 'imagenet2012', '*', 'bsd_jax_labels.*.npy')
  for path in glob.glob(caches):
    os.remove(path)
  workdir = str(tmp_path / 'two')
  overrides = [f'--config.data.tfds_data_dir={imagenet_dir}', '--config.model.name=cnn',
               '--config.model.cnn_widths=(8,16)', '--config.compute_dtype=float32',
               '--config.data.stream.image_size=16', '--config.data.stream.eval_resize=18',
               '--config.data.stream.worker_count=0', '--config.data.stream.worker_threads=1',
               '--config.batch_size=8', '--config.eval_batch_size=8',
               f'--config.num_epochs={EPOCHS}', '--config.log_every_steps=1']
  with socket.socket() as sock:
    sock.bind(('127.0.0.1', 0))
    env = dict(os.environ, PORT=str(sock.getsockname()[1]), PYTHON=sys.executable)
  proc = subprocess.run(['bash', 'launch/cpu_processes.sh', '2', '4', 'configs/imagenet.py',
                         workdir] + overrides, cwd=helpers.REPO, env=env, text=True,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
  assert proc.returncode == 0, proc.stdout
  assert len(glob.glob(caches)) == 2  # written again, by process 0
  state_a, step_a = helpers.read_checkpoint_state(str(reference[0]))
  state_b, step_b = helpers.read_checkpoint_state(workdir)
  assert step_a == step_b == EPOCHS * STEPS_PER_EPOCH
  chex.assert_trees_all_close(state_a, state_b, rtol=1e-5, atol=1e-6)
