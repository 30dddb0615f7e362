"""The report's figures (bsd_jax/report.py), each a function of plain arrays writing one PNG.
matplotlib is imported when a figure is drawn."""
import numpy as np


def _pyplot():
  import matplotlib
  matplotlib.use('Agg')  # files only, no display
  import matplotlib.pyplot as plt
  return plt


def _colors(labels):
  plt = _pyplot()
  cycle = plt.rcParams['axes.prop_cycle'].by_key()['color']
  return {label: cycle[i % len(cycle)] for i, label in enumerate(labels)}


def curves(path, panels, series):
  """One panel per (metric key, title, scale) of `panels`: each label's mean over seeds against
  epoch, with a band from the lowest to the highest seed. series: {label: {key: {epoch:
  [values over seeds]}}}. Returns False (nothing written) when no panel has data."""
  panels = [p for p in panels if any(series[label].get(p[0]) for label in series)]
  if not panels:
    return False
  plt = _pyplot()
  colors = _colors(series)
  cols = min(2, len(panels))
  rows = -(-len(panels) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.8 * rows), squeeze=False)
  for ax, (key, title, scale) in zip(axes.flat, panels):
    for label, metrics in series.items():
      points = metrics.get(key)
      if not points:
        continue
      epochs = sorted(points)
      values = [np.asarray(points[e], np.float64) * scale for e in epochs]
      mean = [v.mean() for v in values]
      ax.plot(epochs, mean, marker='o', markersize=3, color=colors[label], label=label)
      if any(len(v) > 1 for v in values):
        ax.fill_between(epochs, [v.min() for v in values], [v.max() for v in values],
                        color=colors[label], alpha=0.2, linewidth=0)
    ax.set(xlabel='epoch', ylabel=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  for ax in list(axes.flat)[len(panels):]:
    ax.axis('off')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return True


def bars(path, panels):
  """One panel per measure: a bar per label at the mean over seeds, a line from the lowest to
  the highest seed. panels: {title: {label: [values over seeds]}}; labels without values are
  left out of a panel. Returns False (nothing written) when no panel has data."""
  panels = {t: {l: v for l, v in p.items() if v} for t, p in panels.items()}
  panels = {t: p for t, p in panels.items() if p}
  if not panels:
    return False
  plt = _pyplot()
  colors = _colors(sorted({label for p in panels.values() for label in p}))
  fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
  for ax, (title, values) in zip(axes.flat, panels.items()):
    labels = list(values)
    arrays = [np.asarray(values[label], np.float64) for label in labels]
    means = [a.mean() for a in arrays]
    ax.bar(range(len(labels)), means, color=[colors[label] for label in labels])
    ax.errorbar(range(len(labels)), means, fmt='none', ecolor='black', capsize=3,
                yerr=[[m - a.min() for m, a in zip(means, arrays)],
                      [a.max() - m for m, a in zip(means, arrays)]])
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha='right', fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis='y')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return True


def reliability(path, diagrams):
  """Reliability diagrams, one row per label, columns before and after temperature scaling.
  diagrams: {label: {'before': bins, 'after': bins or None, 'temperature': T or None}}, bins as
  in the test suite's record ({'count', 'accuracy', 'confidence'} lists, pooled over seeds)."""
  plt = _pyplot()
  fig, axes = plt.subplots(len(diagrams), 2, figsize=(8, 3.3 * len(diagrams)), squeeze=False)
  for row, (label, d) in zip(axes, diagrams.items()):
    for ax, which in zip(row, ('before', 'after')):
      bins = d[which]
      if bins is None:
        ax.text(0.5, 0.5, 'no temperature scaling\n(no validation split, or no T fitted)',
                ha='center', va='center', transform=ax.transAxes)
        ax.set(title=f'{label}: after scaling', xticks=[], yticks=[])
        continue
      count = np.asarray(bins['count'], np.float64)
      acc = np.asarray([np.nan if v is None else v for v in bins['accuracy']], np.float64)
      conf = np.asarray([np.nan if v is None else v for v in bins['confidence']], np.float64)
      n = len(count)
      centers, width = (np.arange(n) + 0.5) / n, 1 / n
      filled = count > 0
      ax.bar(centers[filled], acc[filled], width=width, edgecolor='black', label='accuracy')
      ax.bar(centers[filled], conf[filled], width=width, fill=False, edgecolor='red',
             linewidth=1.2, label='mean confidence')
      ax.plot([0, 1], [0, 1], 'k--', linewidth=1)
      ece = float(np.sum(count[filled] * np.abs(acc[filled] - conf[filled])) / count.sum())
      title = f'{label}: before scaling' if which == 'before' else (
          f"{label}: after scaling, T = {d['temperature']:.2f}")
      ax.set_title(f'{title}\nECE-{n} of the pooled bins = {100 * ece:.2f}%', fontsize=9)
      ax.set(xlim=(0, 1), ylim=(0, 1), xlabel='confidence', ylabel='accuracy')
      ax.legend(loc='upper left', fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def heatmap(path, matrix, title, class_names=()):
  """The class-by-class mean target matrix (rows: given label, columns: target mass), on a log
  colour scale so that the off-diagonal mass shows next to the label's."""
  from matplotlib.colors import LogNorm
  plt = _pyplot()
  k = matrix.shape[0]
  fig, ax = plt.subplots(figsize=(8, 7))
  floor = max(float(matrix[matrix > 0].min()) if np.any(matrix > 0) else 1e-6, 1e-6)
  image = ax.imshow(np.maximum(matrix, floor), cmap='viridis',
                    norm=LogNorm(vmin=floor, vmax=max(float(matrix.max()), floor * 10)))
  fig.colorbar(image, ax=ax, label='mean target mass (log scale)')
  ax.set(xlabel='target class', ylabel='given label', title=title)
  if class_names and k <= 20:
    ax.set_xticks(range(k), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(k), class_names, fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
