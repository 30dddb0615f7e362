"""What every tfds reader shares: opening a builder, checking the config's splits and features,
and reading columns of a split in batches (in-memory source, streamed source, OOD and corruption
sets). tensorflow_datasets is imported only when one of these runs; TensorFlow only to read a
dataset prepared as tfrecord (array_record files, as bsd_jax.prepare writes them, are read by
position through tfds's data sources, without it)."""
import importlib.util
import logging

import numpy as np

from bsd_jax.errors import UserError


def _not_unprepared_warning(record):
  return 'has no dataset_info.json' not in record.getMessage()


def open_builder(name, data_dir, what='config.data.name', **kwargs):
  """tfds.builder(name, data_dir=data_dir, **kwargs); UserError naming `what` for an unknown
  name. tfds's warning that a dataset is not prepared yet ('Variant folder ... has no
  dataset_info.json') is dropped: the caller's own line says what to do."""
  import tensorflow_datasets as tfds
  logging.getLogger('absl').addFilter(_not_unprepared_warning)  # once: filters are a set
  try:
    return tfds.builder(name, data_dir=data_dir, **kwargs)
  except tfds.core.registered.DatasetNotFoundError:
    raise UserError(f'{what}: unknown tfds dataset {name!r}') from None
  except ValueError as e:  # an unknown builder config ('BuilderConfig v9 not found. ...')
    dataset, _, config = name.partition('/')
    known = [c.name for c in getattr(tfds.builder_cls(dataset), 'BUILDER_CONFIGS', [])]
    if config and known and config.split(':')[0] not in known:
      raise UserError(f'{what}: tfds {dataset} has no config {config!r} (it has '
                      f'{", ".join(known[:20])}{" ..." if len(known) > 20 else ""})') from None
    raise UserError(f'{what}: tfds {name!r}: {" ".join(str(e).split())[:300]}') from None


def check_splits_and_features(builder, d, slices: bool):
  """UserError naming config.data.{train_split,test_split,image_key,label_key} when the prepared
  dataset lacks it. `slices`: whether a split may be a tfds slice such as 'train[:90%]' (the
  streamed source; the in-memory source reads its own slices of a whole split)."""
  for key in ('train_split', 'test_split'):
    try:
      if not slices and d[key] not in builder.info.splits:
        raise KeyError(d[key])
      builder.info.splits[d[key]].num_examples
    except (KeyError, ValueError, AssertionError):
      raise UserError(f'config.data.{key}: {d.name} has no split {d[key]!r} '
                      f'(it has {sorted(builder.info.splits)})') from None
  features = builder.info.features
  for key in ('image_key', 'label_key'):
    if d[key] not in features:
      raise UserError(f'config.data.{key}: {d.name} has no feature {d[key]!r} '
                      f'(it has {sorted(features.keys())})')


def manual_instructions(builder) -> str:
  """The first sentence of tfds's instructions for a dataset downloaded by hand ('' when tfds
  downloads it itself); for imagenet2012 it names the two archives."""
  text = ' '.join(str(getattr(builder, 'MANUAL_DOWNLOAD_INSTRUCTIONS', '') or '').split())
  return text.split('. ')[0].rstrip('.') if text else ''


def require_tensorflow(what: str):
  """UserError `what` + ' needs TensorFlow: pip install -e ".[prepare]" ...' when it is not
  installed (tfds writes records, and reads tfrecord files, with it)."""
  if importlib.util.find_spec('tensorflow') is None:
    raise UserError(f'{what} needs TensorFlow: pip install -e ".[prepare]" (array_record files, '
                    'as python -m bsd_jax.prepare writes them, are read without it)')


def random_access(builder) -> bool:
  """Whether the prepared files can be read by position (array_record): no TensorFlow needed."""
  from tensorflow_datasets.core import file_adapters
  return builder.info.file_format in file_adapters.FileFormat.with_random_access()


def _column(values):
  """numpy array of one feature's values; encoded images (bytes) as an object array, whose
  elements keep every byte (a bytes dtype would drop trailing zero bytes)."""
  if isinstance(values[0], bytes):
    out = np.empty(len(values), object)
    out[:] = values
    return out
  return np.stack([np.asarray(v) for v in values])


def iter_columns(builder, split, keys, decoders=None, take=None, chunk=4096):
  """The features `keys` of `split` (a tfds split, sliced or not) in record order, `chunk`
  records at a time: a list of numpy arrays per chunk; the first `take` records only, if given
  (0 or None: all).
  array_record files are read by position; tfrecord files through tf.data in batches
  (as_dataset(batch_size=-1) is slower and breaks on some builders)."""
  if random_access(builder):
    source = builder.as_data_source(split=split, decoders=decoders)
    num = min(take, len(source)) if take else len(source)
    for lo in range(0, num, chunk):
      records = source.__getitems__(list(range(lo, min(num, lo + chunk))))
      yield [_column([r[key] for r in records]) for key in keys]
    return
  require_tensorflow(f'{builder.data_dir} holds tfrecord files; reading them')
  import tensorflow_datasets as tfds
  ds = builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
  if take:
    ds = ds.take(take)
  ds = ds.map(lambda ex: tuple(ex[k] for k in keys))
  for part in tfds.as_numpy(ds.batch(chunk)):
    yield list(part)


def read_columns(builder, split, keys, decoders=None, take=None):
  """iter_columns' chunks joined: each feature of `keys` as one numpy array."""
  parts = list(iter_columns(builder, split, keys, decoders, take))
  return [np.concatenate([p[i] for p in parts]) for i in range(len(keys))]


def class_names(label_feature) -> tuple:
  """The class names of a tfds ClassLabel feature ((): none)."""
  return tuple(str(n) for n in (getattr(label_feature, 'names', None) or ()))
