"""CutMix (Yun et al. 2019) and Mixup (Zhang et al. 2018) on device, one draw per batch.

A batch is mixed with a permutation of itself: image i with image perm[i], in the proportion
lam of image i (Mixup: lam x_i + (1 - lam) x_j; CutMix: x_i with a box of x_j pasted in, lam =
the fraction of x_i left). The loss is mixed with the same lam (bsd_jax/step.py): lam x the
method's loss against sample i's targets + (1 - lam) x against sample j's, which for a loss
linear in its target (cross-entropy on hard or soft targets: CE, label smoothing, PS-KD, BSD)
is the loss against the mixed target lam t_i + (1 - lam) t_j. config.data: `cutmix_alpha`,
`mixup_alpha` (Beta(alpha, alpha) for lam; 0 = off), `mix_prob` (the chance a batch is mixed),
`mix_switch_prob` (with both on: the chance of CutMix rather than Mixup)."""
import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class MixConfig:
  cutmix_alpha: float = 0.0
  mixup_alpha: float = 0.0
  prob: float = 1.0
  switch_prob: float = 0.5

  @classmethod
  def from_config(cls, d):
    """The config.data keys, or None when neither CutMix nor Mixup is on."""
    if not (d.cutmix_alpha > 0 or d.mixup_alpha > 0):
      return None
    return cls(float(d.cutmix_alpha), float(d.mixup_alpha), float(d.mix_prob),
               float(d.mix_switch_prob))


def mixup(x, perm, lam):
  """lam x + (1 - lam) x[perm]."""
  return lam * x + (1 - lam) * x[perm]


def cutmix_box(key, height: int, width: int, lam):
  """(y0, y1, x0, x1) of a box of area fraction ~ 1 - lam, centred uniformly, clipped to the
  image (CutMix's rand_bbox)."""
  k_y, k_x = jax.random.split(key)
  ratio = jnp.sqrt(1.0 - lam)
  cut_h, cut_w = (height * ratio).astype(jnp.int32), (width * ratio).astype(jnp.int32)
  cy = jax.random.randint(k_y, (), 0, height)
  cx = jax.random.randint(k_x, (), 0, width)
  return (jnp.clip(cy - cut_h // 2, 0, height), jnp.clip(cy + cut_h // 2, 0, height),
          jnp.clip(cx - cut_w // 2, 0, width), jnp.clip(cx + cut_w // 2, 0, width))


def cutmix(x, perm, box):
  """x [B, H, W, C] with the box of x[perm] pasted in; returns (images, lam = the fraction of
  each image that is its own)."""
  y0, y1, x0, x1 = box
  h, w = x.shape[1], x.shape[2]
  rows = jnp.arange(h)[:, None]
  cols = jnp.arange(w)[None, :]
  inside = (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)
  mixed = jnp.where(inside[None, :, :, None], x[perm], x)
  return mixed, 1.0 - jnp.sum(inside) / (h * w)


def mix_batch(key, x, mix: MixConfig):
  """(mixed images, perm, lam) of one batch of float images [B, H, W, C]: unmixed (lam 1) with
  probability 1 - mix.prob; else CutMix or Mixup as configured."""
  k_apply, k_switch, k_perm, k_lam, k_box = jax.random.split(key, 5)
  perm = jax.random.permutation(k_perm, x.shape[0])
  candidates = []
  if mix.mixup_alpha > 0:
    lam = jax.random.beta(k_lam, mix.mixup_alpha, mix.mixup_alpha)
    candidates.append((mixup(x, perm, lam), lam))
  if mix.cutmix_alpha > 0:
    lam = jax.random.beta(jax.random.fold_in(k_lam, 1), mix.cutmix_alpha, mix.cutmix_alpha)
    candidates.append(cutmix(x, perm, cutmix_box(k_box, x.shape[1], x.shape[2], lam)))
  images, lam = candidates[0]
  if len(candidates) == 2:  # both on: CutMix with probability switch_prob
    use_cutmix = jax.random.bernoulli(k_switch, mix.switch_prob)
    images = jnp.where(use_cutmix, candidates[1][0], images)
    lam = jnp.where(use_cutmix, candidates[1][1], lam)
  apply = jax.random.bernoulli(k_apply, mix.prob)
  return jnp.where(apply, images, x), perm, jnp.where(apply, lam, 1.0).astype(jnp.float32)


def mixed_loss(loss_fn, inputs, perm, lam):
  """lam x loss_fn(inputs) + (1 - lam) x loss_fn(inputs with the labels and table rows of the
  partners perm): the method's loss against the mixed targets (module docstring)."""
  partner = inputs._replace(labels=inputs.labels[perm],
                            rows=jax.tree.map(lambda r: r[perm], inputs.rows))
  return lam * loss_fn(inputs) + (1.0 - lam) * loss_fn(partner)
