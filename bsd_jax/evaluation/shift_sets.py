"""Natural distribution-shift test sets for the `shift` suite, read through tfds (prepared with
`python -m bsd_jax.prepare NAME --data_dir D` where there is internet). A set is named NAME or
NAME/CONFIG (a tfds builder config, e.g. imagenet_v2/threshold-0.7):

  cifar10_1        CIFAR-10.1 (v6 by default), 2,000 images: for CIFAR-10 models
  imagenet_v2      ImageNet-V2 (matched-frequency by default), 10,000 images
  imagenet_a       ImageNet-A, 7,500 images of 200 classes
  imagenet_r       ImageNet-R, 30,000 images of 200 classes
  imagenet_sketch  ImageNet-Sketch, 50,889 images
The ImageNet sets are labelled with imagenet2012's 1,000 class indices, for 1,000-class models.
ImageNet-A and -R are scored as their authors score them: on the model's logits of their 200
classes only (a softmax over those; `on_subset`). Images are brought to what the model sees by
the run's own evaluation view (data/eval_view.model_view) and read a chunk at a time."""
import numpy as np

from bsd_jax.data import tfds_common
from bsd_jax.errors import UserError
from bsd_jax.evaluation.imagenet_classes import IMAGENET_A_CLASSES, IMAGENET_R_CLASSES

# name: (the tfds name read when no config is given, the model's classes, the classes scored)
SETS = {
    'cifar10_1': ('cifar10_1/v6', 10, None),
    'imagenet_v2': ('imagenet_v2/matched-frequency', 1000, None),
    'imagenet_a': ('imagenet_a', 1000, IMAGENET_A_CLASSES),
    'imagenet_r': ('imagenet_r', 1000, IMAGENET_R_CLASSES),
    'imagenet_sketch': ('imagenet_sketch', 1000, None),
}
SPLIT = 'test'  # the only split of each


def parse(entry):
  """(tfds name with its config, the model's classes, the classes scored or None)."""
  name = entry.split('/')[0]
  if name not in SETS:
    raise UserError(f'--shift_sets: unknown set {entry!r} (known: {", ".join(SETS)}; '
                    'NAME or NAME/TFDS_CONFIG)')
  default, classes, subset = SETS[name]
  return (entry if '/' in entry else default), classes, subset


def _builder(entry, data_dir):
  return tfds_common.open_builder(parse(entry)[0], data_dir, what=f'--shift_sets {entry}')


def check(entries, data_dir, num_classes=None):
  """UserError for the first set that is unknown, does not fit a model of `num_classes`
  classes, or is not prepared in data_dir (before any model work)."""
  if not entries:
    raise UserError('--suite shift needs --shift_sets (e.g. cifar10_1 or imagenet_v2,imagenet_a)')
  for entry in entries:
    tfds_name, classes, _ = parse(entry)
    if num_classes is not None and num_classes != classes:
      raise UserError(f'--shift_sets {entry}: labelled with {classes} classes, the model has '
                      f'{num_classes}')
    builder = _builder(entry, data_dir)
    if not builder.is_prepared():
      raise UserError(f'--shift_sets {entry}: {tfds_name} is not prepared in '
                      f'{builder.data_dir_root}; prepare it where there is internet: python -m '
                      f'bsd_jax.prepare {tfds_name} --data_dir D, then --shift_data_dir D')


def chunks(entry, data_dir, view, max_samples=None, chunk=1024):
  """(uint8 images [n, H, W, C] as the model sees them, int32 labels [n]) of the set, `chunk`
  images at a time; the first `max_samples` only, if given."""
  import tensorflow_datasets as tfds
  builder = _builder(entry, data_dir)
  for encoded, labels in tfds_common.iter_columns(
      builder, SPLIT, ['image', 'label'], {'image': tfds.decode.SkipDecoding()},
      take=max_samples, chunk=chunk):
    yield np.stack([view(bytes(e)) for e in encoded]), labels.astype(np.int32)


def on_subset(probs, labels, classes):
  """(probabilities [n, len(classes)], labels as positions in `classes`): the softmax over the
  subset's logits, p[:, classes] renormalised (the same numbers); UserError for a label outside
  the subset."""
  classes = np.asarray(classes)
  position = np.full(max(int(classes.max()), int(labels.max())) + 1, -1)
  position[classes] = np.arange(classes.size)
  if np.any(position[labels] < 0):
    raise UserError(f'a label outside the scored classes: {int(labels[position[labels] < 0][0])}')
  part = np.asarray(probs, np.float64)[:, classes]
  return (part / np.sum(part, 1, keepdims=True)).astype(np.float32), position[labels]
