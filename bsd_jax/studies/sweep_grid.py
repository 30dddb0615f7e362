"""The sweep's grid: `--grid KEY=V1,V2` arguments parsed and checked against the config, and the
runs they make with the methods and seeds (`plan`).

A key of one method's section (`bsd.`, `pskd.`, ...: the section its registry entry names,
bsd_jax/methods) varies only that method's runs; any other key varies every run. A run's label is
its method followed by the values it was given, `<name><value>` joined by '_' (the name: the key's
last part, or the whole key where two grid keys share a last part), e.g.
`bsd_label_weight_end0.3_learning_rate0.1`; `--bsd_label_weights` is the grid of
bsd.label_weight_end named `w` (labels `bsd_w0.5`)."""
import dataclasses
import itertools
import json
import re

import numpy as np

from bsd_jax import data, methods
from bsd_jax.config_check import check_config
from bsd_jax.errors import UserError


_LABEL_SAFE = re.compile(r'[A-Za-z0-9._+-]+')


@dataclasses.dataclass
class Axis:
  key: str       # dotted config key
  name: str      # in run labels
  values: list   # [(text as given, typed value)]

  def applies_to(self, method: str) -> bool:
    owners = methods.section_owners(self.key.split('.')[0])
    return not owners or method in owners


def _parent_and_leaf(config, key):
  *path, leaf = key.split('.')
  node = config
  for part in path:
    if part not in node or not hasattr(node[part], 'keys'):
      raise UserError(f'--grid {key}: the config has no section {part!r}')
    node = node[part]
  if leaf not in node:
    raise UserError(f'--grid {key}: the config has no such key')
  return node, leaf


def _typed(config, key, text):
  """`text` as a value of the config key's type (as --config.KEY=text would give it)."""
  node, leaf = _parent_and_leaf(config, key)
  kind = node.get_type(leaf)
  if kind in (tuple, list, dict) or hasattr(node[leaf], 'keys'):
    raise UserError(f'--grid {key}: a {kind.__name__} cannot be a grid axis (its values would '
                    'contain commas); sweep it with --config.KEY=VALUE, one sweep per value')
  if kind is bool:
    if text.lower() not in ('true', 'false'):
      raise UserError(f'--grid {key}: {text!r} is not true or false')
    return text.lower() == 'true'
  if kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      raise UserError(f'--grid {key}: {text!r} is not an {kind.__name__}' if kind is int else
                      f'--grid {key}: {text!r} is not a number') from None
  return text


def parse(specs, config, label_weights=()):
  """[Axis] of the --grid KEY=V1,V2 specs (and --bsd_label_weights); UserError naming the
  argument at fault."""
  axes = []
  for spec in specs:
    key, sep, values = spec.partition('=')
    key = key.strip()
    texts = [v.strip() for v in values.split(',') if v.strip()]
    if not sep or not key or not texts:
      raise UserError(f'--grid {spec!r}: expected KEY=V1,V2 (e.g. learning_rate=0.05,0.1)')
    if key in ('method', 'seed'):
      raise UserError(f'--grid {key}: use --methods / --seeds')
    if any(a.key == key for a in axes):
      raise UserError(f'--grid {key}: given twice')
    typed = [(t, _typed(config, key, t)) for t in texts]
    if len({v for _, v in typed}) != len(typed):
      raise UserError(f'--grid {key}: a value is repeated in {values!r}')
    bad = [t for t in texts if not _LABEL_SAFE.fullmatch(t)]
    if bad:
      raise UserError(f'--grid {key}: {bad[0]!r} cannot be part of a run label (letters, digits '
                      'and . _ + - only); give such a value with --config.KEY=VALUE')
    axes.append(Axis(key, key, typed))
  if label_weights:
    if any(a.key == 'bsd.label_weight_end' for a in axes):
      raise UserError('--bsd_label_weights and --grid bsd.label_weight_end: give one of them')
    try:
      weights = [float(w) for w in label_weights]
    except ValueError as e:
      raise UserError(f'--bsd_label_weights: {e}') from None
    axes.append(Axis('bsd.label_weight_end', 'w', [(f'{w:g}', w) for w in weights]))
  last = [a.key.split('.')[-1] for a in axes]
  for axis, short in zip(axes, last):
    if axis.name != 'w':
      axis.name = short if last.count(short) == 1 else axis.key
  return axes


def check_used(axes, method_names):
  """UserError for an axis of a method section that none of the methods run."""
  for axis in axes:
    if not any(axis.applies_to(m) for m in method_names):
      raise UserError(f'--grid {axis.key}: varies only the runs of the method that section '
                      f'belongs to, and --methods {",".join(method_names)} runs none')


def variants(method, axes):
  """[(label, [(axis, text, value)])]: every combination of the axes that apply to `method`."""
  mine = [a for a in axes if a.applies_to(method)]
  out = []
  for combo in itertools.product(*[a.values for a in mine]):
    chosen = [(a, text, value) for a, (text, value) in zip(mine, combo)]
    label = '_'.join([method] + [f'{a.name}{text}' for a, text, _ in chosen])
    out.append((label, chosen))
  return out


def plan(config, method_names, seeds, label_weights=(), grid=(), check_data=False):
  """[(label, seed, run arguments)] of methods x grid x seeds, checked: unknown methods or keys
  and bad values raise UserError (the grid and the labels: the module docstring). With
  `check_data`, every variant's data is found and its labels read too (once per distinct
  config.data), so that a missing root or dataset stops the sweep before its first run."""
  unknown = [m for m in method_names if m not in methods.METHODS]
  if unknown:
    raise UserError(f'--methods: unknown method(s) {unknown}; choose from '
                    f'{sorted(methods.METHODS)}')
  try:
    seed_values = [int(s) for s in seeds]
  except ValueError as e:
    raise UserError(f'--seeds: {e}') from None
  if not seed_values:
    raise UserError('--seeds: give at least one seed')
  axes = parse(grid, config, label_weights)
  check_used([a for a in axes if a.name != 'w'], method_names)
  runs, data_checked = [], set()
  for name in method_names:
    for label, chosen in variants(name, axes):
      trial = config.copy_and_resolve_references()
      trial.method = name
      extra = []
      for axis, text, value in chosen:
        node, leaf = _parent_and_leaf(trial, axis.key)
        node[leaf] = value
        extra.append(f'--config.{axis.key}={value!r}' if isinstance(value, float) else
                     f'--config.{axis.key}={text}')
      try:
        check_config(trial, num_devices=1)  # the values of this variant are valid together
        data_key = json.dumps(trial.data.to_dict(), sort_keys=True, default=str)
        if check_data and data_key not in data_checked:  # its labels; no image is decoded
          data.load(trial, rows=lambda num: np.zeros(0, np.int64))
          data_checked.add(data_key)
      except UserError as e:
        raise UserError(f'{label}: {e}') from None
      for seed in seed_values:
        runs.append((label, seed, [f'--config.method={name}', f'--config.seed={seed}'] + extra))
  return runs
