"""The training loop, in a fixed order: checks, workdir, data, state, steps, loop.

`train_and_evaluate(config, workdir)` trains, evaluates on the test split (every
`eval_every_epochs` and at the end) and runs the suites of `config.evals`, logs to the console
and to <workdir>/metrics.jsonl, and checkpoints to <workdir>/checkpoints. Run again with the
same workdir, it resumes from the last checkpoint (state, per-sample table and data position),
so a stopped run ends exactly where an uninterrupted one would.

The loop is flat over steps; what happens at an epoch's end (a method's refresh pass and
statistics, the train record, evaluations, the checkpoint) is `_end_of_epoch`. Nothing here
names a method: what a method needs from the loop is a field of `methods.Method`.
"""
import dataclasses
import functools
import json
import logging
import math
import os
import signal
import sys
from typing import Any

import jax
import numpy as np

from bsd_jax import (checkpointing, data, distributed, evaluation, experiment, feeds, peers,
                     periodic, sharding, step)
from bsd_jax.config_check import check_config
from bsd_jax import workdir as workdir_lib
from bsd_jax.data import label_noise
from bsd_jax.errors import Diverged, UserError
from bsd_jax.evaluation import common as eval_common
from bsd_jax.metric_log import MetricLog


MAX_CLASS_TARGETS = 1000  # eval/class_targets.npz is [K, K]: none for more classes


def _meta_check(meta, ds, config, directory):
  for key, now in (('num_train', ds.num_train), ('num_classes', ds.num_classes),
                   ('method', config.method)):
    if meta.get(key) != now:
      raise UserError(f'{directory}: the checkpoint there was made for {key} = {meta.get(key)}, '
                      f'this config gives {now}; use another --workdir')
  if meta.get('dataset') != ds.name:
    logging.warning('Checkpoint was made for dataset %s, this config reads %s (same size and '
                    'class count): resuming', meta.get('dataset'), ds.name)


def _agreed(what, fn):
  """fn(); a UserError on any process stops every process with a one-line error (the others
  would wait for it in the next collective)."""
  error, result = None, None
  try:
    result = fn()
  except UserError as e:
    error = e
  if distributed.any_process(error is not None):
    raise error or UserError(f'another process of this job could not {what} (its error says '
                             'why)')
  return result


def _diverged(ckpt, loss, when):
  newest = ckpt.latest_step()
  where = ('no checkpoint has been written' if newest is None else
           f'the newest checkpoint is {ckpt.directory}/{newest}')
  raise Diverged(f'training loss is {loss} {when}; {where} (a lower learning rate, or another '
                 'config, in another --workdir)')


def _table_arrays(table):
  """[(name, array)] of the per-sample table: ('alpha', the array), or one per array of a dict
  ('ids', 'values', 'rest' of BSD's sparse posterior)."""
  return list(table.items()) if isinstance(table, dict) else [('alpha', table)]


def _no_predict(state, images):
  raise UserError("config.evals: suites need a test split in memory; config.data.source = "
                  "'tfds_stream' streams it")


def _log_line(epoch, config, split, values):
  logging.info('epoch %d/%d %-5s %s', epoch, config.num_epochs, split,
               ' '.join(f'{k} {v:.4f}' for k, v in values.items()))


@dataclasses.dataclass
class _Run:
  """What the loop and the end of an epoch share."""
  config: Any
  ds: Any
  exp: Any
  feed: Any
  ckpt: Any
  log: Any
  refresh: Any          # jitted refresh step of a method with a refresh pass, or None
  epoch_stats: Any      # jitted method.epoch_stats, or None
  table_rows: dict      # per-sample arrays laid out like the table's rows
  suites: list          # [(suite, every_epochs)]; the test suite first
  workdir: str
  class_targets: Any    # jitted (table, labels, valid) -> methods.class_mean_targets, or None

  def meta(self, sums):
    """The checkpoint's JSON record (`sums`: the epoch's sums so far, when stopped mid-epoch)."""
    return {'num_train': self.ds.num_train, 'num_classes': self.ds.num_classes,
            'dataset': self.ds.name, 'method': self.config.method,
            'model': self.config.model.name,
            'config': json.loads(self.config.to_json()),  # config.json, should it be lost
            'epoch_sums': None if sums is None else {k: float(v) for k, v in sums.items()}}


def _run_suite(r: _Run, suite, state, step_now):
  """Run one evaluation suite on the live state; its numbers go to metrics.jsonl and the log.
  Returns (the numbers, the suite's record)."""
  epoch = step_now // r.exp.steps_per_epoch
  record = suite.run(state, step_now)
  values = suite.scalars(record)
  r.log.write(step_now, epoch, suite.name, values)
  _log_line(epoch, r.config, suite.name, values)
  return values, record


def _write_final_evaluation(r: _Run, suite, record, state, step_now):
  """After the last checkpoint: for a method with targets in its table (BSD),
  eval/class_targets.npz (the mean target of each given label, [K, K], at most MAX_CLASS_TARGETS
  classes; the label counts; the class names, empty where the source has none), and the test
  suite's record of the last step (what the evaluate command would write, with the reliability
  bins before and after scaling). A failure here (a full disk) is a warning: the run and its
  checkpoint are complete. The reliability diagrams are left to the evaluate command and the
  report (drawn from the record's bins): training imports no matplotlib."""
  targets = None
  if r.class_targets is not None and r.ds.num_classes <= MAX_CLASS_TARGETS:
    targets = jax.device_get(r.class_targets(state.alpha, r.table_rows['labels'],
                                             r.table_rows['valid']))  # every process
  if not distributed.is_main():
    return
  if targets is not None:
    path = os.path.join(r.workdir, 'eval', 'class_targets.npz')
    try:
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path + '.tmp', 'wb') as f:
        np.savez(f, matrix=targets[0], counts=targets[1], step=step_now,
                 class_names=np.asarray(r.ds.class_names, str))
      os.replace(path + '.tmp', path)
    except OSError as e:
      logging.warning('Cannot write %s (%s)', path, e)
  if record is not None:
    try:
      suite.write(r.workdir, record, diagrams=False)
    except OSError as e:
      logging.warning('Cannot write the final evaluation to %s/eval (%s); `python -m '
                      'bsd_jax.evaluate --workdir %s` writes it from the last checkpoint',
                      r.workdir, e, r.workdir)


def _end_of_epoch(r: _Run, state, sums, step_now, stop):
  """Refresh pass, train record, evaluations and checkpoint after the epoch ending at
  `step_now`; returns (state, last test metrics or None, name of the stop signal or None)."""
  config, spe, total = r.config, r.exp.steps_per_epoch, r.exp.total_steps
  epoch = step_now // spe

  def due(every_epochs):
    return periodic.itstime(step_now, every_epochs * spe, total)

  if r.refresh is not None:
    for batch in r.feed.ordered_batches():
      state = r.refresh(state, r.feed.train_data, batch)
  host = jax.device_get(sums)
  train = {'loss': host['loss_sum'] / host['count'], 'accuracy': host['correct'] / host['count'],
           'confidence': host['confidence_sum'] / host['count'],
           'learning_rate': float(r.exp.schedule(step_now))}
  if 'correct_clean' in host:
    train['accuracy_clean_labels'] = host['correct_clean'] / host['count']
  if not math.isfinite(train['loss']):
    _diverged(r.ckpt, train['loss'], f'in epoch {epoch}')
  if r.epoch_stats is not None:
    for stats in r.epoch_stats(state.alpha, **r.table_rows):  # in order (jit sorts each dict)
      train.update({k: float(v) for k, v in stats.items()})
  r.log.write(step_now, epoch, 'train', train)
  _log_line(epoch, config, 'train', train)
  (test, test_every), *others = r.suites
  last_test, test_record = _run_suite(r, test, state, step_now) if due(test_every) else (None,
                                                                                         None)
  stopped_by = stop.name() if step_now < total and stop.agreed(step_now, 1) else None
  for suite, every in others:
    if due(every) and stopped_by:  # checkpoint first: a stop has a grace period
      logging.warning('Stopping: suite %s of epoch %d is not run', suite.name, epoch)
    elif due(every):
      _run_suite(r, suite, state, step_now)
  if stopped_by or due(config.checkpoint_every_epochs):
    r.ckpt.save(step_now, state, r.meta(None))
    peers.progress['checkpoint'] = step_now
  if step_now == total:
    _write_final_evaluation(r, test, test_record, state, step_now)
  return state, last_test, stopped_by


def train_and_evaluate(config, workdir: str) -> dict:
  """Train, evaluate, checkpoint; returns the last test metrics (and 'stopped_by'). The job
  holds the workdir's lock (process 0 for all) from its checks to its end."""
  _agreed('use the workdir', lambda: workdir_lib.check_path(workdir))
  check_config(config, jax.device_count(), jax.process_count())
  lock = workdir_lib.WorkdirLock(workdir)
  # SIGTERM before or after the step loop (whose StopRequest saves a checkpoint) ends the job
  # like SIGINT does: through the `finally` that releases the lock.
  previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
  peers.on_exit(lock.release)  # a lost peer ends the job from another thread
  try:
    _agreed('take the workdir lock', lambda: lock.acquire()
            if distributed.is_main() and os.path.isdir(workdir) else None)
    return _train(config, workdir, lock)
  finally:
    peers.stop()  # this process's part is done: the others do not wait for its beat
    lock.release()
    signal.signal(signal.SIGTERM, previous)


def _train(config, workdir, lock):
  # Checks: everything that can be wrong is checked before anything is written.
  _agreed('read the workdir', lambda: workdir_lib.check_config(workdir, config,
                                                                restore=distributed.is_main()))
  num_devices = jax.device_count()
  mesh = sharding.make_mesh()
  ds = _agreed('read its part of the data',
               lambda: data.load(config, rows=lambda num: sharding.process_rows(num, mesh)))
  ds, clean_labels, new_noisy_labels = label_noise.prepare(config, ds, workdir)
  ckpt = checkpointing.Checkpointer(workdir, config.keep_checkpoints)
  exp = experiment.build(config, ds, mesh)
  spe, total_steps = exp.steps_per_epoch, exp.total_steps
  # The suites of config.evals read their sets now (the feed fills in the predictions later).
  run_ctx = eval_common.Run(config, ds, exp, None, None)
  suites = _agreed('read its evaluation sets', lambda: [
      (cls(run_ctx, options), every) for cls, options, every in evaluation.scheduled(config)])
  suites.insert(0, (evaluation.SUITES['test'](run_ctx, {}), config.eval_every_epochs))
  # The newest checkpoint that restores (newer damaged ones are moved aside below), or none.
  state, saved_meta, latest, damaged = ckpt.restore_newest(
      exp.abstract_state, lambda meta: _meta_check(meta, ds, config, ckpt.directory))
  log = MetricLog(workdir, enabled=distributed.is_main())
  if latest is not None and latest >= total_steps:
    logging.info('%s already holds the finished run (step %d of %d): nothing to do',
                 workdir, latest, total_steps)
    log.rewind(latest)  # keeps every record; a run of an earlier version gets its event file
    ckpt.close()
    tests = [r for r in log.read() if r['split'] == 'test']
    return dict(tests[-1]) if tests else {}

  # Workdir: the lock, the config of the first start, the noisy labels; written by process 0.
  distributed.barrier('checked')  # every process has read the workdir before process 0 writes
  if distributed.is_main():
    os.makedirs(workdir, exist_ok=True)
  _agreed('take the workdir lock', lambda: None if lock.held or not distributed.is_main()
          else lock.acquire())
  if damaged:
    ckpt.move_aside(damaged)
  if distributed.is_main():
    workdir_lib.write_config(workdir, config)
    if new_noisy_labels is not None:
      label_noise.save(config, workdir, clean_labels, new_noisy_labels)
  val = '' if ds.val_labels is None else f' / {ds.val_labels.shape[0]} validation'
  logging.info('%s: %d train / %d test%s samples, %d classes, %d devices (%s), %d steps/epoch',
               ds.name, ds.num_train, ds.test_labels.shape[0], val, ds.num_classes, num_devices,
               jax.devices()[0].platform, spe)
  if not ds.streamed:
    logging.info('This process read %d of %d train and %d of %d test images (the rows of its %d '
                 'devices)', ds.train_images.shape[0], ds.num_train, ds.test_images.shape[0],
                 ds.test_labels.shape[0], jax.local_device_count())
  method = exp.method
  if method.description:
    logging.info('%s', method.description)
  table = exp.abstract_state.alpha
  logging.info('Per-sample table: %s, %.3g MiB in all, %.3g MiB per device',
               ', '.join(f'{name} {a.dtype} {list(a.shape)}' for name, a in _table_arrays(table)),
               sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(table)) / 2**20,
               sharding.bytes_per_device(table) / 2**20)

  # Data on the devices (or streamed); the state, created already sharded or restored.
  feed = feeds.make(config, ds, exp, clean_labels)
  log.rewind(latest or 0)  # records past the state's step are replayed; a torn line is dropped
  if latest is None:
    state = jax.jit(exp.init_state, out_shardings=exp.state_shardings)(
        jax.random.PRNGKey(config.seed), exp.padded_labels)
    epoch_sums = None
  else:
    epoch_sums = saved_meta.get('epoch_sums')
    peers.progress['checkpoint'] = latest
    logging.info('Resumed from %s at step %d (epoch %d)', ckpt.directory, latest, latest // spe)

  # A method's refresh pass, jitted; the state is donated and keeps its shardings.
  refresh = None
  if method.refresh_pass:
    refresh = jax.jit(step.make_refresh_step(exp.model, method, mesh, exp.mean, exp.std,
                                             steps_per_epoch=spe),
                      out_shardings=exp.state_shardings, donate_argnums=(0,))
  # Per-sample arrays laid out like the table's rows (padding rows: label 0, not valid).
  table_rows = {'labels': sharding.put_rows(ds.train_labels, None, ds.num_train, mesh),
                'valid': sharding.put_rows(np.ones(ds.num_train, bool), None, ds.num_train, mesh),
                'clean_labels': None if clean_labels is None else
                sharding.put_rows(clean_labels, None, ds.num_train, mesh)}
  run_ctx.predict = getattr(feed, 'predictor', _no_predict)
  run_ctx.predictions = feed.predictions
  r = _Run(config, ds, exp, feed, ckpt, log, refresh,
           None if method.epoch_stats is None else jax.jit(functools.partial(
               method.epoch_stats, num_classes=ds.num_classes)), table_rows,
           suites, workdir, None if method.class_targets is None else jax.jit(
               functools.partial(method.class_targets, num_classes=ds.num_classes),
               out_shardings=sharding.replicated(mesh)))

  # The loop: calls of up to config.steps_per_call steps, each ending where a log line, an
  # epoch's end or a stop may be due; those are decided on the step number, as for one step.
  first = int(state.step)
  steps = experiment.TrainSteps(config, exp, feed, update_table=not method.refresh_pass)
  sums = None if epoch_sums is None else jax.device_put(
      {k: np.float32(v) for k, v in epoch_sums.items()}, sharding.replicated(mesh))
  logged = epoch_sums or {'loss_sum': 0.0, 'count': 0.0}  # sums at the last progress line
  last_test, stopped_by = {}, None
  progress = periodic.Progress(total_steps, config.batch_size)
  step_now = first  # steps done
  with periodic.StopRequest() as stop, feed:
    while step_now < total_steps:
      n = periodic.call_length(step_now, config.steps_per_call, (config.log_every_steps, spe),
                               total_steps)
      state, sums = steps.advance(state, sums, step_now, n)
      step_now += n
      peers.progress['step'] = step_now
      if step_now == first + n:  # keep compilation out of the speed and ETA figures
        jax.block_until_ready(sums)
        logging.info('Compiled and ran the first train call (%d step%s) in %.1f s', n,
                     's' if n > 1 else '', progress.elapsed())
        progress.reset(step_now)
      if periodic.itstime(step_now, config.log_every_steps):
        host = jax.device_get(sums)
        loss = (host['loss_sum'] - logged['loss_sum']) / max(host['count'] - logged['count'], 1)
        if not math.isfinite(loss):
          _diverged(ckpt, loss, f'at step {step_now}')
        lr = float(exp.schedule(step_now))
        figures = {'loss': loss, 'learning_rate': lr}
        if progress.measured(step_now):  # no speed right after compiling the first call
          rate = progress.rate(step_now)
          figures.update(steps_per_s=rate, images_per_s=rate * config.batch_size)
        logging.info('epoch %d/%d step %d/%d loss %.4f lr %.4g %s', (step_now - 1) // spe + 1,
                     config.num_epochs, step_now, total_steps, loss, lr, progress.line(step_now))
        log.progress(step_now, figures)
        logged = host
      if periodic.itstime(step_now, spe):
        state, test, stopped_by = _end_of_epoch(r, state, sums, step_now, stop)
        last_test = test or last_test
        sums, logged = None, {'loss_sum': 0.0, 'count': 0.0}
        progress.reset(step_now)
      elif stop.agreed(step_now, config.log_every_steps):  # inside an epoch: save here
        stopped_by = stop.name()
        ckpt.save(step_now, state, r.meta(jax.device_get(sums)))
        peers.progress['checkpoint'] = step_now
      if stopped_by is not None:
        break
  if stopped_by is not None:
    logging.warning('Stopped by %s at step %d; checkpoint saved in %s. Run the same command to '
                    'resume.', stopped_by, step_now, ckpt.directory)
  ckpt.close()
  if stopped_by is None:
    logging.info('Done: %d steps. Test: %s', total_steps, json.dumps(last_test))
  return dict(last_test, stopped_by=stopped_by)
