"""The `adversarial` suite: accuracy and ECE under FGSM and PGD (L-inf, attacks.py) at each eps
(in 1/255 units) on the first test images."""
import jax
import jax.numpy as jnp
import numpy as np

from bsd_jax import metrics
from bsd_jax.data import augment
from bsd_jax.errors import UserError
from bsd_jax.evaluation import attacks, common
from bsd_jax.evaluation.suite import Suite, numbers


class AdversarialSuite(Suite):
  """eval/adversarial.json: clean, FGSM and PGD accuracy and ECE-15 at every eps."""
  name = 'adversarial'
  file = 'adversarial.json'
  needs_test_images = True
  FLAGS = {
      'eps': ('adv_eps', 'list', ['1', '2', '4', '8'], 'L-inf radii, in units of 1/255.'),
      'steps': ('adv_steps', 'integer', 10, 'PGD steps.'),
      'step_size': ('adv_step_size', 'float', 0.25, 'PGD step size, as a fraction of eps.'),
      'random_start': ('adv_random_start', 'bool', True, 'PGD starts uniformly in the ball.'),
      'samples': ('adv_samples', 'integer', 1000, 'Attack the first N test images.'),
  }

  @classmethod
  def check_options(cls, options):
    eps = numbers(options['eps'], '--adv_eps')
    if not eps or min(eps) <= 0 or options['steps'] < 1 or options['samples'] < 1:
      raise UserError('--adv_eps must be positive numbers, --adv_steps and --adv_samples >= 1')

  def run(self, state, step):
    r, o = self.run_ctx, self.options
    eps_255 = numbers(o['eps'], '--adv_eps')
    exp, batch_size = r.exp, r.config.eval_batch_size
    variables = {'params': state.params, 'batch_stats': state.batch_stats}

    def logits_fn(x):
      return exp.model.apply(variables, augment.standardize(x, exp.mean, exp.std), train=False)

    @jax.jit
    def attacked_probs(x, y, eps, rng):
      fgsm = attacks.fgsm(logits_fn, x, y, eps=eps)
      pgd, _ = attacks.pgd(logits_fn, x, y, eps=eps, step_size=o['step_size'] * eps,
                           steps=o['steps'], rng=rng, random_start=o['random_start'])
      return {name: jax.nn.softmax(logits_fn(v).astype(jnp.float32))
              for name, v in (('clean', x), ('fgsm', fgsm), ('pgd', pgd))}

    n = min(o['samples'], r.ds.test_images.shape[0])
    images, labels = r.ds.test_images[:n], r.ds.test_labels[:n]
    results = {'clean': None, 'fgsm': {}, 'pgd': {}}
    for e in eps_255:
      parts = []
      for b in range(0, n, batch_size):
        x = jnp.asarray(images[b:b + batch_size], jnp.float32) / 255.0
        parts.append(attacked_probs(x, jnp.asarray(labels[b:b + batch_size]), e / 255.0,
                                    jax.random.PRNGKey(b)))
      probs = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
      summary = {k: {'accuracy': float(metrics.accuracy(v, labels)),
                     'ece': float(metrics.ece(v, labels))} for k, v in probs.items()}
      results['clean'] = summary['clean']
      results['fgsm'][f'{e:g}'] = summary['fgsm']
      results['pgd'][f'{e:g}'] = summary['pgd']
    return {'step': step, 'dataset': r.ds.name, 'num_samples': int(n),
            'method': r.config.method,
            'attack': {'norm': 'linf', 'eps_in_255ths': [float(e) for e in eps_255],
                       'pgd_steps': o['steps'], 'pgd_step_size_of_eps': o['step_size'],
                       'pgd_random_start': o['random_start'], 'pixel_range': [0, 1]},
            'results': results}

  def report(self, record, paths):
    results, steps = record['results'], record['attack']['pgd_steps']
    print(f'Adversarial (L-inf), {record["method"]} step {record["step"]}, first '
          f'{record["num_samples"]} test images of {record["dataset"]}')
    print(f'clean: accuracy {results["clean"]["accuracy"]:.4f} ece {results["clean"]["ece"]:.4f}')
    for e in record['attack']['eps_in_255ths']:
      f, p = results['fgsm'][f'{e:g}'], results['pgd'][f'{e:g}']
      print(f'eps {e:g}/255: FGSM accuracy {f["accuracy"]:.4f} ece {f["ece"]:.4f} | '
            f'PGD-{steps} accuracy {p["accuracy"]:.4f} ece {p["ece"]:.4f}')
    super().report(record, paths)

  def scalars(self, record):
    return common.flatten(record['results'])
