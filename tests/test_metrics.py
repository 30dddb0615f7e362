"""Metrics against hand-computed cases (definitions: METHOD.md section 3)."""
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
