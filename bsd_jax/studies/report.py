"""A study's report from what its runs wrote (`build`): report.md with the results table, and the
figures (report_figures.py) in <dir>/report_figures/. The command is bsd_jax/report.py, whose
docstring says what each part shows."""
import datetime
import glob
import json
import os

import numpy as np

from bsd_jax.errors import UserError
from bsd_jax.rundir.metric_log import MetricLog
from bsd_jax.studies import report_figures, results_table

FIGURES = 'report_figures'
CURVES = (('accuracy', 'test top-1 %', 100), ('nll', 'test NLL', 1),
          ('ece', 'test ECE-15 %', 100), ('scaled_ece', 'test ECE-15 % after T-scaling', 100))
POSTERIOR = (('target_label_weight', 'mean target weight on the given label', 1),
             ('target_max_prob', 'mean largest target probability', 1),
             ('target_argmax_changed', 'fraction of targets whose argmax left the label', 1),
             ('noisy_target_argmax_clean', 'noisy samples whose target argmax is the clean '
              'label', 1),
             ('noisy_target_clean_weight', 'noisy samples: target mass on the clean label', 1))
# The human suite's measures (eval/human.json): (title, section of the record, key).
HUMAN = (('KL from people', 'metrics', 'kl'), ('KL after T-scaling', 'scaled_metrics', 'kl'),
         ('top-1 agreement', 'metrics', 'top1_agreement'),
         ('second-choice agreement', 'metrics', 'second_choice_agreement'))


def find_runs(directory):
  """{label: {seed: run directory}}: DIR itself when it is a run (label = its method), else
  its <label>/seed<s> folders in the sweep's order."""
  if os.path.exists(os.path.join(directory, 'config.json')):
    config = _config(directory)
    return {config['method']: {int(config.get('seed', 0)): directory}}
  runs = {label: seeds for label, seeds in
          results_table.collect(directory, read=lambda path: path).items() if seeds}
  if not runs:
    raise UserError(f'{directory}: no run directories in it (a run has config.json; a sweep '
                    '<label>/seed<s>/config.json)')
  return runs


def _config(run_dir):
  path = os.path.join(run_dir, 'config.json')
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise UserError(f'{path} cannot be read ({e})') from None


class Run:
  """What one run wrote: its config, metric records, final evaluation and class targets."""

  def __init__(self, run_dir):
    self.dir = run_dir
    self.config = _config(run_dir)
    self.num_epochs = self.config['num_epochs']
    self.records = MetricLog(run_dir, enabled=False).read()
    tests = [r for r in self.records if r['split'] == 'test']
    self.finished = bool(tests) and tests[-1]['epoch'] >= self.num_epochs
    self.epoch = max([r['epoch'] for r in self.records], default=0)
    self.final_eval = self._final('metrics.json')
    self.class_targets = None
    path = os.path.join(run_dir, 'eval', 'class_targets.npz')
    if self.finished and os.path.exists(path):
      try:
        with np.load(path) as z:
          self.class_targets = {k: z[k] for k in z.files}
      except (OSError, ValueError):
        self.class_targets = None

  def _final(self, name):
    """The last epoch's evaluation: eval/<name>, or the copy a later `evaluate --step` kept under
    a name carrying its step (eval/<stem>.step<S><ext>)."""
    if not self.finished:
      return None
    stem, ext = os.path.splitext(os.path.join(self.dir, 'eval', name))
    for path in [stem + ext] + sorted(glob.glob(f'{stem}.step*{ext}')):
      try:
        with open(path) as f:
          record = json.load(f)
      except (OSError, ValueError):  # absent, being replaced, or damaged: as if not there
        continue
      if record.get('epoch') == self.num_epochs:
        return record
    return None

  def by_epoch(self, split):
    """{epoch: the split's last record of that epoch}."""
    return {r['epoch']: r for r in self.records if r['split'] == split}


def series(runs, split, keys):
  """{label: {key: {epoch: [value of each seed that has it]}}}."""
  out = {label: {key: {} for key in keys} for label in runs}
  for label, seeds in runs.items():
    for run in seeds.values():
      for epoch, record in run.by_epoch(split).items():
        for key in keys:
          if record.get(key) is not None:
            out[label][key].setdefault(epoch, []).append(float(record[key]))
  return out


def pooled_bins(records):
  """The reliability bins of several runs' final evaluations pooled (counts added, accuracy and
  confidence count-weighted)."""
  count = np.sum([r['count'] for r in records], axis=0).astype(np.float64)
  def pooled(key):
    values = np.array([[np.nan if v is None else v for v in r[key]] for r in records])
    weights = np.array([r['count'] for r in records], np.float64)
    with np.errstate(invalid='ignore', divide='ignore'):
      mean = np.nansum(values * weights, axis=0) / count
    return [None if c == 0 else float(m) for c, m in zip(count, mean)]
  return {'count': count.astype(int).tolist(), 'accuracy': pooled('accuracy'),
          'confidence': pooled('confidence')}


def reliability_diagrams(runs):
  """{label: {'before', 'after', 'temperature', 'seeds'}} of the labels whose finished runs all
  have their final evaluation in eval/metrics.json."""
  out = {}
  for label, seeds in runs.items():
    evals = [r.final_eval for r in seeds.values() if r.finished]
    if not evals or any(e is None or 'reliability' not in e for e in evals):
      continue
    scaled = [e for e in evals if e.get('scaled_reliability')]
    out[label] = {'before': pooled_bins([e['reliability'] for e in evals]),
                  'after': (pooled_bins([e['scaled_reliability'] for e in scaled])
                            if len(scaled) == len(evals) else None),
                  'temperature': (float(np.mean([e['temperature'] for e in scaled]))
                                  if len(scaled) == len(evals) else None),
                  'seeds': len(evals)}
  return out


def human_agreement(runs):
  """{title: {label: [each seed's value]}} of HUMAN, from the finished runs' final
  eval/human.json (labels without one left out)."""
  out = {title: {} for title, _, _ in HUMAN}
  for label, seeds in runs.items():
    records = [r for r in (run._final('human.json') for run in seeds.values()) if r]
    for title, section, key in HUMAN:
      values = [r[section][key] for r in records if (r.get(section) or {}).get(key) is not None]
      if values:
        out[title][label] = values
  return out


def _human_section(runs, fig_dir):
  """The report's lines on agreement with people ([] where no run has eval/human.json)."""
  measures = human_agreement(runs)
  if not report_figures.bars(os.path.join(fig_dir, 'human.png'), measures):
    return []
  labels = [label for label in runs if any(label in m for m in measures.values())]
  lines = ['## Agreement with people', '',
           "The final model's predictive distribution against people's label distributions "
           '(`evaluate --suite human`, eval/human.json): mean over seeds, the line from the '
           'lowest to the highest seed. Lower KL is closer.', '',
           f'![agreement with people]({FIGURES}/human.png)', '',
           '| label | ' + ' | '.join(title for title, _, _ in HUMAN) + ' |',
           '|---|' + '---|' * len(HUMAN)]
  for label in labels:
    cells = [f'{np.mean(measures[title][label]):.4f}' if label in measures[title] else '-'
             for title, _, _ in HUMAN]
    lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
  return lines + ['']


def class_names_for(run, k, names_file):
  """The class names: recorded by the run, else from names_file, else an image folder's class
  folders, else '0', '1', ..."""
  recorded = run.class_targets.get('class_names')
  if recorded is not None and len(recorded) == k:
    return [str(n) for n in recorded]
  if names_file:
    with open(names_file) as f:
      names = [line.strip() for line in f if line.strip()]
    if len(names) != k:
      raise UserError(f'--class_names: {names_file} has {len(names)} names, the runs {k} classes')
    return names
  data = run.config.get('data', {})
  root = os.path.join(data.get('root') or '', 'train')
  if data.get('source') in ('folder', 'folder_stream') and os.path.isdir(root):
    folders = sorted(e.name for e in os.scandir(root) if e.is_dir())
    if len(folders) == k:
      return folders
  return [str(i) for i in range(k)]


def top_pairs(matrix, names, n=10):
  """The n unordered class pairs (a, b) with the most mean mass between them ((M[a, b] + M[b,
  a]) / 2: the target mass of label a's samples on b, and of b's on a), most first."""
  k = matrix.shape[0]
  i, j = np.triu_indices(k, 1)
  mass = (matrix[i, j] + matrix[j, i]) / 2
  order = np.argsort(-mass, kind='stable')[:n]
  return [(names[i[o]], names[j[o]], float(matrix[i[o], j[o]]), float(matrix[j[o], i[o]]))
          for o in order]


def build(directory, names_file=None):
  """Write DIR/report.md and its figures; returns the markdown."""
  found = find_runs(directory)
  runs = {label: {seed: Run(d) for seed, d in seeds.items()} for label, seeds in found.items()}
  fig_dir = os.path.join(directory, FIGURES)
  os.makedirs(fig_dir, exist_ok=True)
  lines = [f'# Report: {os.path.basename(os.path.abspath(directory))}', '',
           f'Written by `python -m bsd_jax.report {directory}` on '
           f'{datetime.datetime.now():%Y-%m-%d %H:%M}, from the runs\' metrics.jsonl, '
           'config.json and eval/.', '', '## Runs', '']
  for label, seeds in runs.items():
    states = [f'seed {s}: ' + ('finished' if r.finished else
                               f'**unfinished** (epoch {r.epoch}/{r.num_epochs})')
              for s, r in sorted(seeds.items())]
    lines.append(f'- {label}: ' + '; '.join(states))
  collected = {label: {s: results_table.read_run(r.dir, r.records) for s, r in seeds.items()}
               for label, seeds in runs.items()}
  rows, unfinished = results_table.summarize(collected)
  lines += ['', '## Results', '', results_table.markdown(rows, unfinished).strip() if rows else
            'No run has finished yet.', '']
  if any('T' in row for row in rows.values()):
    lines += ['T: the temperature fitted on the validation split (the NLL of softmax(logits / '
              'T) at its minimum); "T-scaled": the test metrics of softmax(logits / T). '
              'Temperature scaling leaves the top-1 unchanged.', '']

  curve_path = os.path.join(fig_dir, 'curves.png')
  if report_figures.curves(curve_path, CURVES, series(runs, 'test', [c[0] for c in CURVES])):
    lines += ['## Test metrics over epochs', '',
              'Mean over seeds; the band spans the lowest and the highest seed.', '',
              f'![test metrics over epochs]({FIGURES}/curves.png)', '']

  diagrams = reliability_diagrams(runs)
  if diagrams:
    report_figures.reliability(os.path.join(fig_dir, 'reliability.png'), diagrams)
    lines += ['## Reliability diagrams', '',
              'The final evaluation of each label\'s runs, bins pooled over seeds (15 '
              'equal-width bins of the top-label confidence; bars: accuracy, red: mean '
              'confidence), before and after temperature scaling.', '',
              f'![reliability diagrams]({FIGURES}/reliability.png)', '']
    missing = [label for label in runs if label not in diagrams]
    if missing:
      lines += [f'No final evaluation in eval/ for: {", ".join(missing)}.', '']

  lines += _human_section(runs, fig_dir)

  posterior = series(runs, 'train', [p[0] for p in POSTERIOR])
  posterior = {label: s for label, s in posterior.items() if any(s.values())}
  if posterior and report_figures.curves(os.path.join(fig_dir, 'posterior.png'), POSTERIOR,
                                         posterior):
    lines += ['## The posterior over epochs', '',
              'Statistics of the training targets (the posterior means) at each epoch\'s end.',
              '', f'![posterior over epochs]({FIGURES}/posterior.png)', '']

  for label, seeds in runs.items():
    done = [r for r in seeds.values() if r.class_targets is not None]
    if not done:
      continue
    matrix = np.mean([r.class_targets['matrix'] for r in done], axis=0)
    k = matrix.shape[0]
    names = class_names_for(done[0], k, names_file)
    name = f'class_targets_{label}.png'
    report_figures.heatmap(os.path.join(fig_dir, name), matrix,
                           f'{label}: mean final target of each given label '
                           f'({len(done)} seed{"s" if len(done) > 1 else ""})', names)
    diagonal = float(np.mean(np.diag(matrix)))
    lines += [f'## Class-by-class targets: {label}', '',
              f'Row a: the mean final target of the training samples labelled a (mean over '
              f'{len(done)} seed(s)); the diagonal holds {100 * diagonal:.1f}% of the mass on '
              'average.', '', f'![class-by-class targets]({FIGURES}/{name})', '',
              'The ten class pairs with the most target mass between them:', '',
              '| class a | class b | mass of a\'s targets on b % | mass of b\'s targets on a % |',
              '|---|---|---|---|']
    lines += [f'| {a} | {b} | {100 * ab:.2f} | {100 * ba:.2f} |'
              for a, b, ab, ba in top_pairs(matrix, names)]
    lines.append('')
  text = '\n'.join(lines)
  with open(os.path.join(directory, 'report.md'), 'w') as f:
    f.write(text)
  return text
