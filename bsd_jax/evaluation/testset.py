"""The `test` suite: every calibration metric of the test split (bsd_jax/metrics.py) and the
reliability diagram. During training it is the per-epoch test evaluation (config.eval_every_epochs,
split 'test' of metrics.jsonl)."""
import logging
import os

from bsd_jax import metrics
from bsd_jax.evaluation import Suite, common
from bsd_jax.evaluation.reliability import save_reliability_diagram


class TestSuite(Suite):
  """eval/metrics.json: metrics.full_metrics of the test split; eval/reliability.png."""
  __test__ = False  # not a pytest test class
  name = 'test'
  file = 'metrics.json'

  def run(self, state, step):
    r = self.run_ctx
    self._probs = r.test_probs(state)
    return {'step': step, 'epoch': step // r.exp.steps_per_epoch, 'dataset': r.ds.name,
            'split': r.config.data.test_split, 'num_samples': int(r.ds.test_labels.shape[0]),
            'method': r.config.method,
            'metrics': metrics.full_metrics(self._probs, r.ds.test_labels),
            'definitions': metrics.DEFINITIONS}

  def write(self, workdir, record):
    path = common.write_result(workdir, record, self.file, also=('reliability.png',))
    save_reliability_diagram(self._probs, self.run_ctx.ds.test_labels,
                             os.path.join(workdir, 'eval', 'reliability.png'),
                             title=f'{record["method"]}, step {record["step"]}:')
    return [path]

  def report(self, record, paths):
    logging.info('Step %d on %s: %s', record['step'], record['dataset'],
                 ' '.join(f'{k} {v:.4f}' for k, v in record['metrics'].items()))
    logging.info('Wrote %s and reliability.png', paths[0])

  def scalars(self, record):
    return record['metrics']
