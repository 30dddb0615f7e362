"""python -m bsd_jax.evaluate --workdir runs/x [--step N]

Loads the run's config and a checkpoint (the latest unless --step), evaluates on the test split
and writes <workdir>/eval/metrics.json and <workdir>/eval/reliability.png. Results of another
checkpoint already there are kept under names carrying their step.
"""
import json
import logging
import os
import sys

from absl import app, flags

from bsd_jax.errors import UserError

_WORKDIR = flags.DEFINE_string('workdir', None, 'A bsd_jax run directory.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')

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
    config = config_dict.ConfigDict(json.load(f))
  config.lock()
  return config


def _keep_previous(eval_dir, step):
  """Rename results of another checkpoint to names carrying their step."""
  path = os.path.join(eval_dir, 'metrics.json')
  if not os.path.exists(path):
    return
  with open(path) as f:
    old_step = json.load(f).get('step')
  if old_step != step:
    for name in ('metrics.json', 'reliability.png'):
      stem, ext = os.path.splitext(name)
      if os.path.exists(os.path.join(eval_dir, name)):
        os.replace(os.path.join(eval_dir, name), os.path.join(eval_dir, f'{stem}.step{old_step}{ext}'))


def evaluate_workdir(workdir, step=None) -> dict:
  """Evaluate one checkpoint of a run on its test split; returns the metrics written."""
  import jax

  from bsd_jax import checkpointing, data, experiment, metrics, sharding
  from bsd_jax import step as steps
  from bsd_jax.reliability import save_reliability_diagram

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
    state, meta = ckpt.restore(step, exp.abstract_state)
  except Exception as e:  # orbax raises many types for damaged or foreign checkpoints
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f'{ckpt.directory}/{step}: cannot read the checkpoint ({first})') from None
  finally:
    ckpt.close()
  test_dev = jax.device_put({'images': ds.test_images, 'labels': ds.test_labels},
                            sharding.replicated(exp.mesh))
  predict = jax.jit(steps.make_predict(exp.model, exp.mesh, exp.mean, exp.std))
  probs = experiment.predict_all(predict, state, test_dev, ds.test_labels.shape[0],
                                 config.eval_batch_size, exp.mesh)
  result = metrics.full_metrics(probs, ds.test_labels)
  eval_dir = os.path.join(workdir, 'eval')
  os.makedirs(eval_dir, exist_ok=True)
  _keep_previous(eval_dir, step)
  record = {'step': int(step), 'epoch': int(step) // exp.steps_per_epoch, 'dataset': ds.name,
            'split': config.data.test_split, 'num_samples': int(ds.test_labels.shape[0]),
            'method': config.method, 'metrics': result, 'definitions': METRIC_DEFINITIONS}
  with open(os.path.join(eval_dir, 'metrics.json'), 'w') as f:
    json.dump(record, f, indent=2)
  save_reliability_diagram(probs, ds.test_labels, os.path.join(eval_dir, 'reliability.png'),
                           title=f'{config.method}, step {step}:')
  logging.info('Step %d on %s: %s', step, ds.name,
               ' '.join(f'{k} {v:.4f}' for k, v in result.items()))
  logging.info('Wrote %s/metrics.json and reliability.png', eval_dir)
  return record


def main(argv):
  del argv
  if not _WORKDIR.value:
    print('bsd_jax.evaluate: error: --workdir is required', file=sys.stderr)
    sys.exit(2)
  logging.getLogger('absl').setLevel(logging.WARNING)
  try:
    evaluate_workdir(_WORKDIR.value, _STEP.value)
  except UserError as e:
    print(f'bsd_jax.evaluate: error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main)
