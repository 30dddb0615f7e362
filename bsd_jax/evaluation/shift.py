"""The `shift` suite: accuracy, NLL and ECE-15 on natural distribution-shift test sets
(CIFAR-10.1 for CIFAR-10 runs; ImageNet-V2, -A, -R, -Sketch for ImageNet runs; shift_sets.py),
beside the run's own test split. Streamed (ImageNet) runs too: the sets are read a chunk at a
time and seen through the run's evaluation view."""
import logging

import numpy as np

from bsd_jax import metrics
from bsd_jax.data.eval_view import model_view
from bsd_jax.errors import UserError
from bsd_jax.evaluation import common, shift_sets
from bsd_jax.evaluation.suite import Suite, as_list


class ShiftSuite(Suite):
  """eval/shift.json: per set its summary and the drop from the test split's."""
  name = 'shift'
  file = 'shift.json'
  streamed_runs = True
  FLAGS = {
      'sets': ('shift_sets', 'list', [], 'Natural-shift test sets for --suite shift: cifar10_1, '
               'imagenet_v2, imagenet_a, imagenet_r, imagenet_sketch, each NAME or '
               'NAME/TFDS_CONFIG (bsd_jax/evaluation/shift_sets.py).'),
      'data_dir': ('shift_data_dir', 'string', None, "The tfds data_dir holding the shift sets "
                   "(default: tfds's own)."),
      'samples': ('shift_samples', 'integer', 0, 'At most this many images per shift set '
                  '(0: all).'),
  }

  @classmethod
  def check_options(cls, options):
    if options['samples'] < 0:
      raise UserError(f'--shift_samples must be >= 0 (0: all), got {options["samples"]}')
    shift_sets.check(as_list(options['sets']), options['data_dir'])

  def __init__(self, run, options):
    super().__init__(run, options)
    self.sets, self.data_dir = as_list(options['sets']), options['data_dir']
    self.max_samples = options['samples'] or None
    shift_sets.check(self.sets, self.data_dir, run.ds.num_classes)
    self.view = model_view(run.config, run.ds)[2]

  def _scored(self, state, entry):
    r = self.run_ctx
    probs, labels = [], []
    for images, part in shift_sets.chunks(entry, self.data_dir, self.view, self.max_samples):
      probs.append(np.asarray(r.predict(state, images)))
      labels.append(part)
    probs, labels = np.concatenate(probs), np.concatenate(labels)
    subset = shift_sets.parse(entry)[2]
    if subset is not None:
      probs, labels = shift_sets.on_subset(probs, labels, subset)
    return common.summary(probs, labels) | {'num_samples': int(labels.size),
                                            'classes_scored': int(probs.shape[1])}

  def run(self, state, step):
    r = self.run_ctx
    clean = common.summary(r.test_probs(state), r.ds.test_labels)
    results = {}
    for entry in self.sets:
      results[entry] = self._scored(state, entry)
      logging.info('shift set %s: accuracy %.4f', entry, results[entry]['accuracy'])
    return {'step': step, 'epoch': step // r.exp.steps_per_epoch, 'dataset': r.ds.name,
            'method': r.config.method, 'shift_data_dir': self.data_dir, 'clean': clean, 'results': results,
            'definitions': {k: metrics.DEFINITIONS[k] for k in ('accuracy', 'nll', 'ece')} | {
                'classes_scored': 'ImageNet-A and -R: the softmax over the logits of their 200 '
                                  'classes only, as their authors score them'}}

  def report(self, record, paths):
    clean = record['clean']
    print(f'Natural shifts, {record["method"]} step {record["step"]}; test split: accuracy '
          f'{clean["accuracy"]:.4f} nll {clean["nll"]:.4f} ece {clean["ece"]:.4f}')
    for entry, m in record['results'].items():
      print(f'{entry:32s} accuracy {m["accuracy"]:.4f} nll {m["nll"]:.4f} ece {m["ece"]:.4f} '
            f'({m["num_samples"]} images, {m["classes_scored"]} classes)')
    super().report(record, paths)

  def scalars(self, record):
    return common.flatten({'clean': record['clean'], **{
        entry: {k: m[k] for k in ('accuracy', 'nll', 'ece')}
        for entry, m in record['results'].items()}})
