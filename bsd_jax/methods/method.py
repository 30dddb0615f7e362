"""What a method is to the trainer: the `Method` record, what a step gives it (`StepInputs`),
what the registry knows of it before it is built (`Entry`), and the helpers the methods share.

A method turns the step's logits into a scalar loss. What it may use arrives in `StepInputs`:
the batch's labels and mask, its rows of the method's per-sample table (BSD: the Dirichlet
parameters alpha; PS-KD: last epoch's predictions; temporal ensembling: the prediction EMA),
the epoch, the logits of an extra view that the input pipeline adds to the batch (CS-KD: a
same-class partner of each sample; DLB: the previous batch, augmented again), and a carry from
the previous step (DLB: that batch's logits). The train step gathers the rows, forwards the
batch and its extra view together, scatters `update_rows(rows, probs, epoch)` back for the
visited samples, and keeps `next_carry(inputs)`. A table is an [N, W] array or a dict of
arrays with N rows (BSD's sparse posterior: class ids, values, rest), every one split by rows.
Methods without a table keep a [N, 1] zero column and methods without a carry a scalar, so
every method has the same TrainState layout.

Everything else the loop does for a method is a field too (`epoch_stats`, `visit_sums`,
`visit_stats`, `refresh_pass`, `row_targets`, `targets_need_probs`, `class_targets`,
`description`), so that train.py and step.py never name one."""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp


class StepInputs(NamedTuple):
  logits: jax.Array          # [B, K] train-mode logits of the batch
  labels: jax.Array          # [B]
  mask: jax.Array            # [B] 1 for real samples, 0 for the padding of an epoch's last batch
  rows: Any                  # the batch's rows of the per-sample table: [B, W], or a dict of
                             # [B, ...] arrays (BSD's sparse posterior)
  epoch: jax.Array           # int32 scalar, 0-based
  extra_logits: Any = None   # [B, K] logits of the extra view, when the method asks for one
  extra_labels: Any = None
  extra_mask: Any = None
  carry: Any = None


class Method(NamedTuple):
  name: str
  loss: Callable                      # StepInputs -> scalar
  init_table: Callable = None         # (labels [N], K) -> [N, W], stored in table_dtype; or a
                                      # dict of [N, ...] arrays, each stored as made (every one
                                      # split by rows); None: a zero column
  update_rows: Callable = None        # (rows, tails, epoch) -> rows; None: the table is fixed
  extra_view: str = None              # None, 'class_pair' or 'previous_batch'
  init_carry: Callable = None         # (batch_size, K) -> carry; None: no carry
  next_carry: Callable = None         # StepInputs -> carry
  # (table, labels [N_pad], valid [N_pad] bool, clean labels [N_pad] or None, *, num_classes)
  # -> a tuple of {name: scalar}: statistics of the whole table, logged with each epoch's train
  # record in that order (the loop jits it, and jit returns each dict's keys sorted).
  epoch_stats: Callable = None
  # Statistics taken at each visit instead, where a row's target depends on more than the
  # table (BSD's sparse posterior with rest_spread 'prediction', 'class' or 'blend'):
  # (rows after the visit's update, tails, labels [B], mask [B], clean labels [B] or None)
  # -> {name: scalar}, added to the step's sums (names ending in '_max': the largest), and
  # (the epoch's sums, K) -> {name: float} for the train record.
  visit_sums: Callable = None
  visit_stats: Callable = None
  # True: update_rows runs on clean eval-mode predictions in one ordered pass over the training
  # set at each epoch end, instead of on the train-pass predictions at each visit.
  refresh_pass: bool = False
  row_targets: Callable = None        # (rows, K, tails) -> [B, K] target distributions
                                      # (SupCon's 'target_argmax' positives); None: not available
  targets_need_probs: bool = False    # row_targets use tails (the model's prediction for each
                                      # row): the class targets come from an eval-mode pass
  # What the row functions (update_rows, visit_sums, row_targets) get as `tails`: the rows'
  # probs [B, K], or with row_profile {'probs': probs, 'profile': row_profile(carry, labels)}.
  row_profile: Callable = None
  # (table, labels, valid, num_classes) -> class_mean_targets of the whole table
  # (eval/class_targets.npz); None: from row_targets (get_method), or not available
  class_targets: Callable = None
  description: str = ''               # logged at the start of a run (e.g. derived constants)


class Entry(NamedTuple):
  """A registered method (methods.register): what the config check, the resume check and the
  sweep need to know of it without building it."""
  build: Callable                   # config -> Method
  section: str = None               # the config section of its hyperparameters
                                    # (configs/default.py); None: it has none
  check: Callable = None            # config -> None; UserError naming the first bad key of its
                                    # section (bsd_jax.errors.require*), before any work
  check_classes: Callable = None    # (config, num_classes) -> None, once the data is read
  acts: Callable = None             # (dotted key of its section, flat config dict) -> whether
                                    # the key acts in that run; None: every key of its section


def class_mean_targets(targets, labels, valid, num_classes: int):
  """([K, K] mean target of the valid samples of each given label (row k: label k; zeros where a
  label has none), [K] their counts): the class structure a method's targets hold."""
  w = valid.astype(jnp.float32)
  sums = jax.ops.segment_sum(targets.astype(jnp.float32) * w[:, None], labels, num_classes)
  counts = jax.ops.segment_sum(w, labels, num_classes)
  return sums / jnp.maximum(counts, 1.0)[:, None], counts


def masked_mean(values, mask):
  return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def kl_divergence(teacher_logits, student_logits, temperature):
  """Per-sample KL(softmax(teacher/T) || softmax(student/T)); the teacher carries no gradient."""
  t = jax.lax.stop_gradient(teacher_logits.astype(jnp.float32)) / temperature
  s = student_logits.astype(jnp.float32) / temperature
  p_t = jax.nn.softmax(t, -1)
  return jnp.sum(p_t * (jax.nn.log_softmax(t, -1) - jax.nn.log_softmax(s, -1)), -1)
