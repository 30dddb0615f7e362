"""The `corruptions` suite: accuracy, NLL and ECE-15 per corruption and severity (CIFAR-10-C,
CIFAR-100-C, ImageNet-C; sets read by corruption_sets.py), their means, and the clean test
split's."""
import logging

import numpy as np

from bsd_jax import data, metrics
from bsd_jax.data.eval_view import model_view
from bsd_jax.errors import UserError
from bsd_jax.evaluation import common, corruption_sets
from bsd_jax.evaluation.suite import Suite, as_list, numbers


class CorruptionsSuite(Suite):
  """eval/corruptions.json; a table of accuracies on stdout."""
  name = 'corruptions'
  file = 'corruptions.json'
  streamed_runs = True  # ImageNet-C
  FLAGS = {
      'source': ('corruptions', 'string', None, 'Corrupted test sets for --suite corruptions: '
                 'tfds[:DATA_DIR], npy:DIR or imagenet_c[:DATA_DIR] '
                 '(bsd_jax/evaluation/corruption_sets.py).'),
      'names': ('corruption_names', 'list', list(corruption_sets.CORRUPTIONS),
                'Corruptions to evaluate (default: the 15 standard ones).'),
      'severities': ('corruption_severities', 'list', ['1', '2', '3', '4', '5'],
                     'Severities to evaluate.'),
      'samples': ('corruption_samples', 'integer', 0, 'At most this many images per corruption '
                  'and severity (0: all).'),
  }

  @classmethod
  def _parsed(cls, options):
    return (corruption_sets.canonical(as_list(options['names'])),
            numbers(options['severities'], '--corruption_severities', int))

  @classmethod
  def check_run(cls, options, config):
    if (config.data.source in data.STREAMED
        and not str(options['source']).startswith('imagenet_c')):
      raise UserError(f'--corruptions {options["source"]}: CIFAR-10-C and CIFAR-100-C need a '
                      "test split held in memory; this run streams its data (config.data.source "
                      f"= '{config.data.source}'): ImageNet-C (imagenet_c[:DATA_DIR]) only")

  @classmethod
  def check_options(cls, options):
    if not options['source']:
      raise UserError('--suite corruptions needs --corruptions tfds[:DATA_DIR] or npy:DIR '
                      f'({corruption_sets.HOW})')
    corruption_sets.check(options['source'], *cls._parsed(options))

  def __init__(self, run, options):
    super().__init__(run, options)
    self.names, self.severities = self._parsed(options)
    self.spec, self.max_samples = options['source'], max(options['samples'], 0)
    corruption_sets.check(self.spec, self.names, self.severities, run.ds.image_shape,
                          run.ds.num_classes)
    self.view = corruption_sets.imagenet_view(*model_view(run.config, run.ds)[:2])

  def _scored(self, state, name, severity):
    probs, labels = [], []
    for images, part in corruption_sets.blocks(self.spec, name, severity, self.max_samples,
                                               self.view):
      probs.append(np.asarray(self.run_ctx.predict(state, images)))
      labels.append(part)
    labels = np.concatenate(labels)
    return common.summary(np.concatenate(probs), labels), int(labels.size)

  def run(self, state, step):
    r = self.run_ctx
    clean = common.summary(r.test_probs(state), r.ds.test_labels)
    results, num = {}, None
    for name in self.names:
      results[name] = {}
      for severity in self.severities:
        results[name][str(severity)], num = self._scored(state, name, severity)
      logging.info('corruption %s severity %d: accuracy %.4f', name, severity,
                   results[name][str(severity)]['accuracy'])
    by_severity = {str(s): common.mean_of([results[n][str(s)] for n in self.names])
                   for s in self.severities}
    by_corruption = {n: common.mean_of(list(results[n].values())) for n in self.names}
    return {'step': step, 'dataset': r.ds.name,
            'corrupted': corruption_sets.describe(self.spec), 'method': r.config.method,
            'num_samples_per_severity': num, 'clean': clean, 'results': results,
            'mean_by_severity': by_severity, 'mean_by_corruption': by_corruption,
            'mean': common.mean_of(list(by_corruption.values())),
            'definitions': {k: metrics.DEFINITIONS[k] for k in ('accuracy', 'nll', 'ece')} |
                           {'mean': 'unweighted mean over corruptions and severities'}}

  def report(self, record, paths):
    clean, severities = record['clean'], self.severities
    print(f'Corruptions, {record["method"]} step {record["step"]}, {record["corrupted"]}; '
          f'clean test: accuracy {clean["accuracy"]:.4f} nll {clean["nll"]:.4f} '
          f'ece {clean["ece"]:.4f}')
    print(f'{"accuracy":18s}' + ''.join(f'{f"sev {s}":>8s}' for s in severities) + f'{"mean":>8s}')
    for name, cells in record['results'].items():
      row = [cells[str(s)]['accuracy'] for s in severities]
      print(f'{name:18s}' + ''.join(f'{a:8.4f}' for a in row) + f'{sum(row) / len(row):8.4f}')
    by_severity, overall = record['mean_by_severity'], record['mean']
    print(f'{"mean":18s}' + ''.join(f'{by_severity[str(s)]["accuracy"]:8.4f}' for s in severities)
          + f'{overall["accuracy"]:8.4f}')
    print(f'mean over {len(self.names)} corruptions x {len(severities)} severities: accuracy '
          f'{overall["accuracy"]:.4f} nll {overall["nll"]:.4f} ece {overall["ece"]:.4f}')
    super().report(record, paths)

  def scalars(self, record):
    return common.flatten({'clean': record['clean'], 'mean': record['mean'],
                           'mean_by_severity': record['mean_by_severity']})
