"""A trained run as a classifier of new image files: the model of one of its checkpoints, the
evaluation view of its data source, and the temperature fitted on its validation split (as the
evaluate command fits it), so that an image of the run's test split gets the probabilities the
evaluation computed for it."""
import logging
import os

import numpy as np

from bsd_jax import feeds, metrics, saved_run
from bsd_jax.data import images
from bsd_jax.data.eval_view import model_view


class Classifier:
  """`Classifier(workdir, step)`: loads the run (its data too: the normalisation and the
  validation split come from it), then `classify(paths)` answers files."""

  def __init__(self, workdir, step=None):
    config, ds, exp, state, self.step = saved_run.load_checkpoint(workdir, step)
    self.state, self.config = state, config
    self.mean, self.std = np.asarray(exp.mean, np.float32), np.asarray(exp.std, np.float32)
    self.predictor = feeds.Predictor(exp, config.eval_batch_size)
    self.class_names = list(ds.class_names) or [str(k) for k in range(ds.num_classes)]
    self.height, self.width, self._view = model_view(config, ds)
    self.resize = config.data.stream.eval_resize if ds.streamed else None  # for export
    self.grey = not ds.streamed and ds.test_images.shape[-1] == 1
    self.temperature = None
    if ds.val_labels is not None:
      logits, _ = saved_run.checkpoint_run(config, ds, exp).predictions(state, 'val')
      try:
        self.temperature = metrics.fit_temperature(logits, ds.val_labels)
      except ValueError as e:
        logging.warning('No temperature scaling: %s', e)

  def describe_temperature(self) -> str:
    if self.temperature is None:
      return 'probabilities unscaled (the run has no validation split to fit a temperature on)'
    return (f'probabilities scaled by the temperature {self.temperature:.4f} fitted on the '
            "run's validation split")

  def view(self, path) -> np.ndarray:
    """The uint8 image the model sees for the file at `path`; OSError (or Pillow's
    DecompressionBombError) when it cannot be read."""
    return self._view(images.open_rgb(path))

  def probabilities(self, views: np.ndarray):
    """(logits, probabilities [n, K], with the run's temperature where it has one)."""
    logits, probs = self.predictor.outputs(self.state, views)
    if self.temperature is not None:
      probs = metrics.softmax(logits, self.temperature)
    return logits, np.asarray(probs)


def image_files(paths):
  """The image files of `paths` (files as given; folders walked in sorted order, hidden entries
  and files that are not images left out). FileNotFoundError naming a path that does not
  exist."""
  out = []
  for path in paths:
    if os.path.isdir(path):
      for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        out += [os.path.join(root, f) for f in sorted(files) if images.is_image(f)]
    elif os.path.exists(path):
      out.append(path)
    else:
      raise FileNotFoundError(path)
  return out
