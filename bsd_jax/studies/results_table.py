"""A sweep's results table (the command: bsd_jax/results_table.py): one row per method, mean ± std
over seeds.

Reads the layout bsd_jax.sweep writes (<dir>/<label>/seed<s>/metrics.jsonl, and sweep.json for
the row order): the last epoch's test metrics and train accuracy of every finished run. Writes
<dir>/table.md and <dir>/table.json (per-seed values too) and returns the markdown. Runs that
have not reached their last epoch are listed under the table, never averaged in."""
import json
import os

import numpy as np

from bsd_jax.rundir.metric_log import MetricLog

# (split, metric key, column title, scale); scale 100 shows a percentage.
COLUMNS = (
    ('train', 'accuracy', 'train acc %', 100),
    ('train', 'accuracy_clean_labels', 'train acc, clean labels %', 100),  # with label noise
    ('train', 'noisy_target_argmax_clean', 'noisy targets back on clean label %', 100),
    ('train', 'noisy_target_clean_weight', 'target mass on clean label, noisy samples %', 100),
    ('test', 'accuracy', 'top-1 %', 100),
    ('test', 'top5', 'top-5 %', 100),
    ('test', 'nll', 'NLL', 1),
    ('test', 'ece', 'ECE-15 %', 100),
    ('test', 'ece_10', 'ECE-10 %', 100),
    ('test', 'adaptive_ece', 'adaptive ECE %', 100),
    ('test', 'brier', 'Brier', 1),
    ('test', 'confidence', 'confidence %', 100),
    # After temperature scaling fitted on the validation split (config.data.val_size).
    ('test', 'temperature', 'T', 1),
    ('test', 'scaled_nll', 'NLL, T-scaled', 1),
    ('test', 'scaled_ece', 'ECE-15 %, T-scaled', 100),
    ('test', 'scaled_adaptive_ece', 'adaptive ECE %, T-scaled', 100),
    ('test', 'scaled_brier', 'Brier, T-scaled', 1),
    ('test', 'scaled_confidence', 'confidence %, T-scaled', 100),
)


def read_run(run_dir, records=None):
  """{'epoch' (of the last test record), 'num_epochs', 'latest' (the last epoch of any record),
  'train', 'test'} of a run directory (last rows of metrics.jsonl)."""
  with open(os.path.join(run_dir, 'config.json')) as f:
    num_epochs = json.load(f)['num_epochs']
  last = {}
  if records is None:  # `records`: metrics.jsonl as already read by the caller
    records = MetricLog(run_dir, enabled=False).read()  # a torn last line is left out
  for record in records:
    last[record['split']] = record
  return {'epoch': last.get('test', {}).get('epoch', 0), 'num_epochs': num_epochs,
          'latest': max([r.get('epoch', 0) for r in last.values()], default=0),
          'train': last.get('train', {}), 'test': last.get('test', {})}


def last_test_summary(run_dir):
  """'top-1 x ECE-15 y' of a run's last test record (empty if there is none)."""
  test = read_run(run_dir)['test']
  if not test:
    return ''
  return f"(epoch {test['epoch']}: top-1 {test['accuracy']:.4f} ECE-15 {test['ece']:.4f})"


def collect(sweep_dir, read=None):
  """{label: {seed: read(run directory)}} (default read_run) for every run directory under
  sweep_dir, in the sweep's order."""
  read = read or read_run
  labels = None
  manifest = os.path.join(sweep_dir, 'sweep.json')
  if os.path.exists(manifest):
    with open(manifest) as f:
      labels = json.load(f)['labels']
  if labels is None:
    labels = sorted(e.name for e in os.scandir(sweep_dir) if e.is_dir())
  out = {}
  for label in labels:
    label_dir = os.path.join(sweep_dir, label)
    if not os.path.isdir(label_dir):
      continue
    seeds = sorted((e.name for e in os.scandir(label_dir)
                    if e.name.startswith('seed') and
                    os.path.exists(os.path.join(e.path, 'config.json'))),
                   key=lambda name: int(name[4:]))
    out[label] = {int(s[4:]): read(os.path.join(label_dir, s)) for s in seeds}
  return out


def summarize(collected):
  """Per label: n and, per column, per-seed values, mean and sample std (ddof 1; 0 for one seed)
  over the finished runs; plus the list of unfinished runs."""
  rows, unfinished = {}, []
  for label, runs in collected.items():
    done = {s: r for s, r in runs.items() if r['epoch'] >= r['num_epochs']}
    unfinished += [f"{label} seed {s} (epoch {r.get('latest', r['epoch'])}/{r['num_epochs']})"
                   for s, r in runs.items() if s not in done]
    if not done:
      continue
    row = {'n': len(done), 'seeds': sorted(done), 'epochs': done[min(done)]['num_epochs']}
    for split, key, title, _ in COLUMNS:
      values = [done[s][split].get(key) for s in sorted(done)]
      if any(v is None for v in values):
        continue
      values = np.asarray(values, np.float64)
      row[title] = {'values': values.tolist(), 'mean': float(values.mean()),
                    'std': float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    rows[label] = row
  return rows, unfinished


def markdown(rows, unfinished):
  titles = [title for _, _, title, _ in COLUMNS  # columns that some row has
            if any(title in row for row in rows.values())]
  scales = {title: scale for _, _, title, scale in COLUMNS}
  lines = ['| method | seeds | ' + ' | '.join(titles) + ' |', '|---|---|' + '---|' * len(titles)]
  for label, row in rows.items():
    cells = []
    for title in titles:
      if title not in row:
        cells.append('—')
        continue
      scale = scales[title]
      digits = 2 if scale == 100 else 4
      mean, std = row[title]['mean'] * scale, row[title]['std'] * scale
      cells.append(f'{mean:.{digits}f} ± {std:.{digits}f}' if row['n'] > 1 else
                   f'{mean:.{digits}f}')
    lines.append(f"| {label} | {row['n']} | " + ' | '.join(cells) + ' |')
  text = '\n'.join(lines) + '\n\nmean ± sample std over seeds, last epoch, test split\n'
  if unfinished:
    text += 'not finished, left out: ' + ', '.join(unfinished) + '\n'
  return text


def write_table(sweep_dir):
  """Write table.md and table.json into sweep_dir; returns the markdown."""
  rows, unfinished = summarize(collect(sweep_dir))
  text = markdown(rows, unfinished)
  with open(os.path.join(sweep_dir, 'table.md'), 'w') as f:
    f.write(text)
  with open(os.path.join(sweep_dir, 'table.json'), 'w') as f:
    json.dump({'rows': rows, 'unfinished': unfinished}, f, indent=2)
  return text
