"""Training methods (METHOD.md sections 1 and 2): one function per method, one registry entry.

A method turns the step's logits into a scalar loss. What it may use arrives in `StepInputs`:
the batch's labels and mask, its rows of the method's per-sample table (BSD: the Dirichlet
parameters alpha; PS-KD: last epoch's predictions; temporal ensembling: the prediction EMA),
the epoch, the logits of an extra view that the input pipeline adds to the batch (CS-KD: a
same-class partner of each sample; DLB: the previous batch, augmented again), and a carry from
the previous step (DLB: that batch's logits). The train step gathers the rows, forwards the
batch and its extra view together, scatters `update_rows(rows, probs, epoch)` back for the
visited samples, and keeps `next_carry(inputs)`. Methods without a table keep a [N, 1] zero
column and methods without a carry a scalar, so every method has the same TrainState layout.
"""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from bsd_jax import losses, targets
from bsd_jax.errors import UserError


class StepInputs(NamedTuple):
  logits: jax.Array          # [B, K] train-mode logits of the batch
  labels: jax.Array          # [B]
  mask: jax.Array            # [B] 1 for real samples, 0 for the padding of an epoch's last batch
  rows: jax.Array            # [B, W] the batch's rows of the per-sample table
  epoch: jax.Array           # int32 scalar, 0-based
  extra_logits: Any = None   # [B, K] logits of the extra view, when the method asks for one
  extra_labels: Any = None
  extra_mask: Any = None
  carry: Any = None


class Method(NamedTuple):
  name: str
  loss: Callable                      # StepInputs -> scalar
  init_table: Callable = None         # (labels [N], K) -> [N, W]; None: a zero column
  update_rows: Callable = None        # (rows, probs, epoch) -> rows; None: the table is fixed
  extra_view: str = None              # None, 'class_pair' or 'previous_batch'
  init_carry: Callable = None         # (batch_size, K) -> carry; None: no carry
  next_carry: Callable = None         # StepInputs -> carry


def masked_mean(values, mask):
  return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def kl_divergence(teacher_logits, student_logits, temperature):
  """Per-sample KL(softmax(teacher/T) || softmax(student/T)); the teacher carries no gradient."""
  t = jax.lax.stop_gradient(teacher_logits.astype(jnp.float32)) / temperature
  s = student_logits.astype(jnp.float32) / temperature
  p_t = jax.nn.softmax(t, -1)
  return jnp.sum(p_t * (jax.nn.log_softmax(t, -1) - jax.nn.log_softmax(s, -1)), -1)


def _one_hot_like(inp):
  return jax.nn.one_hot(inp.labels, inp.logits.shape[-1], dtype=jnp.float32)


def ce(config):
  """Hard-label cross-entropy."""
  return Method('ce', lambda inp: masked_mean(losses.cross_entropy(inp.logits, inp.labels),
                                                inp.mask))


def label_smoothing(config):
  """Target (1 - eps) one-hot + eps / K uniform: eps spread over all K classes (Szegedy et al.
  2016), so the label gets 1 - eps + eps / K."""
  eps = config.label_smoothing.eps

  def loss(inp):
    k = inp.logits.shape[-1]
    t = (1 - eps) * _one_hot_like(inp) + eps / k
    return masked_mean(losses.soft_cross_entropy(inp.logits, t), inp.mask)

  return Method('label_smoothing', loss)


def pskd(config):
  """PS-KD (Kim et al. 2021): target (1 - a_t) one-hot + a_t p_prev, a_t = a_T (epoch+1)/epochs;
  p_prev is the sample's train-pass softmax from the previous epoch (one-hot in epoch 0)."""
  alpha_t, epochs = config.pskd.alpha_T, config.num_epochs

  def loss(inp):
    a = alpha_t * (inp.epoch + 1).astype(jnp.float32) / epochs
    t = (1 - a) * _one_hot_like(inp) + a * inp.rows
    return masked_mean(losses.soft_cross_entropy(inp.logits, t), inp.mask)

  return Method('pskd', loss,
                init_table=lambda labels, k: jax.nn.one_hot(labels, k, dtype=jnp.float32),
                update_rows=lambda rows, probs, epoch: probs)


def cskd(config):
  """CS-KD (Yun et al. 2020): CE(x, y) + lambda T^2 KL(softmax(z_x'/T) || softmax(z_x/T)), x' a
  different sample of the same class (the pipeline pairs them), z_x' without gradient."""
  temp, weight = config.cskd.temperature, config.cskd.weight

  def loss(inp):
    per = (losses.cross_entropy(inp.logits, inp.labels)
           + weight * temp ** 2 * kl_divergence(inp.extra_logits, inp.logits, temp))
    return masked_mean(per, inp.mask)

  return Method('cskd', loss, extra_view='class_pair')


def tfkd_reg(config):
  """Teacher-free KD, regularisation form (Yuan et al. 2020): a virtual teacher with
  `correct_prob` on the label and the rest uniform, softened as softmax(q / T); loss
  (1 - a) CE + a * multiplier * KL(teacher || softmax(z / T)). The KL is summed over classes
  per sample (their code averages it over batch x classes and multiplies to compensate)."""
  c = config.tfkd

  def loss(inp):
    k = inp.logits.shape[-1]
    q = jnp.where(_one_hot_like(inp) > 0, c.correct_prob, (1 - c.correct_prob) / (k - 1))
    per = ((1 - c.alpha) * losses.cross_entropy(inp.logits, inp.labels)
           + c.alpha * c.multiplier * kl_divergence(q, inp.logits, c.temperature))
    return masked_mean(per, inp.mask)

  return Method('tfkd_reg', loss)


def dlb(config):
  """DLB (Shen et al. 2022): each batch also carries the previous batch, augmented again; CE on
  both, plus alpha T^2 KL(softmax(z_prev/T) || softmax(z_now/T)) on the repeated samples, where
  z_prev are their logits from the previous step (the carry)."""
  temp, weight = config.dlb.temperature, config.dlb.weight

  def loss(inp):
    ce_all = (jnp.sum(losses.cross_entropy(inp.logits, inp.labels) * inp.mask)
              + jnp.sum(losses.cross_entropy(inp.extra_logits, inp.extra_labels) * inp.extra_mask))
    kl = jnp.sum(kl_divergence(inp.carry, inp.extra_logits, temp) * inp.extra_mask)
    return (ce_all + weight * temp ** 2 * kl) / jnp.maximum(jnp.sum(inp.mask + inp.extra_mask), 1)

  return Method('dlb', loss, extra_view='previous_batch',
                init_carry=lambda b, k: jnp.zeros((b, k), jnp.float32),
                next_carry=lambda inp: jax.lax.stop_gradient(inp.logits.astype(jnp.float32)))


def temporal_ensembling(config):
  """Temporal ensembling (Laine & Aila 2017), supervised: Z_i <- a Z_i + (1 - a) p_i once per
  epoch; loss CE + w(epoch) * mean_j (p_j - Z_j / (1 - a^epoch))^2, w ramped up as
  w_max exp(-5 (1 - epoch/rampup)^2) (0 in epoch 0, where no ensemble exists yet)."""
  c = config.temporal_ensembling

  def loss(inp):
    t = inp.epoch.astype(jnp.float32)
    target = inp.rows / jnp.maximum(1 - c.alpha ** t, 1e-12)
    ramp = jnp.minimum(t / c.rampup_epochs, 1.0)
    w = jnp.where(inp.epoch > 0, c.max_weight * jnp.exp(-5 * (1 - ramp) ** 2), 0.0)
    probs = jax.nn.softmax(inp.logits.astype(jnp.float32), -1)
    consistency = jnp.mean((probs - jax.lax.stop_gradient(target)) ** 2, -1)
    return masked_mean(losses.cross_entropy(inp.logits, inp.labels) + w * consistency, inp.mask)

  return Method('temporal_ensembling', loss,
                init_table=lambda labels, k: jnp.zeros((labels.shape[0], k), jnp.float32),
                update_rows=lambda rows, probs, epoch: c.alpha * rows + (1 - c.alpha) * probs)


def bsd(config):
  """BSD (METHOD.md section 1): soft-target CE on the posterior mean of the sample's Dirichlet,
  and alpha_i <- gamma alpha_i + p_i at each visit."""
  hp = bsd_hparams(config)
  return Method(
      'bsd',
      lambda inp: masked_mean(losses.soft_cross_entropy(
          inp.logits, targets.posterior_mean(inp.rows), hp['temperature']), inp.mask),
      init_table=lambda labels, k: targets.init_alpha(labels, k, hp['c'], hp['eps']),
      update_rows=lambda rows, probs, epoch: targets.update_alpha(rows, probs, hp['gamma']))


METHODS = {f.__name__: f for f in (ce, label_smoothing, pskd, cskd, tfkd_reg, dlb,
                                   temporal_ensembling, bsd)}


def bsd_hparams(config) -> dict:
  """The BSD constants of a run: gamma from the key or from the end label weight, c from gamma."""
  b = config.bsd
  if b.gamma is None and not 0 < b.label_weight_end < 1:
    raise UserError(f'config.bsd.label_weight_end must be in (0, 1), got {b.label_weight_end}')
  gamma = b.gamma if b.gamma is not None else targets.gamma_for_label_weight(
      b.label_weight_end, config.num_epochs)
  if not 0.0 < gamma <= 1.0:
    raise UserError(f'config.bsd.gamma must be in (0, 1], got {gamma}')
  if b.c is not None:
    c = b.c
  elif gamma < 1.0:
    c = targets.prior_strength_for(gamma)
  else:
    raise UserError('config.bsd.c must be set when config.bsd.gamma = 1 (c = 1/(1-gamma) is '
                    'undefined)')
  if c <= 0:
    raise UserError(f'config.bsd.c must be > 0, got {c}')
  if b.eps <= 0:
    raise UserError(f'config.bsd.eps must be > 0, got {b.eps}')
  if b.temperature <= 0:
    raise UserError(f'config.bsd.temperature must be > 0, got {b.temperature}')
  return {'gamma': float(gamma), 'c': float(c), 'eps': float(b.eps),
          'temperature': float(b.temperature)}


def get_method(config) -> Method:
  if config.method not in METHODS:
    raise UserError(f'config.method: unknown method {config.method!r}; '
                    f'choose one of {sorted(METHODS)}')
  method = METHODS[config.method](config)
  if method.init_table is None:
    method = method._replace(init_table=lambda labels, k: jnp.zeros((labels.shape[0], 1)))
  if method.init_carry is None:
    method = method._replace(init_carry=lambda b, k: jnp.zeros((), jnp.float32))
  return method
