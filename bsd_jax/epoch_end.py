"""What happens at the end of an epoch of training, after its last step: a method's refresh pass
and table statistics, the train record, the evaluation suites that are due, the checkpoint, and
after the last epoch the final evaluation files (`EpochEnd`)."""
import functools
import json
import logging
import math
import os

import jax
import numpy as np

from bsd_jax import distributed, eval_step, peers, periodic, sharding
from bsd_jax.errors import Diverged

MAX_CLASS_TARGETS = 1000  # eval/class_targets.npz is [K, K]: none for more classes


def diverged(ckpt, loss, when):
  """Diverged naming the loss, when it was seen and the newest checkpoint."""
  newest = ckpt.latest_step()
  where = ('no checkpoint has been written' if newest is None else
           f'the newest checkpoint is {ckpt.directory}/{newest}')
  raise Diverged(f'training loss is {loss} {when}; {where} (a lower learning rate, or another '
                 'config, in another --workdir)')


def log_line(epoch, config, split, values):
  logging.info('epoch %d/%d %-5s %s', epoch, config.num_epochs, split,
               ' '.join(f'{k} {v:.4f}' for k, v in values.items()))


class EpochEnd:
  """`end(state, sums, step_now, stop)` after the epoch ending at `step_now` (`sums`: the
  epoch's totals of the step's sums, on the host): refresh pass, train record, evaluations and
  checkpoint; returns (state, last test metrics or None, name of the stop signal or None).
  `suites`: [(suite, every_epochs)], the test suite first."""

  def __init__(self, config, ds, exp, feed, ckpt, log, suites, workdir, clean_labels):
    self.config, self.ds, self.exp, self.feed = config, ds, exp, feed
    self.ckpt, self.log, self.suites, self.workdir = ckpt, log, suites, workdir
    method, mesh, k = exp.method, exp.mesh, ds.num_classes
    # A method's refresh pass, jitted; the state is donated and keeps its shardings.
    self.refresh = None if not method.refresh_pass else jax.jit(
        eval_step.make_refresh_step(exp.model, method, mesh, exp.mean, exp.std,
                               steps_per_epoch=exp.steps_per_epoch),
        out_shardings=exp.state_shardings, donate_argnums=(0,))
    self.epoch_stats = None if method.epoch_stats is None else jax.jit(
        functools.partial(method.epoch_stats, num_classes=k))
    self.class_targets = None if method.class_targets is None else jax.jit(
        functools.partial(method.class_targets, num_classes=k),
        out_shardings=sharding.replicated(mesh))
    # Targets that need the model's prediction for each row: summed over an eval-mode pass.
    self.class_target_sums = None if not method.targets_need_probs else jax.jit(
        eval_step.make_class_target_sums(exp.model, method, mesh, exp.mean, exp.std, k),
        out_shardings=sharding.replicated(mesh))
    # Per-sample arrays laid out like the table's rows (padding rows: label 0, not valid).
    n = ds.num_train
    self.table_rows = {'labels': sharding.put_rows(ds.train_labels, None, n, mesh),
                       'valid': sharding.put_rows(np.ones(n, bool), None, n, mesh),
                       'clean_labels': None if clean_labels is None else
                       sharding.put_rows(clean_labels, None, n, mesh)}

  def meta(self, sums):
    """The checkpoint's JSON record (`sums`: the epoch's sums so far, when stopped mid-epoch)."""
    return {'num_train': self.ds.num_train, 'num_classes': self.ds.num_classes,
            'dataset': self.ds.name, 'method': self.config.method,
            'model': self.config.model.name,
            'config': json.loads(self.config.to_json()),  # config.json, should it be lost
            'epoch_sums': None if sums is None else {k: float(v) for k, v in sums.items()}}

  def save(self, step_now, state, sums=None):
    self.ckpt.save(step_now, state, self.meta(sums))
    peers.progress['checkpoint'] = step_now

  def _run_suite(self, suite, state, step_now):
    """Run one evaluation suite on the live state; its numbers go to metrics.jsonl and the log.
    Returns (the numbers, the suite's record)."""
    epoch = step_now // self.exp.steps_per_epoch
    record = suite.run(state, step_now)
    values = suite.scalars(record)
    self.log.write(step_now, epoch, suite.name, values)
    log_line(epoch, self.config, suite.name, values)
    return values, record

  def _write_final_evaluation(self, suite, record, state, step_now):
    """After the last checkpoint: for a method with targets in its table (BSD),
    eval/class_targets.npz (the mean target of each given label, [K, K], at most
    MAX_CLASS_TARGETS classes; the label counts; the class names, empty where the source has
    none), and the test suite's record of the last step (what the evaluate command would write,
    with the reliability bins before and after scaling). A failure here (a full disk) is a
    warning: the run and its checkpoint are complete. The reliability diagrams are left to the
    evaluate command and the report (drawn from the record's bins): training imports no
    matplotlib."""
    targets, rows = None, self.table_rows
    if self.ds.num_classes <= MAX_CLASS_TARGETS:
      if self.class_targets is not None:
        targets = jax.device_get(self.class_targets(state.table, rows['labels'],
                                                    rows['valid']))  # every process
      elif self.class_target_sums is not None:
        targets = self._class_targets_by_pass(state)
    if not distributed.is_main():
      return
    if targets is not None:
      path = os.path.join(self.workdir, 'eval', 'class_targets.npz')
      try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + '.tmp', 'wb') as f:
          np.savez(f, matrix=targets[0], counts=targets[1], step=step_now,
                   class_names=np.asarray(self.ds.class_names, str))
        os.replace(path + '.tmp', path)
      except OSError as e:
        logging.warning('Cannot write %s (%s)', path, e)
    if record is not None:
      try:
        suite.write(self.workdir, record, diagrams=False)
      except OSError as e:
        logging.warning('Cannot write the final evaluation to %s/eval (%s); `python -m '
                        'bsd_jax.evaluate --workdir %s` writes it from the last checkpoint',
                        self.workdir, e, self.workdir)

  def _class_targets_by_pass(self, state):
    """class_mean_targets of a method whose targets need the model's prediction for each row
    (Method.targets_need_probs): the final model's eval-mode predictions on the training set,
    in one ordered pass (every process)."""
    k = self.ds.num_classes
    sums = (np.zeros((k, k), np.float32), np.zeros(k, np.float32))
    for batch in self.feed.ordered_batches():
      out = jax.device_get(self.class_target_sums(state, self.feed.train_data, batch))
      sums = (sums[0] + out[0], sums[1] + out[1])
    return sums[0] / np.maximum(sums[1], 1.0)[:, None], sums[1]

  def start(self, state):
    """A run started from loaded weights (config.init_from): the test split's figures before
    the first step, as epoch 0: where fine-tuning starts (the source run's own figures for the
    same classes, chance for a head started afresh)."""
    self._run_suite(self.suites[0][0], state, 0)

  def end(self, state, sums, step_now, stop):
    config, spe, total = self.config, self.exp.steps_per_epoch, self.exp.total_steps
    epoch = step_now // spe

    def due(every_epochs):
      return periodic.itstime(step_now, every_epochs * spe, total)

    if self.refresh is not None:
      for batch in self.feed.ordered_batches():
        state = self.refresh(state, self.feed.train_data, batch)
    train = {'loss': sums['loss_sum'] / sums['count'],
             'accuracy': sums['correct'] / sums['count'],
             'confidence': sums['confidence_sum'] / sums['count'],
             'learning_rate': float(self.exp.schedule(step_now))}
    if 'correct_clean' in sums:
      train['accuracy_clean_labels'] = sums['correct_clean'] / sums['count']
    if not math.isfinite(train['loss']):
      diverged(self.ckpt, train['loss'], f'in epoch {epoch}')
    if self.epoch_stats is not None:  # in order (jit sorts each dict)
      for stats in self.epoch_stats(state.table, **self.table_rows):
        train.update({k: float(v) for k, v in stats.items()})
    if self.exp.method.visit_stats is not None:
      train.update(self.exp.method.visit_stats(sums, self.ds.num_classes))
    self.log.write(step_now, epoch, 'train', train)
    log_line(epoch, config, 'train', train)
    (test, test_every), *others = self.suites
    last_test, test_record = (self._run_suite(test, state, step_now) if due(test_every)
                              else (None, None))
    stopped_by = stop.name() if step_now < total and stop.agreed(step_now, 1) else None
    for suite, every in others:
      if due(every) and stopped_by:  # checkpoint first: a stop has a grace period
        logging.warning('Stopping: suite %s of epoch %d is not run', suite.name, epoch)
      elif due(every):
        self._run_suite(suite, state, step_now)
    if stopped_by or due(config.checkpoint_every_epochs):
      self.save(step_now, state)
    if step_now == total:
      self._write_final_evaluation(test, test_record, state, step_now)
    return state, last_test, stopped_by
