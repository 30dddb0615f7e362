"""AUROC and FPR at 95% TPR against hand-computed cases and a brute-force pair count."""
import numpy as np
import pytest

from bsd_jax import metrics


@pytest.mark.parametrize('scores, labels, expected', [
    ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),     # 3 of 4 (pos, neg) pairs ordered right
    ([1, 2, 2, 3], [0, 0, 1, 1], 0.875),            # one tied pair counts 1/2: (1 + .5 + 2) / 4
    ([0.5, 0.5, 0.5], [0, 1, 1], 0.5),              # all tied
    ([0, 1, 2, 3], [0, 0, 1, 1], 1.0),              # perfect
    ([0, 1, 2, 3], [1, 1, 0, 0], 0.0),              # perfectly reversed
])
def test_auroc_hand_computed(scores, labels, expected):
  assert metrics.auroc(scores, labels) == pytest.approx(expected, abs=1e-12)


def test_auroc_equals_pair_count_with_many_ties():
  rng = np.random.default_rng(0)
  scores = rng.integers(0, 6, 300)  # heavy ties
  labels = rng.random(300) < 0.3
  pos, neg = scores[labels], scores[~labels]
  diff = pos[:, None] - neg[None, :]
  brute = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size
  assert metrics.auroc(scores, labels) == pytest.approx(brute, abs=1e-12)


def test_auroc_needs_both_classes():
  with pytest.raises(ValueError, match='both classes'):
    metrics.auroc([0.1, 0.2], [1, 1])


def test_fpr_at_95_tpr():
  pos = np.arange(1.0, 21.0)  # 20 positives: 95% TPR keeps the top 19, threshold 2.0
  neg = np.array([0.5, 1.5, 2.5, 10.5])
  scores = np.r_[pos, neg]
  labels = np.r_[np.ones(20), np.zeros(4)]
  assert metrics.fpr_at_tpr(scores, labels, 0.95) == 0.5  # 2.5 and 10.5 are >= 2.0
  assert metrics.fpr_at_tpr(scores, labels, 1.0) == 0.75  # threshold 1.0
  neg_tied = np.array([2.0, 1.0])  # a negative tied with the threshold counts as positive
  assert metrics.fpr_at_tpr(np.r_[pos, neg_tied], np.r_[np.ones(20), np.zeros(2)]) == 0.5
