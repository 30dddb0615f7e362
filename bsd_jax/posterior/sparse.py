"""BSD's posterior kept sparse (`config.bsd.top_k = k`), for tables too large to hold dense
(ImageNet-21k: 14.2M x 21,843): the math as pure functions tested alone
(tests/test_bsd_sparse.py); methods/bsd.py makes the Method the trainer runs from them.

A row keeps k (class id, alpha) pairs and one scalar `rest`: the total alpha of the other K - k
classes. How `rest` is spread over them is `spread` (config.bsd.rest_spread): 'uniform', evenly;
or in proportion to a profile over the classes: 'prediction', the model's current prediction for
the sample (stop-gradient, the probabilities the step already has); 'class', the discounted sum
of the predictions made for the samples of the row's label (a [K, K] table of class profiles
beside the posterior, posterior/profiles.py), or any profile given as one, such as `blend`'s
(rest_spread 'blend': half the class profile, half the prediction). The row's total S = sum(values) + rest is the
dense row's total (an update makes it gamma x S + sum(p), wherever the mass sits), so only the
spread of the unkept mass is approximated; with k = K the row is the dense row (rest = 0). The
values may be stored in bfloat16 (config.table_dtype) where bfloat16 can follow the update
(`methods.bfloat16_holds(gamma)`: gamma <= 0.609, never at a usual run length); `rest` is float32
and absorbs the values' rounding, so the total stays exact to float32 rounding either way.

Shapes: ids int32 [..., k], values [..., k], rest float32 [..., 1] (a row of the table is the
three); probs float32 [..., K]. The functions that need the tail take the row's `profile`
[..., K]: its prediction under 'prediction' (the loss takes it from its logits), its label's
profile under 'class'."""
import jax
import jax.numpy as jnp

from bsd_jax.posterior.bfloat16 import check_bfloat16_decay


def init(labels, num_classes: int, k: int, c: float, eps: float, dtype=jnp.float32):
  """The prior: c on the label, eps on every other class; the kept slots hold the label and the
  k - 1 classes after it (cyclically), the rest eps x (K - k). Values in `dtype`; rounded to
  bfloat16, the rest is what they leave of the prior's total c + (K - 1) eps."""
  if not 0 < k <= num_classes:
    raise ValueError(f'posterior.sparse.init: k must be in 1..{num_classes}, got {k}')
  offsets = jnp.arange(k, dtype=jnp.int32)
  ids = (labels[:, None].astype(jnp.int32) + offsets[None, :]) % num_classes
  values = jnp.where(offsets[None, :] == 0, jnp.float32(c), jnp.float32(eps))
  values = jnp.broadcast_to(values, ids.shape)
  if jnp.dtype(dtype) == jnp.float32:
    return ids, values, jnp.full(labels.shape + (1,), eps * (num_classes - k), jnp.float32)
  prior_total = jnp.full(labels.shape + (1,), c + eps * (num_classes - 1), jnp.float32)
  return (ids,) + _stored(values, prior_total, num_classes, dtype)


def _stored(kept, row_total, num_classes: int, dtype):
  """(the kept values [..., k] float32 as stored in `dtype`, the rest [..., 1] float32 that makes
  each row's total `row_total`). Rounded to nearest; a row whose rounded values would exceed
  its total (bfloat16 rounding up a large value over a small rest) has them rounded towards
  zero instead, so that the rest is never negative and the row's mass is kept."""
  k = kept.shape[-1]
  stored = kept.astype(dtype)
  if jnp.dtype(dtype) != jnp.float32:
    down = jnp.where(stored.astype(jnp.float32) > kept,
                     jnp.nextafter(stored, jnp.zeros_like(stored)), stored)
    over = jnp.sum(stored.astype(jnp.float32), -1, keepdims=True) > row_total
    stored = jnp.where(over, down, stored)
  if k >= num_classes:
    return stored, jnp.zeros_like(row_total)
  return stored, jnp.maximum(row_total - jnp.sum(stored.astype(jnp.float32), -1, keepdims=True),
                             0.0)


def _other_share(rest, num_classes: int, k: int):
  """The alpha of each unkept class: rest / (K - k) (0 when every class is kept)."""
  if k >= num_classes:
    return jnp.zeros_like(rest)
  return rest / (num_classes - k)


SPREADS = ('uniform', 'prediction', 'class')


def unkept(ids, num_classes: int):
  """[..., K] bool: the classes a row does not keep."""
  kept = jnp.zeros(ids.shape[:-1] + (num_classes,), bool)
  return ~jnp.put_along_axis(kept, ids, True, axis=-1, inplace=False)


def tail_weights(ids, profile, num_classes: int):
  """[..., K] the share of `rest` each class gets under a profile: the profile on the unkept
  classes over their sum (0 on the kept ones); evenly where that sum underflows to 0. With
  every class kept, zeros."""
  k = ids.shape[-1]
  if k >= num_classes:
    return jnp.zeros(ids.shape[:-1] + (num_classes,), jnp.float32)
  off = unkept(ids, num_classes)
  p = jnp.where(off, jax.lax.stop_gradient(profile.astype(jnp.float32)), 0.0)
  mass = jnp.sum(p, -1, keepdims=True)
  even = off.astype(jnp.float32) / (num_classes - k)
  return jnp.where(mass > 0, p / jnp.where(mass > 0, mass, 1.0), even)


def blend(ids, class_profile, probs):
  """The tail profile of config.bsd.rest_spread = 'blend' [..., K]: half the label's class
  profile, half the sample's prediction, each as its share of the unkept classes
  (tail_weights); 0 on the kept classes, 1 over the unkept ones. The functions below take it as
  a 'class' profile."""
  num_classes = probs.shape[-1]
  return 0.5 * (tail_weights(ids, class_profile, num_classes)
                + tail_weights(ids, probs, num_classes))


def _check_spread(spread, profile, where):
  if spread not in SPREADS:
    raise ValueError(f'{where}: spread must be one of {SPREADS}, got {spread!r}')
  if spread != 'uniform' and profile is None:
    raise ValueError(f"{where}: spread {spread!r} needs the row's profile")


def total(values, rest):
  return jnp.sum(values.astype(jnp.float32), -1, keepdims=True) + rest.astype(jnp.float32)


def _positive(s):
  """s, or the smallest float32 where it is 0: a row of zeros (a padding row that a restore
  onto more devices added) has targets of zeros, not NaN."""
  return jnp.maximum(s, jnp.finfo(jnp.float32).tiny)


def update(ids, values, rest, probs, gamma: float, store_dtype=None, spread: str = 'uniform',
           profile=None):
  """gamma x alpha + p on the union of the kept ids and the top k of p (an unkept class's alpha
  read from `rest` by `spread`: under 'prediction' with these probs as the profile, under
  'class' with `profile`, the label's); the k largest are kept
  and `rest` set so that the row's total is gamma x S + sum(p) exactly (S: the old total), the
  kept values as they will be stored (`store_dtype`, default values.dtype) counted.
  probs [..., K] carry no gradient. Values in bfloat16 only where `methods.bfloat16_holds(gamma)`
  (else ValueError)."""
  check_bfloat16_decay(store_dtype or values.dtype, gamma, 'posterior.sparse.update')
  profile = probs if spread == 'prediction' else profile
  _check_spread(spread, profile, 'posterior.sparse.update')
  num_classes, k = probs.shape[-1], ids.shape[-1]
  probs = jax.lax.stop_gradient(probs.astype(jnp.float32))
  old_total = total(values, rest)
  _, top_ids = jax.lax.top_k(probs, k)
  top_ids = top_ids.astype(jnp.int32)
  if spread != 'uniform':
    share = rest.astype(jnp.float32) * jnp.take_along_axis(
        tail_weights(ids, profile, num_classes), top_ids, -1)
  else:
    share = jnp.broadcast_to(_other_share(rest.astype(jnp.float32), num_classes, k), top_ids.shape)
  already = jnp.any(top_ids[..., :, None] == ids[..., None, :], axis=-1)
  cand_ids = jnp.concatenate([ids, top_ids], -1)
  old = jnp.concatenate([values.astype(jnp.float32), share], -1)
  new = gamma * old + jnp.take_along_axis(probs, cand_ids, -1)
  new = jnp.where(jnp.concatenate([jnp.zeros_like(already), already], -1), -jnp.inf, new)
  kept, slot = jax.lax.top_k(new, k)
  new_ids = jnp.take_along_axis(cand_ids, slot, -1)
  # Rounded as stored: rest makes up for the storage's rounding of the kept values.
  new_total = gamma * old_total + jnp.sum(probs, -1, keepdims=True)
  stored, new_rest = _stored(kept, new_total, num_classes, store_dtype or values.dtype)
  return new_ids, stored.astype(values.dtype), new_rest


def target(ids, values, rest, num_classes: int):
  """(target mass of each kept class [..., k], of the unkept classes [..., 1]: each one's under
  'uniform'): the posterior mean; the kept mass plus (K - k) x the unkept share is one. Under
  'prediction' the unkept classes hold (K - k) x the second part together."""
  s = _positive(total(values, rest))
  k = ids.shape[-1]
  return values.astype(jnp.float32) / s, _other_share(rest.astype(jnp.float32), num_classes, k) / s


def dense(ids, values, rest, num_classes: int, spread: str = 'uniform', profile=None):
  """The dense alpha [..., K] a sparse row stands for (a batch's rows, or small K); `profile`:
  the row's prediction under 'prediction', its label's profile under 'class'."""
  _check_spread(spread, profile, 'posterior.sparse.dense')
  if spread != 'uniform':
    out = rest.astype(jnp.float32) * tail_weights(ids, profile, num_classes)
  else:
    share = _other_share(rest.astype(jnp.float32), num_classes, ids.shape[-1])
    out = jnp.broadcast_to(share, ids.shape[:-1] + (num_classes,))
  return jnp.put_along_axis(out, ids, values.astype(jnp.float32), axis=-1, inplace=False)


def dense_target(ids, values, rest, num_classes: int, spread: str = 'uniform', profile=None):
  """The dense target [..., K] a sparse row implies, its posterior mean (a batch's rows, or
  small K)."""
  return _normalized(dense(ids, values, rest, num_classes, spread, profile))


def _normalized(alpha):
  """alpha [..., K] over its sum (bsd.posterior_mean)."""
  alpha = alpha.astype(jnp.float32)
  return alpha / _positive(jnp.sum(alpha, -1, keepdims=True))


def soft_cross_entropy(logits, ids, values, rest, temperature: float = 1.0,
                       spread: str = 'uniform', profile=None):
  """Per-sample -sum_j t_j log softmax(z / T)_j against the sparse target, without a dense
  target: the kept classes' terms plus the unkept classes' log-probabilities weighted by the
  spread of `rest`: 'uniform', the unkept share times their sum (all classes' sum minus the
  kept ones'); 'prediction', rest / S times their mean under softmax(z) restricted to them (the
  logits' own prediction, stop-gradient; temperature 1 whatever T, the probabilities the
  update adds); 'class', the same under `profile` (the label's) restricted to them."""
  _check_spread(spread, logits if spread == 'prediction' else profile,
                'posterior.sparse.soft_cross_entropy')
  num_classes, k = logits.shape[-1], ids.shape[-1]
  z = logits.astype(jnp.float32)
  log_q = jax.nn.log_softmax(z / temperature, axis=-1)
  kept_t, other_t = target(ids, values, rest, num_classes)
  kept_log_q = jnp.take_along_axis(log_q, ids, -1)
  kept_term = jnp.sum(kept_t * kept_log_q, -1)
  if spread == 'uniform' or k >= num_classes:
    return -(kept_term + other_t[..., 0] * (jnp.sum(log_q, -1) - jnp.sum(kept_log_q, -1)))
  off = unkept(ids, num_classes)
  w = (jax.nn.softmax(jnp.where(off, jax.lax.stop_gradient(z), -jnp.inf), axis=-1)
       if spread == 'prediction' else tail_weights(ids, profile, num_classes))
  rest_t = other_t[..., 0] * (num_classes - k)
  return -(kept_term + rest_t * jnp.sum(jnp.where(off, w * log_q, 0.0), -1))


def weight_on(ids, kept_t, other_t, classes):
  """[...] target mass of each row on its class `classes` [...] (kept or not)."""
  on = ids == classes[..., None]
  return jnp.where(jnp.any(on, -1), jnp.sum(jnp.where(on, kept_t, 0.0), -1), other_t[..., 0])


def argmax_class(ids, kept_t, other_t):
  """[...] the class of each row's largest target mass; -1 where an unkept class holds more than
  every kept one (which of them is undefined: they share the rest evenly)."""
  best = jnp.take_along_axis(ids, jnp.argmax(kept_t, -1)[..., None], -1)[..., 0]
  return jnp.where(other_t[..., 0] > jnp.max(kept_t, -1), -1, best)


def posterior_stats(ids, values, rest, labels, valid, num_classes: int):
  """bsd.posterior_stats of the sparse rows: mean largest target probability, mean target weight
  on the given label, fraction of rows whose target argmax is not the label."""
  kept_t, other_t = target(ids, values, rest, num_classes)
  w = valid.astype(jnp.float32)
  n = jnp.maximum(jnp.sum(w), 1.0)
  changed = argmax_class(ids, kept_t, other_t) != labels
  return {'target_max_prob': jnp.sum(w * jnp.maximum(jnp.max(kept_t, -1), other_t[:, 0])) / n,
          'target_label_weight': jnp.sum(w * weight_on(ids, kept_t, other_t, labels)) / n,
          'target_argmax_changed': jnp.sum(w * changed) / n}


def noisy_label_recovery(ids, values, rest, noisy_labels, clean_labels, valid, num_classes: int):
  """bsd.noisy_label_recovery of the sparse rows."""
  kept_t, other_t = target(ids, values, rest, num_classes)
  w = (valid & (noisy_labels != clean_labels)).astype(jnp.float32)
  n = jnp.maximum(jnp.sum(w), 1.0)
  recovered = argmax_class(ids, kept_t, other_t) == clean_labels
  return {'noisy_target_argmax_clean': jnp.sum(w * recovered) / n,
          'noisy_target_clean_weight': jnp.sum(w * weight_on(ids, kept_t, other_t,
                                                             clean_labels)) / n}


def class_mean_targets(ids, values, rest, labels, valid, num_classes: int):
  """methods.class_mean_targets of the sparse rows without a dense [N, K] target: each label's
  summed unkept share spread over its row, then the kept classes' excess over it added."""
  kept_t, other_t = target(ids, values, rest, num_classes)
  w = valid.astype(jnp.float32)
  counts = jax.ops.segment_sum(w, labels, num_classes)
  base = jax.ops.segment_sum(w * other_t[:, 0], labels, num_classes)
  sums = jnp.broadcast_to(base[:, None], (num_classes, num_classes))
  sums = sums.at[labels[:, None], ids].add(w[:, None] * (kept_t - other_t))
  return sums / jnp.maximum(counts, 1.0)[:, None], counts


def shadow_gap(ids, values, rest, shadow, valid):
  """How far the sparse targets are from the dense posterior updated with the same predictions
  (`shadow`, config.bsd.top_k_shadow), over the valid rows: the mean and largest |t_sparse -
  t_dense| over rows and classes, and the mean total variation 1/2 sum_j |t_sparse - t_dense|."""
  num_classes = shadow.shape[-1]
  gap = jnp.abs(dense_target(ids, values, rest, num_classes) - _normalized(shadow))
  w = valid.astype(jnp.float32)
  n = jnp.maximum(jnp.sum(w), 1.0)
  return {'shadow_abs_mean': jnp.sum(w[:, None] * gap) / (n * num_classes),
          'shadow_abs_max': jnp.max(jnp.where(valid[:, None], gap, 0.0)),
          'shadow_tv_mean': jnp.sum(w * 0.5 * jnp.sum(gap, -1)) / n}
