"""The seven baselines (docs/configuration.md, "The baselines against their authors' code"), one
factory each, config -> Method, and the checks of their config sections (`check_<section>`).

Each is registered by its function name in bsd_jax/methods/__init__.py with its section
(configs/default.py) and its check."""
import jax
import jax.numpy as jnp

from bsd_jax import losses
from bsd_jax.errors import require, require_in, require_positive
from bsd_jax.methods.method import Method, kl_divergence, masked_mean
from bsd_jax.posterior.bfloat16 import bfloat16_holds


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
  """Teacher-free KD, regularisation form (Yuan et al. 2020), as its authors' code computes it
  (loss_kd_regularization): a virtual teacher q with `correct_prob` on the label and the rest
  uniform, softened as t = softmax(q / T); loss (1 - a) CE + a * multiplier * KL(t || softmax(z)),
  the student NOT divided by T. The KL is summed over classes per sample; their code averages it
  over batch x classes (KLDivLoss's 'mean') and multiplies by their m, so multiplier = m / K
  (their ResNet-18 on CIFAR-100: m = 100, multiplier 1)."""
  c = config.tfkd

  def loss(inp):
    k = inp.logits.shape[-1]
    q = jnp.where(_one_hot_like(inp) > 0, c.correct_prob, (1 - c.correct_prob) / (k - 1))
    teacher = jax.nn.softmax(q / c.temperature, -1)
    log_t = jax.nn.log_softmax(q / c.temperature, -1)
    log_p = jax.nn.log_softmax(inp.logits.astype(jnp.float32), -1)
    kl = jnp.sum(teacher * (log_t - log_p), -1)
    per = (1 - c.alpha) * losses.cross_entropy(inp.logits, inp.labels) + c.alpha * c.multiplier * kl
    return masked_mean(per, inp.mask)

  return Method('tfkd_reg', loss)


def dlb(config):
  """DLB (Shen et al. 2022), as its authors' code computes it: each batch also carries the
  previous batch, augmented again; CE averaged over both halves, plus
  alpha T^2 KL(softmax(z_prev/T) || softmax(z_now/T)) averaged over the repeated samples
  (F.kl_div's 'batchmean'), where z_prev are their logits from the previous step (the carry)."""
  temp, weight = config.dlb.temperature, config.dlb.weight

  def loss(inp):
    ce_all = (jnp.sum(losses.cross_entropy(inp.logits, inp.labels) * inp.mask)
              + jnp.sum(losses.cross_entropy(inp.extra_logits, inp.extra_labels) * inp.extra_mask))
    kl = kl_divergence(inp.carry, inp.extra_logits, temp)
    return (ce_all / jnp.maximum(jnp.sum(inp.mask + inp.extra_mask), 1)
            + weight * temp ** 2 * masked_mean(kl, inp.extra_mask))

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


def check_label_smoothing(config):
  require_in(config.label_smoothing.eps, 0, 1, 'label_smoothing.eps')


def check_pskd(config):
  require_in(config.pskd.alpha_T, 0, 1, 'pskd.alpha_T')


def check_cskd(config):
  require_positive(config, 'cskd.temperature')
  require_positive(config, 'cskd.weight', strict=False)


def check_tfkd(config):
  require_in(config.tfkd.alpha, 0, 1, 'tfkd.alpha')
  require_in(config.tfkd.correct_prob, 0, 1, 'tfkd.correct_prob', low_open=True, high_open=True)
  require_positive(config, 'tfkd.temperature')
  require_positive(config, 'tfkd.multiplier', strict=False)


def check_dlb(config):
  require_positive(config, 'dlb.temperature')
  require_positive(config, 'dlb.weight', strict=False)


def check_temporal_ensembling(config):
  a = config.temporal_ensembling.alpha
  require_in(a, 0, 1, 'temporal_ensembling.alpha', high_open=True)
  require(config.table_dtype != 'bfloat16' or bfloat16_holds(a),
          f"config.table_dtype = 'bfloat16' cannot hold temporal ensembling's EMA at "
          f'temporal_ensembling.alpha = {a}: an update moves an entry by {1 - a:.0%} of its '
          "distance to the prediction, too little for bfloat16's resolution (2^-8) to follow "
          "within 1% (alpha <= 0.609 can); use table_dtype 'float32'")
  require_positive(config, 'temporal_ensembling.max_weight', strict=False)
  require_positive(config, 'temporal_ensembling.rampup_epochs')
