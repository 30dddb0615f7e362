"""The training loop, in a fixed order: checks, workdir, data, state, steps, loop.

`train_and_evaluate(config, workdir)` trains, evaluates on the test split (every
`eval_every_epochs` and at the end) and runs the suites of `config.evals`, logs to the console
and to <workdir>/metrics.jsonl, and checkpoints to <workdir>/checkpoints. Run again with the
same workdir, it resumes from the last checkpoint (state, per-sample table and data position),
so a stopped run ends exactly where an uninterrupted one would.

The loop is flat over steps; what happens at an epoch's end (a method's refresh pass and
statistics, the train record, evaluations, the checkpoint) is epoch_end.py. Nothing here
names a method: what a method needs from the loop is a field of `methods.Method`."""
import json
import logging
import math
import os
import signal
import sys

import jax

from bsd_jax import (data, distributed, evaluation, experiment, feeds, peers, periodic,
                     pretrained, sharding, step)
from bsd_jax.config_check import check_config
from bsd_jax.data import label_noise
from bsd_jax.epoch_end import EpochEnd, diverged
from bsd_jax.errors import UserError
from bsd_jax.evaluation import common as eval_common
from bsd_jax.rundir import checkpoints, run_config
from bsd_jax.rundir.lock import WorkdirLock
from bsd_jax.rundir.metric_log import MetricLog


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


def train_and_evaluate(config, workdir: str) -> dict:
  """Train, evaluate, checkpoint; returns the last test metrics (and 'stopped_by'). The job
  holds the workdir's lock (process 0 for all) from its checks to its end."""
  _agreed('use the workdir', lambda: run_config.check_path(workdir))
  check_config(config, jax.device_count(), jax.process_count())
  lock = WorkdirLock(workdir)
  # SIGTERM before or after the step loop (whose StopRequest saves a checkpoint) ends the job
  # like SIGINT does: through the `finally` that releases the lock.
  previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
  try:
    with peers.on_exit(lock.release):  # a lost peer ends the job from another thread
      _agreed('take the workdir lock', lambda: lock.acquire()
              if distributed.is_main() and os.path.isdir(workdir) else None)
      return _train(config, workdir, lock)
  finally:
    peers.stop()  # this process's part is done: the others do not wait for its beat
    lock.release()
    signal.signal(signal.SIGTERM, previous)


def _train(config, workdir, lock):
  # Checks: everything that can be wrong is checked before anything is written.
  _agreed('read the workdir', lambda: run_config.check_config(workdir, config,
                                                                restore=distributed.is_main()))
  num_devices = jax.device_count()
  mesh = sharding.make_mesh()
  ds = _agreed('read its part of the data',
               lambda: data.load(config, rows=lambda num: sharding.process_rows(num, mesh)))
  ds, clean_labels, new_noisy_labels = label_noise.prepare(config, ds, workdir)
  ckpt = checkpoints.Checkpointer(workdir, config.keep_checkpoints)
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
  # A first start from another run's model: read and matched before anything is written.
  init_from = None
  if latest is None and config.get('init_from'):
    init_from = _agreed('read config.init_from', lambda: pretrained.merge(
        pretrained.load(config.init_from, exp.abstract_state), exp.abstract_state,
        ds.num_classes))
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
    run_config.write_config(workdir, config)
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
  table = exp.abstract_state.table  # an array, or a dict of them (BSD's sparse posterior)
  arrays = table.items() if isinstance(table, dict) else [('alpha', table)]
  logging.info('Per-sample table: %s, %.3g MiB in all, %.3g MiB per device',
               ', '.join(f'{name} {a.dtype} {list(a.shape)}' for name, a in arrays),
               sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(table)) / 2**20,
               sharding.bytes_per_device(table) / 2**20)

  # Data on the devices (or streamed); the state, created already sharded or restored.
  feed = feeds.make(config, ds, exp, clean_labels)
  # Records past the state's step are replayed (a fresh start keeps none); a torn line is dropped.
  log.rewind(-1 if latest is None else latest)
  if latest is None:
    state = jax.jit(exp.init_state, out_shardings=exp.state_shardings)(
        jax.random.PRNGKey(config.seed), exp.padded_labels)
    if init_from is not None:
      state = pretrained.apply(state, init_from)
    epoch_sums = None
  else:
    epoch_sums = saved_meta.get('epoch_sums')
    peers.progress['checkpoint'] = latest
    logging.info('Resumed from %s at step %d (epoch %d)', ckpt.directory, latest, latest // spe)

  run_ctx.predict = feed.predictor
  run_ctx.predictions = feed.predictions
  epoch_end = EpochEnd(config, ds, exp, feed, ckpt, log, suites, workdir, clean_labels)

  # The loop: calls of up to config.steps_per_call steps, each ending where a log line, an
  # epoch's end or a stop may be due; those are decided on the step number, as for one step.
  first = int(state.step)
  steps = step.TrainSteps(config, exp, feed, update_table=not method.refresh_pass,
                          epoch_sums=epoch_sums)
  last_test, stopped_by = {}, None
  progress = periodic.Progress(total_steps, config.batch_size)
  step_now = first  # steps done
  with periodic.StopRequest() as stop, feed:
    if init_from is not None:
      epoch_end.start(state)
    while step_now < total_steps:
      n = periodic.call_length(step_now, config.steps_per_call, (config.log_every_steps, spe),
                               total_steps)
      state = steps.advance(state, step_now, n)
      step_now += n
      peers.progress['step'] = step_now
      if step_now == first + n:  # keep compilation out of the speed and ETA figures
        jax.block_until_ready(state)
        logging.info('Compiled and ran the first train call (%d step%s) in %.1f s', n,
                     's' if n > 1 else '', progress.elapsed())
        progress.reset(step_now)
      by_steps = periodic.itstime(step_now, config.log_every_steps)
      if by_steps or progress.due(config.log_every_seconds):  # by time: on the console only
        interval = steps.take('interval') if by_steps else steps.peek('interval')
        loss = interval['loss_sum'] / max(interval['count'], 1)  # since the last recorded line
        if not math.isfinite(loss):
          diverged(ckpt, loss, f'at step {step_now}')
        lr = float(exp.schedule(step_now))
        figures = {'loss': loss, 'learning_rate': lr}
        if progress.measured(step_now):  # no speed right after compiling the first call
          rate = progress.rate(step_now)
          figures.update(steps_per_s=rate, images_per_s=rate * config.batch_size)
        logging.info('epoch %d/%d step %d/%d loss %.4f lr %.4g %s', (step_now - 1) // spe + 1,
                     config.num_epochs, step_now, total_steps, loss, lr, progress.line(step_now))
        if by_steps:
          log.progress(step_now, figures)
      if periodic.itstime(step_now, spe):
        state, test, stopped_by = epoch_end.end(state, steps.take('epoch'), step_now, stop)
        last_test = test or last_test
        progress.reset(step_now)
      elif stop.agreed(step_now, config.log_every_steps):  # inside an epoch: save here
        stopped_by = stop.name()
        epoch_end.save(step_now, state, steps.peek('epoch'))
      if stopped_by is not None:
        break
  if stopped_by is not None:
    logging.warning('Stopped by %s at step %d; checkpoint saved in %s. Run the same command to '
                    'resume.', stopped_by, step_now, ckpt.directory)
  ckpt.close()
  if stopped_by is None:
    logging.info('Done: %d steps. Test: %s', total_steps, json.dumps(last_test))
  return dict(last_test, stopped_by=stopped_by)
