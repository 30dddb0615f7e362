"""The `ood` suite: AUROC and FPR at 95% TPR of the in-distribution test split against each OOD
set (OOD = positive), scored by max softmax and by entropy."""
import numpy as np

from bsd_jax import metrics
from bsd_jax.errors import UserError
from bsd_jax.evaluation import common, ood_sets
from bsd_jax.evaluation.suite import Suite, as_list

DEFINITIONS = {'auroc': 'exact rank-based AUROC, OOD = positive, ties count 1/2',
               'fpr95': 'fraction of in-distribution samples scored as OOD at the threshold '
                        'that keeps 95% of OOD samples',
               'msp': 'score = -max softmax', 'entropy': 'score = entropy'}


def ood_scores(probs):
  """OOD scores (higher = more likely OOD): negative max-softmax and predictive entropy."""
  probs = np.asarray(probs, np.float64)
  return {'msp': -probs.max(-1),
          'entropy': -np.sum(probs * np.log(np.maximum(probs, 1e-30)), axis=-1)}


class OODSuite(Suite):
  """eval/ood.json: per OOD set, AUROC and FPR95 for both scores."""
  name = 'ood'
  file = 'ood.json'
  FLAGS = {
      'sets': ('ood', 'list', [], 'OOD sets for --suite ood: folder:PATH, mnist:PATH, npy:PATH '
               'or tfds:NAME[:SPLIT] (bsd_jax/evaluation/ood_sets.py).'),
      'max_samples': ('ood_max_samples', 'integer', 10_000, 'At most this many images per OOD '
                      'set.'),
  }

  @classmethod
  def check_options(cls, options):
    specs = as_list(options['sets'])
    if not specs:
      raise UserError('--suite ood needs --ood (e.g. --ood mnist:PATH,folder:PATH)')
    for spec in specs:
      ood_sets.check(spec)

  def __init__(self, run, options):
    super().__init__(run, options)
    shape = run.ds.image_shape
    self.sets = {spec: ood_sets.load(spec, shape, options['max_samples'])
                 for spec in as_list(options['sets'])}

  def run(self, state, step):
    r = self.run_ctx
    in_scores = ood_scores(r.test_probs(state))
    num_in = int(r.ds.test_labels.shape[0])
    results = {}
    for spec, images in self.sets.items():
      out_scores = ood_scores(r.predict(state, images))
      labels = np.r_[np.zeros(num_in), np.ones(images.shape[0])]
      results[spec] = {'num_ood': int(images.shape[0])}
      for name in ('msp', 'entropy'):
        scores = np.r_[in_scores[name], out_scores[name]]
        results[spec][f'auroc_{name}'] = metrics.auroc(scores, labels)
        results[spec][f'fpr95_{name}'] = metrics.fpr_at_tpr(scores, labels, 0.95)
    return {'step': step, 'in_distribution': r.ds.name, 'num_in': num_in,
            'method': r.config.method, 'sets': results, 'definitions': DEFINITIONS}

  def report(self, record, paths):
    print(f'OOD detection, {record["method"]} step {record["step"]}, in-distribution '
          f'{record["in_distribution"]} test')
    print(f'{"OOD set":48s} {"AUROC msp":>10s} {"AUROC ent":>10s} {"FPR95 msp":>10s} '
          f'{"FPR95 ent":>10s}')
    for spec, r in record['sets'].items():
      name = spec if len(spec) <= 48 else f'{spec[:22]}...{spec[-23:]}'  # kind and file
      print(f'{name:48s} {r["auroc_msp"]:10.4f} {r["auroc_entropy"]:10.4f} '
            f'{r["fpr95_msp"]:10.4f} {r["fpr95_entropy"]:10.4f}')
    super().report(record, paths)

  def scalars(self, record):
    return common.flatten({spec: {k: v for k, v in r.items() if k != 'num_ood'}
                           for spec, r in record['sets'].items()})
