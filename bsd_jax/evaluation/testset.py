"""The `test` suite: every calibration metric of the test split (bsd_jax/metrics.py) and the
reliability diagram; with a validation split (config.data.val_size), the same after temperature
scaling fitted on it. During training it is the per-epoch test evaluation (config.eval_every_epochs,
split 'test' of metrics.jsonl), and its record is also written to eval/ at the last step."""
import logging
import math
import os

from bsd_jax import metrics
from bsd_jax.errors import UserError
from bsd_jax.evaluation import common
from bsd_jax.evaluation.suite import Suite
from bsd_jax.evaluation.reliability import save_reliability_diagram

SCALINGS = ('auto', 'on', 'off')
NUM_BINS = 15


def _bins(probs, labels):
  """The reliability diagram's numbers as JSON (null where a bin is empty)."""
  count, acc, conf = metrics.reliability_bins(probs, labels, NUM_BINS)
  def listed(values):
    return [None if math.isnan(v) else float(v) for v in values]
  return {'count': [int(c) for c in count], 'accuracy': listed(acc), 'confidence': listed(conf)}


def scaled(logits, labels, val_logits, val_labels):
  """(T fitted on the validation logits, full_metrics of the test split after scaling without
  accuracy and top5, which scaling leaves unchanged, the scaled probabilities); T None (and the
  rest None) when no T > 0 minimises the validation NLL."""
  try:
    t = metrics.fit_temperature(val_logits, val_labels)
  except ValueError as e:
    logging.warning('No temperature scaling: %s', e)
    return None, None, None
  probs = metrics.softmax(logits, t)
  out = metrics.full_metrics(probs, labels)
  for unchanged in ('accuracy', 'top5'):  # dividing by T > 0 keeps every class's rank
    out.pop(unchanged, None)
  return t, out, probs


class TestSuite(Suite):
  """eval/metrics.json: metrics.full_metrics of the test split, the reliability bins, and with a
  validation split the fitted temperature and the scaled metrics and bins; eval/reliability.png
  (and reliability_scaled.png)."""
  __test__ = False  # not a pytest test class
  name = 'test'
  file = 'metrics.json'
  streamed_runs = True
  FLAGS = {
      'temperature_scaling': (
          'temperature_scaling', 'string', 'auto', "Temperature scaling fitted on the run's "
          "validation split (config.data.val_size): 'auto' (when the run has one), 'on' (an "
          "error without one) or 'off'."),
  }

  @classmethod
  def check_options(cls, options):
    if options.get('temperature_scaling', 'auto') not in SCALINGS:
      raise UserError(f"--temperature_scaling: {options['temperature_scaling']!r} is not one of "
                      f'{list(SCALINGS)}')

  @classmethod
  def check_run(cls, options, config):
    if options.get('temperature_scaling') == 'on' and not config.data.val_size:
      raise UserError('--temperature_scaling=on needs a validation split to fit T on, and this '
                      'run has none (config.data.val_size = 0): train with data.val_size > 0')

  def run(self, state, step):
    r = self.run_ctx
    mode = self.options.get('temperature_scaling', 'auto')
    logits, self._probs = r.predictions(state, 'test')
    labels, self._scaled = r.ds.test_labels, None
    record = {'step': step, 'epoch': step // r.exp.steps_per_epoch, 'dataset': r.ds.name,
              'split': r.config.data.test_split, 'num_samples': int(labels.shape[0]),
              'method': r.config.method,
              'metrics': metrics.full_metrics(self._probs, labels, logits),
              'reliability': _bins(self._probs, labels)}
    if mode != 'off' and r.ds.val_labels is not None:
      t, scaled_metrics, self._scaled = scaled(logits, labels, r.predictions(state, 'val')[0],
                                               r.ds.val_labels)
      record.update(temperature=t, val_samples=int(r.ds.val_labels.shape[0]),
                    scaled_metrics=scaled_metrics)
      if t is not None:
        record['scaled_reliability'] = _bins(self._scaled, labels)
    record['definitions'] = dict(metrics.DEFINITIONS, temperature=(
        'T > 0 minimising the validation NLL of softmax(logits / T); scaled_metrics: the test '
        'metrics of softmax(logits / T)'))
    return record

  def write(self, workdir, record, diagrams=True):
    """eval/metrics.json and, with `diagrams` (the evaluate command; training leaves them to it
    and to the report, which draw them from the record's bins), the reliability diagrams."""
    path = common.write_result(workdir, record, self.file,
                               also=('reliability.png', 'reliability_scaled.png'))
    if not diagrams:
      return [path]
    labels, eval_dir = self.run_ctx.ds.test_labels, os.path.join(workdir, 'eval')
    save_reliability_diagram(self._probs, labels, os.path.join(eval_dir, 'reliability.png'),
                             title=f'{record["method"]}, step {record["step"]}:')
    scaled_path = os.path.join(eval_dir, 'reliability_scaled.png')
    if self._scaled is not None:
      save_reliability_diagram(self._scaled, labels, scaled_path,
                               title=f'{record["method"]}, step {record["step"]}, '
                               f'T = {record["temperature"]:.3f}:')
    elif os.path.exists(scaled_path):  # of an earlier evaluation of this step, with scaling
      os.remove(scaled_path)
    return [path]

  def report(self, record, paths):
    logging.info('Step %d on %s: %s', record['step'], record['dataset'],
                 ' '.join(f'{k} {v:.4f}' for k, v in record['metrics'].items()))
    if record.get('scaled_metrics'):
      logging.info('After temperature scaling (T = %.4f, fitted on %d validation samples): %s',
                   record['temperature'], record['val_samples'],
                   ' '.join(f'{k} {v:.4f}' for k, v in record['scaled_metrics'].items()))
    logging.info('Wrote %s and its reliability diagrams', paths[0])

  def scalars(self, record):
    out = dict(record['metrics'])
    if record.get('scaled_metrics'):
      out['temperature'] = record['temperature']
      out.update({f'scaled_{k}': v for k, v in record['scaled_metrics'].items()})
    return out
