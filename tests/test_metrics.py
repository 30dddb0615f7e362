"""Metrics against hand-computed cases (definitions: docs/method.md, "Metrics")."""
import math

import numpy as np
import pytest

from bsd_jax import metrics

PROBS = np.array([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]], np.float32)
LABELS = np.array([0, 0, 1])


def test_accuracy_counts_argmax_hits_with_ties_going_to_the_first_class():
  assert float(metrics.accuracy(PROBS, LABELS)) == pytest.approx(1 / 3)


def test_nll_is_mean_negative_log_probability_of_the_label():
  expected = -(math.log(0.7) + math.log(0.4) + math.log(0.5)) / 3
  assert float(metrics.nll(PROBS, LABELS)) == pytest.approx(expected, rel=1e-6)


def test_nll_of_a_zero_probability_is_finite():
  value = float(metrics.nll(np.array([[1.0, 0.0]]), np.array([1])))
  assert value == pytest.approx(-math.log(1e-12), rel=1e-4)


def test_brier_sums_squared_errors_over_classes():
  # (0.09 + 0.09) + (0.36 + 0.36) + (0.25 + 0.25), averaged over 3 samples.
  assert float(metrics.brier(PROBS, LABELS)) == pytest.approx(1.4 / 3, rel=1e-6)


def test_ece_on_a_hand_case_with_a_confidence_of_one():
  probs = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.4, 0.3, 0.3], [1.0, 0.0, 0.0]])
  labels = np.array([0, 0, 0, 0])
  # bin of 0.9: acc 0.5, conf 0.9, weight 2/4; bin of 0.4: acc 1, conf 0.4, weight 1/4;
  # conf 1.0 is in the last bin: acc 1, conf 1, contributes 0.
  assert float(metrics.ece(probs, labels, 15)) == pytest.approx(0.5 * 0.4 + 0.25 * 0.6, rel=1e-5)


def test_ece_bins_are_closed_on_the_upper_edge():
  probs = np.array([[0.5, 0.5, 0.0], [0.6, 0.2, 0.2]], np.float32)
  labels = np.array([0, 1])
  # 0.5 falls in (0, 0.5] (correct), 0.6 in (0.5, 1] (wrong): (0.5 + 0.6) / 2.
  # Were 0.5 in the upper bin, both would share it and ECE would be 0.05.
  assert float(metrics.ece(probs, labels, num_bins=2)) == pytest.approx(0.55, rel=1e-5)


def test_ece_of_one_populated_bin_is_the_accuracy_confidence_gap():
  rng = np.random.default_rng(0)
  top = rng.uniform(0.81, 0.85, 200)
  probs = np.stack([top, 1 - top], -1)
  labels = (rng.uniform(size=200) > 0.6).astype(int)  # ~40% of argmax (class 0) predictions wrong
  gap = abs(np.mean(labels == 0) - np.mean(top))
  assert float(metrics.ece(probs, labels, 15)) == pytest.approx(gap, rel=1e-4)


# Edge cases and the sort-based metrics of the full evaluation.
EDGE_PROBS = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.4, 0.3, 0.3], [1.0, 0.0, 0.0]])
EDGE_LABELS = np.array([0, 0, 0, 0])


def test_ece_with_a_single_bin_is_the_global_gap():
  gap = abs(0.75 - (0.9 + 0.9 + 0.4 + 1.0) / 4)
  assert float(metrics.ece(EDGE_PROBS, EDGE_LABELS, num_bins=1)) == pytest.approx(gap)


@pytest.mark.parametrize('all_correct', [True, False])
def test_ece_when_all_predictions_are_right_or_wrong(all_correct):
  probs = np.array([[0.7, 0.3], [0.2, 0.8], [0.95, 0.05]])
  labels = probs.argmax(1) if all_correct else 1 - probs.argmax(1)
  mean_conf = (0.7 + 0.8 + 0.95) / 3
  expected = 1 - mean_conf if all_correct else mean_conf
  for fn in (metrics.ece, metrics.adaptive_ece):
    assert float(fn(probs, labels, 15)) == pytest.approx(expected)


def test_empty_bins_change_nothing():
  # Only 2 of 100 bins are populated; the answer is the same as with 15 bins.
  assert float(metrics.ece(EDGE_PROBS, EDGE_LABELS, 100)) == pytest.approx(0.35, rel=1e-5)


def test_adaptive_ece_uses_equal_mass_bins():
  # Sorted confidences 0.4 (right), 0.9 (right), 0.9 (wrong), 1.0 (right); 2 bins of 2:
  # {0.4 R, 0.9 R}: |2 - 1.3| ; {0.9 W, 1.0 R}: |1 - 1.9|; (0.7 + 0.9) / 4 = 0.4.
  # (The stable sort keeps row 0 (right) before row 1 (wrong) among the two 0.9s.)
  assert metrics.adaptive_ece(EDGE_PROBS, EDGE_LABELS, 2) == pytest.approx(0.4)
  assert metrics.adaptive_ece(EDGE_PROBS, EDGE_LABELS, 1) == pytest.approx(
      float(metrics.ece(EDGE_PROBS, EDGE_LABELS, 1)))


def test_classwise_ece_on_a_hand_case():
  probs = np.array([[0.8, 0.2], [0.3, 0.7]])
  labels = np.array([0, 0])
  # 2 bins per class. Class 0: p = 0.8 (hit) in bin 1, 0.3 (hit) in bin 0: |1-0.8| + |1-0.3|.
  # Class 1: p = 0.2 (miss) in bin 0, 0.7 (miss) in bin 1: |0-0.2| + |0-0.7|. Each / n, mean over K.
  expected = ((0.2 + 0.7) / 2 + (0.2 + 0.7) / 2) / 2
  assert metrics.classwise_ece(probs, labels, 2) == pytest.approx(expected)


def test_aurc_on_a_hand_case():
  probs = np.array([[0.7, 0.3], [0.2, 0.8], [0.9, 0.1]])
  labels = np.array([0, 0, 0])
  # Ranked by confidence: 0.9 right, 0.8 wrong, 0.7 right: risks 0, 1/2, 1/3.
  assert metrics.aurc(probs, labels) == pytest.approx((0 + 0.5 + 1 / 3) / 3)


def test_reliability_bins_count_every_sample_once():
  count, acc, conf = metrics.reliability_bins(EDGE_PROBS, EDGE_LABELS, 15)
  assert count.sum() == 4 and count[13] == 2 and count[14] == 1 and count[5] == 1
  assert acc[13] == pytest.approx(0.5) and conf[13] == pytest.approx(0.9)
  assert np.isnan(acc[0])


def test_top5_counts_the_label_among_the_five_highest_logits_ties_against_it():
  logits = np.log(np.array([[0.30, 0.20, 0.15, 0.12, 0.10, 0.08, 0.05],   # label rank 5: out
                            [0.30, 0.20, 0.15, 0.12, 0.10, 0.08, 0.05],   # label rank 4: in
                            [0.25, 0.15, 0.15, 0.15, 0.15, 0.15, 0.01],   # tied 2nd..6th: out
                            [0.40, 0.20, 0.10, 0.10, 0.10, 0.05, 0.05]])) # 5 above, 1 tie: out
  labels = np.array([5, 4, 5, 6])
  assert float(metrics.top_k_accuracy(logits, labels, 5)) == 0.25
  assert float(metrics.top_k_accuracy(logits, np.zeros(4, int), 1)) == 1.0
  probs = np.asarray(metrics.softmax(logits))
  assert metrics.classification_metrics(probs, labels, logits)['top5'] == 0.25
  assert 'top5' not in metrics.classification_metrics(probs, labels)
  four = logits[:, :4]
  assert 'top5' not in metrics.classification_metrics(probs[:, :4], np.zeros(4, int), four)


def test_top5_of_a_label_whose_probability_underflows_is_a_miss():
  # 200 classes: three classes far ahead (the label's probability underflows to 0 in float32,
  # as do those of the 196 others), the label ranked 151st.
  logits = np.zeros((1, 200), np.float32)
  logits[0, :3] = [300.0, 200.0, 150.0]
  logits[0, 3:] = -np.arange(197, dtype=np.float32) * 0.01
  label = np.array([150])
  probs = np.asarray(metrics.softmax(logits))
  assert probs[0, 150] == 0.0 and np.sum(probs[0] > 0) < 5  # the defect's conditions hold
  assert float(metrics.top_k_accuracy(logits, label, 5)) == 0.0
  assert float(metrics.top_k_accuracy(logits, np.array([2]), 5)) == 1.0


def test_top5_of_a_constant_model_is_zero():
  logits = np.zeros((6, 100), np.float32)
  assert float(metrics.top_k_accuracy(logits, np.arange(6), 5)) == 0.0
  assert float(metrics.top_k_accuracy(logits + 3.0, np.arange(6), 100)) == 1.0
