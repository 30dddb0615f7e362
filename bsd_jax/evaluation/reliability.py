"""Reliability diagram: accuracy against confidence per equal-width bin, as a PNG.
matplotlib is imported when a diagram is drawn (the evaluate command), not by training."""
import numpy as np

from bsd_jax import metrics


def save_reliability_diagram(probs, labels, path, num_bins=15, title=''):
  """Per-bin accuracy (bars) and mean confidence (red outlines) against the diagonal, bin counts
  on a second panel, the ECE in the title."""
  import matplotlib
  matplotlib.use('Agg')  # files only, no display
  import matplotlib.pyplot as plt
  count, acc, conf = metrics.reliability_bins(probs, labels, num_bins)
  ece = float(metrics.ece(probs, labels, num_bins))
  edges = np.linspace(0, 1, num_bins + 1)
  centers, width = (edges[:-1] + edges[1:]) / 2, 1 / num_bins
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True,
                                    gridspec_kw={'height_ratios': [3, 1]})
  filled = count > 0
  top.bar(centers[filled], acc[filled], width=width, edgecolor='black', label='accuracy')
  top.bar(centers[filled], conf[filled], width=width, fill=False, edgecolor='red',
          linewidth=1.5, label='mean confidence')
  top.plot([0, 1], [0, 1], 'k--', linewidth=1)
  top.set(ylabel='accuracy', ylim=(0, 1))
  top.legend(loc='upper left')
  top.set_title(f'{title} ECE-{num_bins} = {100 * ece:.2f}%'.strip())
  bottom.bar(centers, count, width=width, edgecolor='black', color='gray')
  bottom.set(xlabel='confidence (top-label probability)', ylabel='samples', xlim=(0, 1))
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
