"""python -m bsd_jax.prepare NAME --data_dir D [--manual_dir M]

Prepares the tfds dataset NAME in D, in the array_record format: the streamed source reads it
by position, and every reader of bsd_jax reads it without TensorFlow (tfds's data sources).
Datasets that tfds downloads itself need internet here, or their archives in M (checked against
tfds's checksums); datasets downloaded by hand (imagenet2012) need their archives in M. Then
train with --config.data.tfds_data_dir=D. Preparing needs TensorFlow (tfds writes the records
with it): `pip install -e ".[prepare]"`; training from the prepared files does not.

Bad input (unknown NAME, a missing or empty M, no network, an archive with the wrong checksum)
is one line on stderr and exit status 2; tfds prints its own progress bars while it works."""
import logging
import os

from absl import flags

from bsd_jax import cli
from bsd_jax.data import tfds_common, tfds_source
from bsd_jax.errors import UserError, fail

_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Where the prepared dataset goes (tfds '
                                'data_dir); train with --config.data.tfds_data_dir=DATA_DIR.')
_MANUAL_DIR = flags.DEFINE_string('manual_dir', None, 'Archives downloaded by hand (or '
                                  'downloaded elsewhere), read instead of the network.')

PROG = 'bsd_jax.prepare'


def _check_manual_dir(manual_dir):
  if manual_dir is None:
    return
  if not os.path.isdir(manual_dir):
    raise UserError(f'--manual_dir {manual_dir}: no such directory')
  if not os.listdir(manual_dir):
    raise UserError(f'--manual_dir {manual_dir}: the directory is empty')


def _directories(top):
  return {root for root, _, _ in os.walk(top)}


def prepare(name: str, data_dir: str, manual_dir: str = None) -> str:
  """Prepare tfds dataset `name` in `data_dir` (array_record); returns the dataset's directory.
  Already prepared: nothing to do. On failure the empty directories it made are removed (tfds
  makes <data_dir>/<name>/<version> at once, and warns about it at the next start)."""
  if os.path.exists(data_dir) and not os.path.isdir(data_dir):
    raise UserError(f'--data_dir {data_dir}: exists and is not a directory')
  before = _directories(data_dir)

  def tidy():  # a builder tfds opens again finds that directory empty, and warns about it
    for made in sorted(_directories(data_dir) - before, key=len, reverse=True):
      if not os.listdir(made):
        os.rmdir(made)

  try:
    return _prepare(name, data_dir, manual_dir, tidy)
  except UserError:
    tidy()
    raise


def _prepare(name, data_dir, manual_dir, tidy):
  _check_manual_dir(manual_dir)
  builder = tfds_common.open_builder(name, data_dir, what='NAME')
  if builder.is_prepared():
    if not tfds_common.random_access(builder):
      raise UserError(f'{builder.data_dir} already holds {name} as tfrecord files (tfds build); '
                      'give another --data_dir, or convert them: tfds convert_format '
                      f'--dataset_version_dir={builder.data_dir} --out_file_format=array_record')
    logging.info('%s is already prepared in %s: nothing to do', name, builder.data_dir)
    return str(builder.data_dir)
  tidy()
  builder = tfds_common.open_builder(name, data_dir, what='NAME', file_format='array_record')
  tfds_common.require_tensorflow(f'preparing {name}')
  by_hand = tfds_common.manual_instructions(builder)
  if by_hand and manual_dir is None:
    raise UserError(f'{name} is downloaded by hand ({by_hand}): put the archives in a directory '
                    'M and pass --manual_dir M')
  if not by_hand and manual_dir is None and not tfds_source.network_reachable():
    raise UserError(f'{name} cannot be downloaded here (no network): run this command where '
                    f'there is internet and copy {data_dir} here, or put the archives tfds '
                    'downloads in a directory M and pass --manual_dir M')
  import tensorflow_datasets as tfds
  from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError
  logging.info('Preparing %s in %s (array_record)', name, builder.data_dir)
  try:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  except NonMatchingChecksumError as e:
    raise UserError(f'an archive of {name} does not match tfds\'s checksum ('
                    f'{" ".join(str(e).split())[:200]}): download it again') from None
  except AssertionError as e:  # tfds: 'Manual directory ... does not exist or is empty', ...
    raise UserError(f'{name}: {" ".join(str(e).split())[:300]}') from None
  except (ConnectionError, OSError) as e:
    raise UserError(f'preparing {name} failed: {" ".join(str(e).split())[:300]}') from None
  splits = {k: v.num_examples for k, v in builder.info.splits.items()}
  logging.info('Prepared %s in %s: %s. Train with --config.data.tfds_data_dir=%s', name,
               builder.data_dir, splits, data_dir)
  return str(builder.data_dir)


def main(argv):
  names = argv[1:]
  if len(names) != 1:
    fail(PROG, 'give one dataset name (e.g. python -m bsd_jax.prepare cifar100 --data_dir D)')
  if not _DATA_DIR.value:
    fail(PROG, '--data_dir is required')
  logging.getLogger().setLevel(logging.INFO)
  try:
    prepare(names[0], _DATA_DIR.value, _MANUAL_DIR.value)
  except UserError as e:
    fail(PROG, str(e), e.exit_status)


if __name__ == '__main__':
  cli.run(main)
