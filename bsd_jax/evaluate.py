"""python -m bsd_jax.evaluate --workdir runs/x [--step N] [--suite test|ood|adversarial|corruptions]

Loads the run's config and a checkpoint (the latest unless --step) and runs one suite:
  test         the test split: <workdir>/eval/metrics.json and reliability.png
  ood          OOD detection against the --ood sets: <workdir>/eval/ood.json
  adversarial  FGSM and PGD (L-inf) on the first --adv_samples test images:
               <workdir>/eval/adversarial.json
  corruptions  CIFAR-10-C / CIFAR-100-C (--corruptions): <workdir>/eval/corruptions.json
Results of another checkpoint already there are kept under names carrying their step.
"""
import json
import logging
import os
import sys

from absl import app, flags

from bsd_jax import corruption_data
from bsd_jax.errors import UserError

_WORKDIR = flags.DEFINE_string('workdir', None, 'A bsd_jax run directory.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
_SUITE = flags.DEFINE_enum('suite', 'test', ['test', 'ood', 'adversarial', 'corruptions'],
                           'What to evaluate.')
_OOD = flags.DEFINE_list('ood', [], 'OOD sets for --suite ood: folder:PATH, mnist:PATH, '
                         'npy:PATH or tfds:NAME[:SPLIT] (bsd_jax/ood_data.py).')
_OOD_MAX = flags.DEFINE_integer('ood_max_samples', 10_000, 'At most this many images per OOD set.')
_ADV_EPS = flags.DEFINE_list('adv_eps', ['1', '2', '4', '8'], 'L-inf radii, in units of 1/255.')
_ADV_STEPS = flags.DEFINE_integer('adv_steps', 10, 'PGD steps.')
_ADV_STEP_SIZE = flags.DEFINE_float('adv_step_size', 0.25, 'PGD step size, as a fraction of eps.')
_ADV_RANDOM_START = flags.DEFINE_bool('adv_random_start', True, 'PGD starts uniformly in the ball.')
_ADV_SAMPLES = flags.DEFINE_integer('adv_samples', 1000, 'Attack the first N test images.')
_CORRUPTIONS = flags.DEFINE_string('corruptions', None, 'Corrupted test sets for --suite '
                                   'corruptions: tfds[:DATA_DIR] or npy:DIR '
                                   '(bsd_jax/corruption_data.py).')
_CORRUPTION_NAMES = flags.DEFINE_list('corruption_names', list(corruption_data.CORRUPTIONS),
                                      'Corruptions to evaluate (default: the 15 standard ones).')
_CORRUPTION_SEVERITIES = flags.DEFINE_list('corruption_severities', ['1', '2', '3', '4', '5'],
                                           'Severities to evaluate.')
_CORRUPTION_SAMPLES = flags.DEFINE_integer('corruption_samples', 0, 'At most this many images '
                                           'per corruption and severity (0: all).')

METRIC_DEFINITIONS = {
    'accuracy': 'top-1',
    'nll': 'mean -log p(y), p clipped at 1e-12',
    'ece': 'top-label, 15 equal-width bins (m/15, (m+1)/15], empty bins skipped',
    'ece_10': 'as ece with 10 bins',
    'adaptive_ece': '15 equal-mass bins over the sorted top-label confidence',
    'classwise_ece': 'per class 15 equal-width bins on p_k, averaged over classes',
    'brier': 'mean over samples of sum over classes (p - onehot)^2',
    'aurc': 'area under the risk-coverage curve, most confident first',
    'confidence': 'mean top-label probability',
}


def load_run_config(workdir):
  from ml_collections import config_dict
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise UserError(f'{path} is missing: {workdir} is not a bsd_jax run directory')
  with open(path) as f:
    saved = json.load(f)
  if isinstance(saved.get('model'), str):  # written before config.model became a group
    saved['model'] = {'name': saved.pop('model'),
                      'cnn_widths': saved.pop('cnn_widths', [32, 64, 128])}
  saved.setdefault('table_dtype', 'float32')  # the only storage before the key existed
  config = config_dict.ConfigDict(saved)
  config.lock()
  return config


def _keep_previous(eval_dir, step, record, names):
  """Rename the results of another checkpoint (as told by `record`'s step) to names carrying it."""
  path = os.path.join(eval_dir, record)
  if not os.path.exists(path):
    return
  with open(path) as f:
    old_step = json.load(f).get('step')
  if old_step != step:
    for name in names:
      stem, ext = os.path.splitext(name)
      if os.path.exists(os.path.join(eval_dir, name)):
        os.replace(os.path.join(eval_dir, name), os.path.join(eval_dir, f'{stem}.step{old_step}{ext}'))


def _write(workdir, step, record, name, also=()):
  """<workdir>/eval/<name> (JSON), keeping another checkpoint's results; returns the path."""
  eval_dir = os.path.join(workdir, 'eval')
  os.makedirs(eval_dir, exist_ok=True)
  _keep_previous(eval_dir, step, name, (name,) + tuple(also))
  path = os.path.join(eval_dir, name)
  with open(path, 'w') as f:
    json.dump(record, f, indent=2)
  return path


def load_checkpoint(workdir, step=None):
  """(config, dataset, experiment, state, step) of a run's checkpoint; UserError if unusable."""
  from bsd_jax import checkpointing, data, experiment

  config = load_run_config(workdir)
  ckpt = checkpointing.Checkpointer(workdir, config.keep_checkpoints)
  available = ckpt.all_steps()
  if not available:
    raise UserError(f'{ckpt.directory}: no checkpoint to evaluate')
  if step is None:
    step = available[-1]
  elif step not in available:
    raise UserError(f'--step {step}: no such checkpoint in {ckpt.directory} (have {available})')
  ds = data.load(config)
  exp = experiment.build(config, ds)
  try:
    state, _ = ckpt.restore(step, exp.abstract_state)
  except Exception as e:  # orbax raises many types for damaged or foreign checkpoints
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f'{ckpt.directory}/{step}: cannot read the checkpoint ({first})') from None
  finally:
    ckpt.close()
  return config, ds, exp, state, int(step)


def _predictor(exp, state, batch_size):
  """predict(images) -> eval-mode probabilities of uint8 images [n, H, W, C]; compiled once
  per image count."""
  import jax

  from bsd_jax import experiment, sharding
  from bsd_jax import step as steps
  jitted = jax.jit(steps.make_predict(exp.model, exp.mesh, exp.mean, exp.std))

  def predict(images):
    dev = {'images': sharding.put_rows(images, None, images.shape[0], exp.mesh)}
    return experiment.predict_all(jitted, state, dev, images.shape[0], batch_size, exp.mesh)

  return predict


def evaluate_workdir(workdir, step=None) -> dict:
  """Evaluate one checkpoint of a run on its test split; returns the metrics written."""
  from bsd_jax import metrics
  from bsd_jax.reliability import save_reliability_diagram

  config, ds, exp, state, step = load_checkpoint(workdir, step)
  if ds.streamed:
    from bsd_jax import feeds
    with feeds.make(config, ds, exp) as feed:
      probs = feed.test_probs(state)
  else:
    probs = _predictor(exp, state, config.eval_batch_size)(ds.test_images)
  result = metrics.full_metrics(probs, ds.test_labels)
  record = {'step': step, 'epoch': step // exp.steps_per_epoch, 'dataset': ds.name,
            'split': config.data.test_split, 'num_samples': int(ds.test_labels.shape[0]),
            'method': config.method, 'metrics': result, 'definitions': METRIC_DEFINITIONS}
  path = _write(workdir, step, record, 'metrics.json', also=('reliability.png',))
  save_reliability_diagram(probs, ds.test_labels, os.path.join(workdir, 'eval', 'reliability.png'),
                           title=f'{config.method}, step {step}:')
  logging.info('Step %d on %s: %s', step, ds.name,
               ' '.join(f'{k} {v:.4f}' for k, v in result.items()))
  logging.info('Wrote %s and reliability.png', path)
  return record


def ood_scores(probs):
  """OOD scores (higher = more likely OOD): negative max-softmax and predictive entropy."""
  import numpy as np
  probs = np.asarray(probs, np.float64)
  return {'msp': -probs.max(-1),
          'entropy': -np.sum(probs * np.log(np.maximum(probs, 1e-30)), axis=-1)}


def evaluate_ood(workdir, specs, step=None, max_samples=10_000) -> dict:
  """AUROC and FPR at 95% TPR of in-distribution test vs each OOD set (OOD = positive)."""
  import numpy as np

  from bsd_jax import metrics, ood_data
  if not specs:
    raise UserError('--suite ood needs --ood (e.g. --ood mnist:PATH,folder:PATH)')
  for spec in specs:
    ood_data.check(spec)
  config, ds, exp, state, step = load_checkpoint(workdir, step)
  sets = {spec: ood_data.load(spec, ds.test_images.shape[1:], max_samples) for spec in specs}
  predict = _predictor(exp, state, config.eval_batch_size)  # one jit for every set
  in_scores = ood_scores(predict(ds.test_images))
  results = {}
  for spec, images in sets.items():
    out_scores = ood_scores(predict(images))
    labels = np.r_[np.zeros(ds.test_images.shape[0]), np.ones(images.shape[0])]
    results[spec] = {'num_ood': int(images.shape[0])}
    for name in ('msp', 'entropy'):
      scores = np.r_[in_scores[name], out_scores[name]]
      results[spec][f'auroc_{name}'] = metrics.auroc(scores, labels)
      results[spec][f'fpr95_{name}'] = metrics.fpr_at_tpr(scores, labels, 0.95)
  record = {'step': step, 'in_distribution': ds.name, 'num_in': int(ds.test_images.shape[0]),
            'method': config.method, 'sets': results,
            'definitions': {'auroc': 'exact rank-based AUROC, OOD = positive, ties count 1/2',
                            'fpr95': 'fraction of in-distribution samples scored as OOD at the '
                                     'threshold that keeps 95% of OOD samples',
                            'msp': 'score = -max softmax', 'entropy': 'score = entropy'}}
  path = _write(workdir, step, record, 'ood.json')
  print(f'OOD detection, {config.method} step {step}, in-distribution {ds.name} test')
  print(f'{"OOD set":48s} {"AUROC msp":>10s} {"AUROC ent":>10s} {"FPR95 msp":>10s} '
        f'{"FPR95 ent":>10s}')
  for spec, r in results.items():
    print(f'{spec[-48:]:48s} {r["auroc_msp"]:10.4f} {r["auroc_entropy"]:10.4f} '
          f'{r["fpr95_msp"]:10.4f} {r["fpr95_entropy"]:10.4f}')
  print(f'wrote {path}')
  return record


def evaluate_adversarial(workdir, eps_255, step=None, *, steps=10, step_size=0.25,
                         random_start=True, num_samples=1000) -> dict:
  """Accuracy and ECE under FGSM and PGD at each eps (in 1/255 units) on the first test images."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  from bsd_jax import attacks, metrics
  config, ds, exp, state, step = load_checkpoint(workdir, step)
  variables = {'params': state.params, 'batch_stats': state.batch_stats}

  def logits_fn(x):
    return exp.model.apply(variables, (x - exp.mean) / exp.std, train=False)

  @jax.jit
  def attacked_probs(x, y, eps, rng):
    fgsm = attacks.fgsm(logits_fn, x, y, eps=eps)
    pgd, _ = attacks.pgd(logits_fn, x, y, eps=eps, step_size=step_size * eps, steps=steps,
                         rng=rng, random_start=random_start)
    return {name: jax.nn.softmax(logits_fn(v).astype(jnp.float32))
            for name, v in (('clean', x), ('fgsm', fgsm), ('pgd', pgd))}

  n = min(num_samples, ds.test_images.shape[0])
  images, labels = ds.test_images[:n], ds.test_labels[:n]
  results = {'clean': None, 'fgsm': {}, 'pgd': {}}
  for e in eps_255:
    parts = []
    for b in range(0, n, config.eval_batch_size):
      x = jnp.asarray(images[b:b + config.eval_batch_size], jnp.float32) / 255.0
      parts.append(attacked_probs(x, jnp.asarray(labels[b:b + config.eval_batch_size]),
                                  e / 255.0, jax.random.PRNGKey(b)))
    probs = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
    summary = {k: {'accuracy': float(metrics.accuracy(v, labels)),
                   'ece': float(metrics.ece(v, labels))} for k, v in probs.items()}
    results['clean'] = summary['clean']
    results['fgsm'][f'{e:g}'] = summary['fgsm']
    results['pgd'][f'{e:g}'] = summary['pgd']
  record = {'step': step, 'dataset': ds.name, 'num_samples': int(n), 'method': config.method,
            'attack': {'norm': 'linf', 'eps_in_255ths': [float(e) for e in eps_255],
                       'pgd_steps': steps, 'pgd_step_size_of_eps': step_size,
                       'pgd_random_start': random_start, 'pixel_range': [0, 1]},
            'results': results}
  path = _write(workdir, step, record, 'adversarial.json')
  print(f'Adversarial (L-inf), {config.method} step {step}, first {n} test images of {ds.name}')
  print(f'clean: accuracy {results["clean"]["accuracy"]:.4f} ece {results["clean"]["ece"]:.4f}')
  for e in eps_255:
    f, p = results['fgsm'][f'{e:g}'], results['pgd'][f'{e:g}']
    print(f'eps {e:g}/255: FGSM accuracy {f["accuracy"]:.4f} ece {f["ece"]:.4f} | '
          f'PGD-{steps} accuracy {p["accuracy"]:.4f} ece {p["ece"]:.4f}')
  print(f'wrote {path}')
  return record


def _summary(probs, labels):
  from bsd_jax import metrics
  return {'accuracy': float(metrics.accuracy(probs, labels)),
          'nll': float(metrics.nll(probs, labels)), 'ece': float(metrics.ece(probs, labels))}


def _mean(summaries):
  return {k: float(sum(s[k] for s in summaries) / len(summaries)) for k in summaries[0]}


def evaluate_corruptions(workdir, spec, names=corruption_data.CORRUPTIONS,
                         severities=corruption_data.SEVERITIES, step=None,
                         max_samples=0) -> dict:
  """Accuracy, NLL and ECE per corruption and severity, their means, and the clean test set's."""
  names, severities = corruption_data.canonical(names), [int(s) for s in severities]
  corruption_data.check(spec, names, severities)
  config, ds, exp, state, step = load_checkpoint(workdir, step)
  corruption_data.check(spec, names, severities, ds.test_images.shape[1:], ds.num_classes)
  predict = _predictor(exp, state, config.eval_batch_size)
  clean = _summary(predict(ds.test_images), ds.test_labels)
  print(f'Corruptions, {config.method} step {step}, {corruption_data.describe(spec)}; '
        f'clean test: accuracy {clean["accuracy"]:.4f} nll {clean["nll"]:.4f} '
        f'ece {clean["ece"]:.4f}')
  print(f'{"accuracy":18s}' + ''.join(f'{f"sev {s}":>8s}' for s in severities) + f'{"mean":>8s}')
  results, num = {}, None
  for name in names:
    results[name] = {}
    for severity in severities:
      images, labels = corruption_data.images(spec, name, severity, max_samples)
      num = int(labels.shape[0])
      results[name][str(severity)] = _summary(predict(images), labels)
    row = [results[name][str(s)]['accuracy'] for s in severities]
    print(f'{name:18s}' + ''.join(f'{a:8.4f}' for a in row) + f'{sum(row) / len(row):8.4f}')
  by_severity = {str(s): _mean([results[n][str(s)] for n in names]) for s in severities}
  by_corruption = {n: _mean(list(results[n].values())) for n in names}
  overall = _mean(list(by_corruption.values()))
  print(f'{"mean":18s}' + ''.join(f'{by_severity[str(s)]["accuracy"]:8.4f}' for s in severities)
        + f'{overall["accuracy"]:8.4f}')
  print(f'mean over {len(names)} corruptions x {len(severities)} severities: accuracy '
        f'{overall["accuracy"]:.4f} nll {overall["nll"]:.4f} ece {overall["ece"]:.4f}')
  record = {'step': step, 'dataset': ds.name, 'corrupted': corruption_data.describe(spec),
            'method': config.method, 'num_samples_per_severity': num, 'clean': clean,
            'results': results, 'mean_by_severity': by_severity,
            'mean_by_corruption': by_corruption, 'mean': overall,
            'definitions': {k: METRIC_DEFINITIONS[k] for k in ('accuracy', 'nll', 'ece')} |
                           {'mean': 'unweighted mean over corruptions and severities'}}
  print(f'wrote {_write(workdir, step, record, "corruptions.json")}')
  return record


def main(argv):
  del argv
  if not _WORKDIR.value:
    print('bsd_jax.evaluate: error: --workdir is required', file=sys.stderr)
    sys.exit(2)
  logging.getLogger('absl').setLevel(logging.WARNING)
  try:
    if (_SUITE.value != 'test'
        and load_run_config(_WORKDIR.value).data.source == 'tfds_stream'):
      raise UserError(f'--suite {_SUITE.value} needs a test split held in memory; this run '
                      "streams its data (config.data.source = 'tfds_stream'): use --suite test")
    if _SUITE.value == 'test':
      evaluate_workdir(_WORKDIR.value, _STEP.value)
    elif _SUITE.value == 'ood':
      evaluate_ood(_WORKDIR.value, _OOD.value, _STEP.value, _OOD_MAX.value)
    elif _SUITE.value == 'corruptions':
      if not _CORRUPTIONS.value:
        raise UserError('--suite corruptions needs --corruptions tfds[:DATA_DIR] or npy:DIR '
                        f'({corruption_data.HOW})')
      try:
        severities = [int(s) for s in _CORRUPTION_SEVERITIES.value]
      except ValueError as e:
        raise UserError(f'--corruption_severities: {e}') from None
      evaluate_corruptions(_WORKDIR.value, _CORRUPTIONS.value, _CORRUPTION_NAMES.value,
                           severities, _STEP.value, max(_CORRUPTION_SAMPLES.value, 0))
    else:
      try:
        eps = [float(e) for e in _ADV_EPS.value]
      except ValueError as e:
        raise UserError(f'--adv_eps: {e}') from None
      if not eps or min(eps) <= 0 or _ADV_STEPS.value < 1 or _ADV_SAMPLES.value < 1:
        raise UserError('--adv_eps must be positive numbers, --adv_steps and --adv_samples >= 1')
      evaluate_adversarial(_WORKDIR.value, eps, _STEP.value, steps=_ADV_STEPS.value,
                           step_size=_ADV_STEP_SIZE.value, random_start=_ADV_RANDOM_START.value,
                           num_samples=_ADV_SAMPLES.value)
  except UserError as e:
    print(f'bsd_jax.evaluate: error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main)
