"""The `human` suite: how close the model's predictive distribution comes to people's (CIFAR-10H,
or any [N, K] distributions over the test split; human_sets.py): the cross-entropy and the KL
divergence from the people's distribution to the model's, and whether the model's first and
second choices are people's, before and after temperature scaling (T fitted on the run's
validation split, as the test suite fits it)."""
import logging

import numpy as np

from bsd_jax import metrics
from bsd_jax.errors import UserError
from bsd_jax.evaluation import human_sets
from bsd_jax.evaluation.suite import Suite

TINY = np.finfo(np.float32).tiny  # a model's probability is taken as at least this in a log
DEFINITIONS = {
    'cross_entropy': "mean over images of -sum_k h_k log p_k (h: people's distribution, p: the "
                     "model's)",
    'kl': 'mean over images of sum_k h_k log(h_k / p_k), terms with h_k = 0 omitted: the '
          "cross-entropy less people's entropy",
    'top1_agreement': "fraction of images where the model's most likely class is one people "
                      'chose most often (a tie among people: any of the tied classes)',
    'second_choice_agreement': "the same for the model's second most likely class and the "
                               "people's second largest share (sorted with repeats: tied first "
                               'choices make each other the second), over the images where that '
                               'share is above 0 (second_choice_images)',
    'human_entropy': "mean entropy of people's distribution: the cross-entropy's floor",
    'accuracy': 'top-1 accuracy against the dataset labels',
}


def agreement(human, probs) -> dict:
  """The suite's measures of `probs` [N, K] against people's distributions `human` [N, K]."""
  h = np.asarray(human, np.float64)
  p = np.maximum(np.asarray(probs, np.float64), TINY)
  ce = -np.sum(h * np.log(p), 1)
  kl = ce - _entropies(h)  # terms with h_k = 0 add nothing to either
  # Matched by people's share, not by class index: ties among people's choices count for any of
  # the tied classes, whatever the classes' order.
  shares = -np.sort(-h, axis=1)
  order_p = np.argsort(-p, axis=1, kind='stable')
  on_p = np.take_along_axis(h, order_p[:, :2], 1)  # people's share of the model's 1st, 2nd
  second = shares[:, 1] > 0
  return {'cross_entropy': float(ce.mean()), 'kl': float(kl.mean()),
          'top1_agreement': float(np.mean(on_p[:, 0] == shares[:, 0])),
          'second_choice_agreement': float(np.mean(on_p[second, 1] == shares[second, 1]))
                                     if second.any() else None,
          'second_choice_images': int(second.sum())}


def _entropies(h):
  """[N] -sum_k h_k log h_k, 0 log 0 = 0."""
  return -np.sum(np.where(h > 0, h * np.log(np.where(h > 0, h, 1.0)), 0.0), 1)


def entropy(human) -> float:
  """People's mean entropy: the cross-entropy's floor."""
  return float(np.mean(_entropies(np.asarray(human, np.float64))))


class HumanSuite(Suite):
  """eval/human.json: the agreement measures, with and without temperature scaling."""
  name = 'human'
  file = 'human.json'
  FLAGS = {
      'source': ('human_labels', 'string', None, "People's label distributions for --suite "
                 'human: tfds[:DATA_DIR] (cifar10_h) or npy:PATH ([N, K] over the test split; '
                 'bsd_jax/evaluation/human_sets.py).'),
  }

  @classmethod
  def check_options(cls, options):
    if not options['source']:
      raise UserError(f'--suite human needs --human_labels tfds[:DATA_DIR] or npy:PATH '
                      f'({human_sets.HOW})')
    human_sets.check(options['source'])

  def __init__(self, run, options):
    super().__init__(run, options)
    self.spec = options['source']
    human_sets.check(self.spec, int(run.ds.test_labels.shape[0]), run.ds.num_classes,
                     run.ds.image_shape, run.ds.test_labels)
    self.human, self.images, self.labels = human_sets.load(self.spec)

  def _outputs(self, state):
    """(logits, probabilities, labels) of the images people labelled."""
    r = self.run_ctx
    if self.images is None:  # the run's own test split
      logits, probs = r.predictions(state, 'test')
      return logits, probs, r.ds.test_labels
    probs = np.asarray(r.predict(state, self.images))
    # log p is the logits up to a constant per image: softmax(log p / T) = softmax(z / T).
    return np.log(np.maximum(probs, TINY)), probs, self.labels

  def run(self, state, step):
    r = self.run_ctx
    logits, probs, labels = self._outputs(state)
    record = {'step': step, 'epoch': step // r.exp.steps_per_epoch, 'dataset': r.ds.name,
              'human': human_sets.describe(self.spec),
              'method': r.config.method, 'num_samples': int(self.human.shape[0]),
              'human_entropy': entropy(self.human),
              'metrics': agreement(self.human, probs) | {
                  'accuracy': float(metrics.accuracy(probs, labels))}}
    if r.ds.val_labels is not None:
      try:
        t = metrics.fit_temperature(r.predictions(state, 'val')[0], r.ds.val_labels)
      except ValueError as e:
        logging.warning('No temperature scaling: %s', e)
      else:
        record['temperature'] = t
        record['scaled_metrics'] = agreement(self.human, metrics.softmax(logits, t))
    record['definitions'] = DEFINITIONS
    return record

  def report(self, record, paths):
    def line(m):
      second = m['second_choice_agreement']
      return (f'cross-entropy {m["cross_entropy"]:.4f} KL {m["kl"]:.4f} top-1 agreement '
              f'{m["top1_agreement"]:.4f} second-choice agreement '
              + ('n/a' if second is None else f'{second:.4f}'))
    print(f'People\'s labels ({record["human"]}), {record["method"]} step {record["step"]}, '
          f'{record["num_samples"]} images; people\'s entropy {record["human_entropy"]:.4f}')
    print(f'model: {line(record["metrics"])}; accuracy {record["metrics"]["accuracy"]:.4f}')
    if 'scaled_metrics' in record:
      print(f'T = {record["temperature"]:.4f}: {line(record["scaled_metrics"])}')
    super().report(record, paths)

  def scalars(self, record):
    out = {k: v for k, v in record['metrics'].items() if isinstance(v, float)}
    if 'scaled_metrics' in record:
      out['temperature'] = record['temperature']
      out.update({f'scaled_{k}': v for k, v in record['scaled_metrics'].items()
                  if isinstance(v, float)})
    return out
