"""Evaluation metrics over predicted probabilities [n, K] and integer labels [n] (docs/method.md, "Metrics").

Pure functions returning a scalar: the per-epoch ones in jnp (they also accept numpy arrays),
the sort-based ones of the full evaluation (adaptive ECE, class-wise ECE, AURC) in numpy."""
import jax.numpy as jnp
import numpy as np

# Probabilities are clipped here before the log in `nll`, so a confident mistake costs at most
# -log(1e-12) ~ 27.6 nats instead of inf.
_NLL_FLOOR = 1e-12


def accuracy(probs, labels):
  """Top-1 accuracy: fraction of samples whose argmax is the label."""
  return jnp.mean(jnp.argmax(probs, axis=-1) == labels)


def top_k_accuracy(logits, labels, k: int = 5):
  """Fraction of samples whose label is among the k highest logits: fewer than k other classes
  have a logit at least the label's (a tie counts against the label, so a model that outputs
  the same logit for every class scores 0). From logits, not probabilities: a probability that
  underflows to 0 (a logit gap above ~88 in float32) would tie with every other such class."""
  logits = jnp.asarray(logits, jnp.float32)
  labels = jnp.asarray(labels)
  z = jnp.take_along_axis(logits, labels[:, None], axis=-1)
  others = jnp.arange(logits.shape[-1]) != labels[:, None]
  return jnp.mean(jnp.sum((logits >= z) & others, axis=-1) < k)


def nll(probs, labels):
  """Mean negative log-likelihood of the label, -log p(y), with p clipped at 1e-12."""
  p = jnp.take_along_axis(jnp.asarray(probs), jnp.asarray(labels)[:, None], axis=-1)[:, 0]
  return -jnp.mean(jnp.log(jnp.maximum(p, _NLL_FLOOR)))


def brier(probs, labels):
  """Mean over samples of sum over classes (p - onehot)^2 (range [0, 2])."""
  probs = jnp.asarray(probs)
  one_hot = jnp.eye(probs.shape[-1], dtype=probs.dtype)[labels]
  return jnp.mean(jnp.sum((probs - one_hot) ** 2, axis=-1))


def confidence(probs):
  """Mean top-label confidence (max probability)."""
  return jnp.mean(jnp.max(probs, axis=-1))


def ece(probs, labels, num_bins: int = 15):
  """Expected calibration error of the top label, equal-width bins.

  Bin m (m = 0..M-1) holds confidences in (m/M, (m+1)/M]: the upper edge is closed, so a
  confidence of exactly 1.0 is in the last bin (and 0.0, never a top-label confidence, in the
  first). ECE = sum_m |B_m|/n * |acc(B_m) - conf(B_m)|; empty bins contribute nothing."""
  probs = jnp.asarray(probs)
  conf = jnp.max(probs, axis=-1)
  correct = (jnp.argmax(probs, axis=-1) == jnp.asarray(labels)).astype(conf.dtype)
  bins = jnp.clip(jnp.ceil(conf * num_bins).astype(jnp.int32) - 1, 0, num_bins - 1)
  conf_sum = jnp.zeros(num_bins).at[bins].add(conf)
  correct_sum = jnp.zeros(num_bins).at[bins].add(correct)
  # |sum(correct) - sum(conf)| over a bin equals |B_m| * |acc(B_m) - conf(B_m)|; empty bins are 0.
  return jnp.sum(jnp.abs(correct_sum - conf_sum)) / conf.shape[0]


def adaptive_ece(probs, labels, num_bins: int = 15):
  """ECE with equal-mass bins: samples sorted by top-label confidence (stable, so ties keep their
  order) and split into `num_bins` groups whose sizes differ by at most one."""
  probs = np.asarray(probs, np.float64)
  conf = probs.max(-1)
  correct = (probs.argmax(-1) == np.asarray(labels)).astype(np.float64)
  order = np.argsort(conf, kind='stable')
  total = 0.0
  for group in np.array_split(order, min(num_bins, len(order))):
    total += abs(correct[group].sum() - conf[group].sum())
  return total / len(conf)


def classwise_ece(probs, labels, num_bins: int = 15):
  """Class-wise ECE (Kull et al. 2019): for every class k, equal-width bins on p_k over all
  samples, sum_m |B_m|/n |freq(y = k in B_m) - mean p_k in B_m|; averaged over the K classes.
  Bins are (m/M, (m+1)/M] with p_k = 0 in the first bin."""
  probs = np.asarray(probs, np.float64)
  n, k = probs.shape
  hits = np.eye(k)[np.asarray(labels)]
  bins = np.clip(np.ceil(probs * num_bins).astype(int) - 1, 0, num_bins - 1)
  total = 0.0
  for c in range(k):
    p_sum = np.bincount(bins[:, c], probs[:, c], num_bins)
    hit_sum = np.bincount(bins[:, c], hits[:, c], num_bins)
    total += np.abs(hit_sum - p_sum).sum() / n
  return total / k


def aurc(probs, labels):
  """Area under the risk-coverage curve: samples ranked by confidence (most confident first),
  risk at coverage i/n = error rate of the i most confident; AURC = mean over i = 1..n."""
  probs = np.asarray(probs, np.float64)
  conf = probs.max(-1)
  wrong = (probs.argmax(-1) != np.asarray(labels)).astype(np.float64)
  order = np.argsort(-conf, kind='stable')
  risks = np.cumsum(wrong[order]) / np.arange(1, len(conf) + 1)
  return float(risks.mean())


def reliability_bins(probs, labels, num_bins: int = 15):
  """Per equal-width bin: count, accuracy and mean confidence (NaN where a bin is empty)."""
  probs = np.asarray(probs, np.float64)
  conf = probs.max(-1)
  correct = (probs.argmax(-1) == np.asarray(labels)).astype(np.float64)
  bins = np.clip(np.ceil(conf * num_bins).astype(int) - 1, 0, num_bins - 1)
  count = np.bincount(bins, minlength=num_bins)
  with np.errstate(invalid='ignore', divide='ignore'):
    acc = np.bincount(bins, correct, num_bins) / count
    mean_conf = np.bincount(bins, conf, num_bins) / count
  return count, acc, mean_conf


# One line per reported metric, written next to the numbers in eval/metrics.json.
DEFINITIONS = {
    'accuracy': 'top-1',
    'top5': 'the label among the 5 highest logits (a tie counts against it); >= 5 classes only',
    'nll': 'mean -log p(y), p clipped at 1e-12',
    'ece': 'top-label, 15 equal-width bins (m/15, (m+1)/15], empty bins skipped',
    'ece_10': 'as ece with 10 bins',
    'adaptive_ece': '15 equal-mass bins over the sorted top-label confidence',
    'classwise_ece': 'per class 15 equal-width bins on p_k, averaged over classes',
    'brier': 'mean over samples of sum over classes (p - onehot)^2',
    'aurc': 'area under the risk-coverage curve, most confident first',
    'confidence': 'mean top-label probability',
}


def classification_metrics(probs, labels, logits=None):
  """The metrics reported for every evaluation, as python floats (top5 from `logits`, when
  given, with >= 5 classes)."""
  out = {
      'accuracy': float(accuracy(probs, labels)),
      'nll': float(nll(probs, labels)),
      'ece': float(ece(probs, labels, num_bins=15)),
      'brier': float(brier(probs, labels)),
      'confidence': float(confidence(probs)),
  }
  if logits is not None and np.shape(logits)[-1] >= 5:
    out['top5'] = float(top_k_accuracy(logits, labels, 5))
  return out


def full_metrics(probs, labels, logits=None):
  """The per-epoch metrics plus ECE at 10 bins, adaptive and class-wise ECE (15 bins), AURC."""
  out = classification_metrics(probs, labels, logits)
  out.update({
      'ece_10': float(ece(probs, labels, num_bins=10)),
      'adaptive_ece': float(adaptive_ece(probs, labels, 15)),
      'classwise_ece': float(classwise_ece(probs, labels, 15)),
      'aurc': aurc(probs, labels),
  })
  return out


def auroc(scores, labels):
  """Exact area under the ROC curve, rank based (Mann-Whitney U): the probability that a random
  positive (label 1, e.g. OOD) scores higher than a random negative, ties counting one half."""
  scores = np.asarray(scores, np.float64)
  labels = np.asarray(labels).astype(bool)
  n_pos, n_neg = int(labels.sum()), int((~labels).sum())
  if n_pos == 0 or n_neg == 0:
    raise ValueError(f'auroc needs both classes, got {n_pos} positives and {n_neg} negatives')
  order = np.argsort(scores, kind='stable')
  sorted_scores = scores[order]
  ranks = np.empty(len(scores), np.float64)
  # Midranks: every member of a group of equal scores gets the mean of the group's ranks.
  starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
  ends = np.r_[starts[1:], len(scores)]
  ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
  u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0
  return float(u / (n_pos * n_neg))


def fpr_at_tpr(scores, labels, tpr: float = 0.95):
  """False-positive rate at the smallest threshold whose true-positive rate is >= tpr (positives
  score high; a sample is called positive when its score >= the threshold)."""
  scores = np.asarray(scores, np.float64)
  labels = np.asarray(labels).astype(bool)
  pos = np.sort(scores[labels])[::-1]
  k = max(1, int(np.ceil(tpr * len(pos) - 1e-9)))  # ceil(tpr n), robust to 0.95 * 20 = 19.000..4
  threshold = pos[k - 1]  # the k-th highest positive score
  return float(np.mean(scores[~labels] >= threshold))


def softmax(logits, temperature: float = 1.0):
  """float32 softmax(logits / temperature) over the last axis, computed in float64 (numpy)."""
  z = np.asarray(logits, np.float64) / temperature
  e = np.exp(z - z.max(axis=-1, keepdims=True))
  return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _temperature_slope(z, labels, beta):
  """d/dbeta of the mean NLL of softmax(beta z): mean over samples of E_p[z] - z_y (float64).
  It increases with beta (the NLL is convex in beta = 1/T)."""
  s = beta * z
  p = np.exp(s - s.max(axis=1, keepdims=True))
  p /= p.sum(axis=1, keepdims=True)
  return float(np.mean((p * z).sum(axis=1) - z[np.arange(len(labels)), labels]))


def fit_temperature(logits, labels) -> float:
  """Temperature scaling (Guo et al. 2017): the T > 0 that minimises the mean NLL of
  softmax(logits / T), for logits [n, K] and integer labels [n] (numpy or jax arrays).

  The NLL is convex in beta = 1/T, so its minimum is where the slope in beta is zero: found by
  bisection on log beta, to a relative 1e-12. ValueError when no T > 0 minimises it: when the
  NLL keeps falling as T -> 0 (the logits separate every sample; any small T fits) or as
  T -> infinity (the logits rank the labels below the mean of the classes)."""
  z = np.asarray(logits, np.float64)
  labels = np.asarray(labels).astype(np.int64)
  if z.ndim != 2 or labels.shape != (z.shape[0],) or z.shape[0] == 0:
    raise ValueError(f'fit_temperature: logits [n, K] and labels [n], got {z.shape} and '
                     f'{labels.shape}')
  z = z - z.mean(axis=1, keepdims=True)  # softmax ignores a shift per sample
  if _temperature_slope(z, labels, 0.0) >= 0:
    raise ValueError('fit_temperature: the NLL falls as T grows without bound (the labels '
                     'score below the mean class): no finite T')
  # As beta -> infinity the slope tends to mean(max_k z - z_y): zero when every label holds the
  # top logit, and then the NLL falls all the way to T -> 0.
  if np.all(z[np.arange(len(labels)), labels] >= z.max(axis=1)):
    raise ValueError('fit_temperature: the NLL keeps falling as T -> 0 (the logits separate '
                     'every sample): no T > 0 minimises it')
  lo, hi = 1e-3, 1.0
  while _temperature_slope(z, labels, hi) < 0:  # bracket the zero of the slope in beta
    lo, hi = hi, hi * 4
  while _temperature_slope(z, labels, lo) > 0:
    lo /= 4
  while hi / lo - 1 > 1e-12:
    mid = np.sqrt(lo * hi)
    lo, hi = (mid, hi) if _temperature_slope(z, labels, mid) < 0 else (lo, mid)
  return float(2 / (lo + hi))
