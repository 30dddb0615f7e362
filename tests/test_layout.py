"""The house rules the layout promises: the loop and the step name no method, every command
answers --help with its usage, and config.evals holds the same options as the evaluate flags."""
import os
import subprocess
import sys

import pytest

from bsd_jax import evaluation, methods
from bsd_jax.evaluation.suite import as_list
from tests import helpers


@pytest.mark.parametrize('module', ['train.py', 'step.py'])
def test_loop_and_step_name_no_method(module):
  with open(os.path.join(helpers.REPO, 'bsd_jax', module)) as f:
    source = f.read()
  for name in methods.METHODS:
    assert f"'{name}'" not in source and f'"{name}"' not in source, (module, name)
  assert 'config.bsd' not in source and 'methods.bsd' not in source


@pytest.mark.parametrize('module, expect', [
    ('bsd_jax.main', '--config'), ('bsd_jax.evaluate', '--adv_eps'),
    ('bsd_jax.sweep', '--methods'), ('bsd_jax.results_table', 'SWEEP_DIR'),
    ('bsd_jax.prepare', '--manual_dir'), ('bsd_jax.report', '--class_names'),
    ('bsd_jax.predict', '--top'), ('bsd_jax.export', 'torch.safetensors')])
def test_every_command_answers_help_with_its_usage(module, expect):
  proc = helpers.run_cli(['--help'], module=module)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 0, out
  assert f'python -m {module}' in out and expect in out
  assert 'Traceback' not in out


def test_config_evals_holds_the_evaluate_flags_with_their_defaults():
  config = helpers.load_config('default.py')
  assert sorted(config.evals) == sorted(n for n in evaluation.SUITES if n != 'test')
  for name in config.evals:
    suite = evaluation.SUITES[name]
    section = config.evals[name]
    assert sorted(section) == sorted(list(suite.FLAGS) + ['every_epochs'])
    assert section.every_epochs == 0  # off unless asked for
    for option, (_, kind, default, _) in suite.FLAGS.items():
      value = section[option]
      if kind == 'list':  # a comma-separated string in the config
        assert as_list(value) == as_list(default), (name, option)
      else:
        assert value == default, (name, option)


def test_the_commands_can_be_imported_together():
  """main and sweep share the --config/--workdir flags: defined once in one process."""
  proc = subprocess.run([sys.executable, '-c', 'import bsd_jax.main, bsd_jax.sweep'],
                        cwd=helpers.REPO, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr


def _imports():
  """{module: [(imported bsd_jax module, line, inside a function)]} of bsd_jax/, from its source
  (`from bsd_jax.x import name` counts as importing bsd_jax.x.name when that is a module)."""
  import ast
  root = os.path.join(helpers.REPO, 'bsd_jax')
  modules = {}
  for directory, _, files in os.walk(root):
    for f in files:
      if f.endswith('.py'):
        path = os.path.join(directory, f)
        name = os.path.relpath(path[:-3], helpers.REPO).replace(os.sep, '.')
        modules[name.removesuffix('.__init__')] = path

  def resolve(name):
    while name and name not in modules:
      name = name.rpartition('.')[0]
    return name

  out = {}
  for name, path in modules.items():
    with open(path) as f:
      tree = ast.parse(f.read())
    package = name if path.endswith('__init__.py') else name.rpartition('.')[0]
    nested = {id(n) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef,
                                                                 ast.AsyncFunctionDef))
              for n in ast.walk(fn)}
    found = []
    for node in ast.walk(tree):
      targets = []
      if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ''
        if node.level:
          base = '.'.join(package.split('.')[:len(package.split('.')) - node.level + 1]
                          + ([base] if base else []))
        targets = [f'{base}.{a.name}' if f'{base}.{a.name}' in modules else base
                   for a in node.names]
      for target in targets:
        if target.split('.')[0] == 'bsd_jax' and resolve(target) != name:
          found.append((resolve(target), node.lineno, id(node) in nested))
    out[name] = found
  return out


# Imports inside a function, each with its reason; everything else is imported at the top.
DEFERRED = {('bsd_jax.main', 'bsd_jax.distributed'): 'after flag parsing: jax reads --jax_* flags',
            ('bsd_jax.main', 'bsd_jax.train'): 'after flag parsing: jax reads --jax_* flags'}


def test_no_import_cycles_and_no_hidden_imports():
  graph = _imports()
  inside = {(m, t) for m, found in graph.items() for t, _, nested in found if nested}
  assert inside == set(DEFERRED), sorted(inside ^ set(DEFERRED))
  edges = {m: {t for t, _, _ in found} for m, found in graph.items()}
  # A cycle is a module that reaches itself (depth-first, every module).
  for start in edges:
    seen, todo = set(), [(start, (start,))]
    while todo:
      node, path = todo.pop()
      for nxt in edges.get(node, ()):
        assert nxt != start, f'import cycle: {" -> ".join(path + (nxt,))}'
        if nxt not in seen:
          seen.add(nxt)
          todo.append((nxt, path + (nxt,)))


def test_no_module_is_over_300_lines():
  long = {}
  for directory, _, files in os.walk(os.path.join(helpers.REPO, 'bsd_jax')):
    for f in files:
      if f.endswith('.py'):
        with open(os.path.join(directory, f)) as fh:
          n = sum(1 for _ in fh)
        if n > 300:
          long[os.path.join(directory, f)] = n
  assert not long
