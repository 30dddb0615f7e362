"""python -m bsd_jax.prepare: prepares a tfds dataset offline from its archives in array_record
(real tfds preparation of the imagenet2012 fixture archives), one-line errors otherwise. (Its
--help: tests/test_layout.py.)"""
import numpy as np
import pytest

from bsd_jax.data import tfds_source
from tests import helpers
from tests.test_imagenet_pipeline import NUM_VAL, PER_CLASS, SYNSETS, _write_archives


def _prepare(*args):
  proc = helpers.run_cli(list(args), module='bsd_jax.prepare')
  out, _ = proc.communicate(timeout=300)
  return proc.returncode, out


def _error_line(out):
  lines = [l for l in out.splitlines() if 'bsd_jax.prepare: error:' in l]
  assert len(lines) == 1, out
  assert 'Traceback' not in out, out
  return lines[0]


def test_prepares_imagenet_from_its_archives_in_array_record(tmp_path):
  import tensorflow_datasets as tfds
  manual, data_dir = tmp_path / 'manual', tmp_path / 'tfds'
  manual.mkdir()
  _write_archives(manual, np.random.default_rng(0))
  rc, out = _prepare('imagenet2012', '--data_dir', str(data_dir), '--manual_dir', str(manual))
  assert rc == 0, out
  assert f'Train with --config.data.tfds_data_dir={data_dir}' in out
  builder = tfds.builder('imagenet2012', data_dir=str(data_dir))
  assert builder.is_prepared() and builder.info.file_format.value == 'array_record'
  assert builder.info.splits['train'].num_examples == len(SYNSETS) * PER_CLASS
  assert builder.info.splits['validation'].num_examples == NUM_VAL
  # Read by position, as the streamed source reads it.
  assert len(builder.as_data_source(split='train')) == len(SYNSETS) * PER_CLASS
  rc, out = _prepare('imagenet2012', '--data_dir', str(data_dir), '--manual_dir', str(manual))
  assert rc == 0 and 'already prepared' in out, out


@pytest.mark.parametrize('args,expected', [
    (['imagenet2012'], 'imagenet2012 is downloaded by hand (manual_dir should contain two files: '
                       'ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar'),
    (['imagenet2012', '--manual_dir', '{tmp}/missing'], '--manual_dir {tmp}/missing: no such '
                                                         'directory'),
    (['not_a_dataset'], "NAME: unknown tfds dataset 'not_a_dataset'"),
    ([], 'give one dataset name'),
])
def test_bad_input_is_one_line(tmp_path, args, expected):
  args = [a.format(tmp=tmp_path) for a in args]
  rc, out = _prepare(*args, '--data_dir', str(tmp_path / 'tfds'))
  assert rc == 2, out
  assert expected.format(tmp=tmp_path) in _error_line(out)
  assert not (tmp_path / 'tfds' / 'imagenet2012').exists()


def test_an_archive_with_the_wrong_checksum_is_one_line(tmp_path):
  manual = tmp_path / 'manual'
  manual.mkdir()
  (manual / 'cifar-10-binary.tar.gz').write_bytes(b'not the CIFAR-10 archive')
  rc, out = _prepare('cifar10', '--data_dir', str(tmp_path / 'tfds'), '--manual_dir', str(manual))
  assert rc == 2, out
  assert "an archive of cifar10 does not match tfds's checksum" in _error_line(out)


@pytest.mark.skipif(tfds_source.network_reachable(timeout=2.0), reason='tfds could download')
def test_without_network_or_archives_is_one_line(tmp_path):
  rc, out = _prepare('cifar10', '--data_dir', str(tmp_path / 'tfds'))
  assert rc == 2, out
  assert 'cifar10 cannot be downloaded here (no network)' in _error_line(out)
  assert not (tmp_path / 'tfds').exists(), list((tmp_path / 'tfds').rglob('*'))  # nothing left
  rc, out = _prepare('cifar10', '--data_dir', str(tmp_path / 'tfds'))
  assert 'has no dataset_info.json' not in out and 'Variant folder' not in out, out


def test_a_data_dir_holding_tfrecord_files_is_one_line(tmp_path):
  from tensorflow_datasets import testing as tfds_testing  # registers dummy_mnist

  from bsd_jax import prepare
  from bsd_jax.errors import UserError
  tfds_testing.DummyMnist(data_dir=str(tmp_path)).download_and_prepare()  # tfrecord: tfds build
  with pytest.raises(UserError, match=r'already holds dummy_mnist as tfrecord files .*another '
                     r'--data_dir, or convert them: tfds convert_format') as info:
    prepare.prepare('dummy_mnist', str(tmp_path))
  assert '\n' not in str(info.value)
