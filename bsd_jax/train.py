"""The training loop, in a fixed order: checks, data, mesh, model, state, steps, checkpoint, loop.

`train_and_evaluate(config, workdir)` trains, evaluates on the test split (every
`eval_every_epochs` and at the end), logs to the console and to <workdir>/metrics.jsonl, and
checkpoints to <workdir>/checkpoints. Run again with the same workdir, it resumes from the last
checkpoint (state, posterior table and data position), so a stopped run ends exactly where an
uninterrupted one would.
"""
import json
import logging
import math
import os
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np

from bsd_jax import (checkpointing, data, distributed, experiment, feeds, methods, metrics,
                     noisy_dataset, sharding, step, targets)
from bsd_jax.config_check import check_config
from bsd_jax.errors import UserError
from bsd_jax.metric_log import MetricLog


class StopRequest:
  """SIGTERM / SIGINT set a flag; the loop checkpoints after the current step and returns.
  A second Ctrl-C stops at once (the last checkpoint is still there).

  In a multi-process job all processes must stop after the same step (orbax saves together):
  they compare flags every `every` steps, so a signal to any process stops all of them at the
  next such step."""

  def __init__(self):
    self.signum = None
    self._previous = {}

  def _handle(self, signum, frame):
    if self.signum is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.signum = signum
    logging.warning('Received %s: saving a checkpoint after this step (Ctrl-C again to quit '
                    'at once)', signal.Signals(signum).name)

  def agreed(self, step_now: int, every: int) -> bool:
    """Whether to stop after step `step_now` (the same answer on every process)."""
    if jax.process_count() == 1:
      return self.signum is not None
    return step_now % every == 0 and distributed.any_process(self.signum is not None)

  def name(self) -> str:
    return signal.Signals(self.signum or signal.SIGTERM).name

  def __enter__(self):
    for s in (signal.SIGTERM, signal.SIGINT):
      self._previous[s] = signal.signal(s, self._handle)
    return self

  def __exit__(self, *exc):
    for s, h in self._previous.items():
      signal.signal(s, h)


def _meta_check(meta, ds, config, directory):
  for key, now in (('num_train', ds.num_train), ('num_classes', ds.num_classes),
                   ('method', config.method)):
    if meta.get(key) != now:
      raise UserError(f'{directory}: the checkpoint there was made for {key} = {meta.get(key)}, '
                      f'this config gives {now}; use another --workdir')
  if meta.get('dataset') != ds.name:
    logging.warning('Checkpoint was made for dataset %s, this config reads %s (same size and '
                    'class count): resuming', meta.get('dataset'), ds.name)


def _load_rows(config, mesh):
  """The dataset with this process's rows of images; a data error on any process stops every
  process with a one-line error (the others would wait for it in the first collective)."""
  error = None
  try:
    ds = data.load(config, rows=lambda num: sharding.process_rows(num, mesh))
  except UserError as e:
    error = e
  if distributed.any_process(error is not None):
    raise error or UserError('another process of this job could not read its part of the data '
                             '(its error says why)')
  return ds


def _format_seconds(s):
  s = int(s)
  return f'{s // 3600}h{s % 3600 // 60:02d}m' if s >= 3600 else f'{s // 60}m{s % 60:02d}s'


def train_and_evaluate(config, workdir: str) -> dict:
  """Train, evaluate, checkpoint; returns the last test metrics (and 'stopped_by')."""
  # 1. Everything that can be wrong is checked before anything is written.
  num_devices = jax.device_count()
  check_config(config, num_devices)
  mesh = sharding.make_mesh()
  ds = _load_rows(config, mesh)
  ds, clean_labels, new_noisy_labels = noisy_dataset.prepare(config, ds, workdir)
  ckpt = checkpointing.Checkpointer(workdir, config.keep_checkpoints)
  latest = ckpt.latest_step()
  if latest is not None:
    _meta_check(ckpt.read_meta(latest), ds, config, ckpt.directory)
  exp = experiment.build(config, ds, mesh)
  steps_per_epoch, total_steps = exp.steps_per_epoch, exp.total_steps
  log = MetricLog(workdir, enabled=distributed.is_main())
  if latest is not None and latest >= total_steps:
    logging.info('%s already holds the finished run (step %d of %d): nothing to do',
                 workdir, latest, total_steps)
    ckpt.close()
    tests = [r for r in log.read() if r['split'] == 'test']
    return dict(tests[-1]) if tests else {}

  distributed.barrier('checked')  # every process has read the workdir before process 0 writes
  if distributed.is_main():
    os.makedirs(workdir, exist_ok=True)
    config_path = os.path.join(workdir, 'config.json')
    if not os.path.exists(config_path):
      with open(config_path, 'w') as f:
        f.write(config.to_json(indent=2))
    if new_noisy_labels is not None:
      noisy_dataset.save(config, workdir, clean_labels, new_noisy_labels)
  logging.info('%s: %d train / %d test samples, %d classes, %d devices (%s), %d steps/epoch',
               ds.name, ds.num_train, ds.test_labels.shape[0], ds.num_classes, num_devices,
               jax.devices()[0].platform, steps_per_epoch)
  if not ds.streamed:
    logging.info('This process read %d of %d train and %d of %d test images (the rows of its %d '
                 'devices)', ds.train_images.shape[0], ds.num_train, ds.test_images.shape[0],
                 ds.test_labels.shape[0], jax.local_device_count())
  if config.method == 'bsd':
    logging.info('BSD: %s', methods.bsd_hparams(config))
  table = exp.abstract_state.alpha
  logging.info('Per-sample table: %s %s, %.3g MiB in all, %.3g MiB per device', table.shape,
               table.dtype, table.size * table.dtype.itemsize / 2**20,
               sharding.bytes_per_device(table) / 2**20)

  # 2. Data (device-resident or streamed); the state, created already sharded or restored.
  feed = feeds.make(config, ds, exp, clean_labels)
  model, method, schedule = exp.model, exp.method, exp.schedule
  mean, std, padded_labels = exp.mean, exp.std, exp.padded_labels
  state_sh = exp.state_shardings
  rng = jax.random.PRNGKey(config.seed)
  if latest is None:
    state = jax.jit(exp.init_state, out_shardings=state_sh)(rng, padded_labels)
    epoch_sums = None
  else:
    state, saved_meta = ckpt.restore(latest, exp.abstract_state)
    epoch_sums = saved_meta.get('epoch_sums')
    log.rewind(latest)
    logging.info('Resumed from %s at step %d (epoch %d)', ckpt.directory, latest,
                 latest // steps_per_epoch)

  # 3. Jitted steps; the state is donated and keeps its shardings.
  refresh_at_epoch_end = config.method == 'bsd' and config.bsd.prediction_source == 'eval_pass'
  train_step = experiment.jit_train_step(config, exp, update_table=not refresh_at_epoch_end)
  refresh = None
  if refresh_at_epoch_end:
    refresh = jax.jit(step.make_refresh_step(model, method, mesh, mean, std,
                                             steps_per_epoch=steps_per_epoch),
                      out_shardings=state_sh, donate_argnums=(0,))
  # Per-sample arrays laid out like the table's rows (padding rows: label 0, not valid).
  valid_rows = sharding.put_rows(np.ones(ds.num_train, bool), None, ds.num_train, mesh)
  labels_rows = sharding.put_rows(ds.train_labels, None, ds.num_train, mesh)
  if clean_labels is not None:
    clean_rows = sharding.put_rows(clean_labels, None, ds.num_train, mesh)
  posterior_stats = jax.jit(targets.posterior_stats)
  noisy_recovery = jax.jit(targets.noisy_label_recovery)

  def meta(sums):
    return {'num_train': ds.num_train, 'num_classes': ds.num_classes, 'dataset': ds.name,
            'method': config.method, 'model': config.model.name,
            'epoch_sums': None if sums is None else {k: float(v) for k, v in sums.items()}}

  # 4. The loop.
  step_now = int(state.step)
  last_test = {}
  stopped_by = None
  compile_start = time.perf_counter()
  with StopRequest() as stop, feed:
    while step_now < total_steps and stopped_by is None:
      epoch = step_now // steps_per_epoch
      # Sums over the epoch so far (restored when resuming mid-epoch), and at the last log line.
      sums = None
      logged = epoch_sums or {'loss_sum': 0.0, 'count': 0.0}
      if epoch_sums is not None:
        sums = {k: jnp.asarray(v, jnp.float32) for k, v in epoch_sums.items()}
        epoch_sums = None
      window_start, window_step = time.perf_counter(), step_now
      for s in range(step_now % steps_per_epoch, steps_per_epoch):
        state, step_sums = train_step(state, feed.train_data, feed.train_batch(step_now))
        sums = step_sums if sums is None else jax.tree.map(jnp.add, sums, step_sums)
        step_now += 1
        if compile_start is not None:  # keep compilation out of the speed and ETA figures
          jax.block_until_ready(sums)
          logging.info('Compiled and ran the first train step in %.1f s',
                       time.perf_counter() - compile_start)
          compile_start, window_start, window_step = None, time.perf_counter(), step_now
        if step_now % config.log_every_steps == 0:
          host = jax.device_get(sums)
          loss = (host['loss_sum'] - logged['loss_sum']) / max(host['count'] - logged['count'], 1)
          if not math.isfinite(loss):
            raise FloatingPointError(f'training loss is {loss} at step {step_now}; the last '
                                     f'checkpoint is in {ckpt.directory}')
          rate = (step_now - window_step) / max(time.perf_counter() - window_start, 1e-9)
          logging.info('epoch %d/%d step %d/%d loss %.4f lr %.4g | %.2f steps/s %.0f img/s | '
                       'ETA %s', epoch + 1, config.num_epochs, step_now, total_steps, loss,
                       float(schedule(step_now)), rate, rate * config.batch_size,
                       _format_seconds((total_steps - step_now) / max(rate, 1e-9)))
          window_start, window_step, logged = time.perf_counter(), step_now, host
        # A stop inside the epoch saves here; on its last step the epoch is finished first.
        if s + 1 < steps_per_epoch and stop.agreed(step_now, config.log_every_steps):
          stopped_by = stop.name()
          ckpt.save(step_now, state, meta(jax.device_get(sums)))
          break
      if stopped_by is not None:
        break

      # End of epoch: table refresh, train summary, test evaluation, checkpoint.
      if refresh is not None:
        for batch in feed.ordered_batches():
          state = refresh(state, feed.train_data, batch)
      host = jax.device_get(sums)
      train_metrics = {'loss': host['loss_sum'] / host['count'],
                       'accuracy': host['correct'] / host['count'],
                       'confidence': host['confidence_sum'] / host['count'],
                       'learning_rate': float(schedule(step_now))}
      if 'correct_clean' in host:
        train_metrics['accuracy_clean_labels'] = host['correct_clean'] / host['count']
      if not math.isfinite(train_metrics['loss']):
        raise FloatingPointError(f'training loss is {train_metrics["loss"]} in epoch {epoch + 1};'
                                 f' the last checkpoint is in {ckpt.directory}')
      if config.method == 'bsd':
        train_metrics.update({k: float(v) for k, v in
                              posterior_stats(state.alpha, labels_rows, valid_rows).items()})
        if clean_labels is not None:
          train_metrics.update({k: float(v) for k, v in noisy_recovery(
              state.alpha, labels_rows, clean_rows, valid_rows).items()})
      log.write(step_now, epoch + 1, 'train', train_metrics)
      logging.info('epoch %d/%d train %s', epoch + 1, config.num_epochs,
                   ' '.join(f'{k} {v:.4f}' for k, v in train_metrics.items()))
      if (epoch + 1) % config.eval_every_epochs == 0 or step_now == total_steps:
        probs = feed.test_probs(state)
        last_test = metrics.full_metrics(probs, ds.test_labels)
        log.write(step_now, epoch + 1, 'test', last_test)
        logging.info('epoch %d/%d test  %s', epoch + 1, config.num_epochs,
                     ' '.join(f'{k} {v:.4f}' for k, v in last_test.items()))
      if step_now < total_steps and stop.agreed(step_now, 1):
        stopped_by = stop.name()
      if (stopped_by or (epoch + 1) % config.checkpoint_every_epochs == 0
          or step_now == total_steps):
        ckpt.save(step_now, state, meta(None))
  if stopped_by is not None:
    logging.warning('Stopped by %s at step %d; checkpoint saved in %s. Run the same command to '
                    'resume.', stopped_by, step_now, ckpt.directory)
  ckpt.close()
  if stopped_by is None:
    logging.info('Done: %d steps. Test: %s', step_now, json.dumps(last_test))
  return dict(last_test, stopped_by=stopped_by)
