"""The docs are tested like code: every indented command block of README.md and docs/*.md carries
a `<!-- doc-test: ... -->` marker (docs/testing.md, "The docs are tested"), the flags the blocks
name exist, and the runnable blocks run, in the order a reader meets them, in a copy of the
repository (the quick ones by default, all of them with the workspace's data behind `slow`)."""
import dataclasses
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from tests import helpers

# The order a reader follows: the README, then the pages as its contents list them.
PAGES = ['README.md', 'docs/data.md', 'docs/training.md', 'docs/evaluation.md',
         'docs/your_data.md', 'docs/configuration.md', 'docs/method.md', 'docs/design.md',
         'docs/testing.md', 'docs/paper.md']
SKIP_REASONS = ('gpu', 'imagenet', 'network', 'hours', 'torch')
# README's first two lines are the CI's: line 2 is the test command .ci/run runs itself, line 1
# trains CIFAR-100 for hours. A marker cannot stand above line 1.
README_TOP = ('skip', 'hours: the CI runs line 2 itself; line 1 trains CIFAR-100 for hours')
MARKER = re.compile(r'^\s*<!-- doc-test: (.*) -->\s*$')
# The workspace's data (the archives docs/data.md extracts), beside the repository in CI.
DATA = os.path.join(os.path.dirname(helpers.REPO), 'shared', 'data')
ARCHIVES = ['cifar100-png/cifar100-png.tar.gz', 'cifar10-jpeg/cifar10-jpeg.tar.gz',
            'mnist/t10k-images-idx3-ubyte.gz']


@dataclasses.dataclass
class Block:
  page: str
  line: int            # 1-based line of the block's first line
  commands: list       # shell lines, continuations joined, comments removed
  kind: str            # 'run', 'usage', 'text', 'skip' or '' (no marker)
  args: str            # run: the overrides added to each command; skip: the reason
  quick: bool = False  # run: also in the default test run

  def where(self):
    return f'{self.page}:{self.line}'


def _commands(lines):
  text = '\n'.join(lines).replace('\\\n', ' ')
  out = []
  for line in text.splitlines():
    line = re.sub(r'\s+#\s.*$', '', line).strip()
    if line:
      out.append(re.sub(r'\s+', ' ', line))
  return out


def _marker(text):
  """(kind, args, quick) of a marker's text."""
  kind, _, rest = text.strip().partition(' ')
  quick = kind == 'run' and rest.split()[:1] == ['quick']
  if quick:
    rest = rest.split(None, 1)[1] if len(rest.split()) > 1 else ''
  return kind, rest.strip(), quick


def blocks(page, text=None):
  """The indented code blocks of a page (fenced ones hold code of another language)."""
  if text is None:
    with open(os.path.join(helpers.REPO, page)) as f:
      text = f.read()
  lines = text.split('\n')
  found, i, fenced = [], 0, False
  while i < len(lines):
    if lines[i].lstrip().startswith('```'):
      fenced = not fenced
    starts = (not fenced and lines[i].startswith('    ') and lines[i].strip()
              and (i == 0 or not lines[i - 1].strip()))
    if not starts:
      i += 1
      continue
    indent = len(lines[i]) - len(lines[i].lstrip())
    j = i
    while j < len(lines) and (not lines[j].strip() or
                              len(lines[j]) - len(lines[j].lstrip()) >= indent):
      j += 1
    body = [l[indent:] for l in lines[i:j]]
    before = [l for l in lines[:i] if l.strip()]
    match = MARKER.match(before[-1]) if before else None
    if page == 'README.md' and i == 0:
      kind, args, quick = README_TOP[0], README_TOP[1], False
    elif match:
      kind, args, quick = _marker(match.group(1))
    else:
      kind, args, quick = '', '', False
    found.append(Block(page, i + 1, _commands(body), kind, args, quick))
    i = j
  return found


def all_blocks():
  return [b for page in PAGES for b in blocks(page)]


def test_blocks_and_their_markers_are_read_as_a_renderer_sees_them():
  page = """Text:

<!-- doc-test: run quick --config.num_epochs=1 -->

    python -m bsd_jax.main --config configs/smoke.py \\
        --workdir runs/a   # a comment

- a list item:

  <!-- doc-test: skip network: a download -->

      python -m bsd_jax.prepare cifar10 --data_dir D

Back in the page, no marker:

    python -m bsd_jax.evaluate --workdir runs/a

```python
    not_a_block = 1
```
"""
  found = blocks('page.md', page)
  assert [(b.line, b.kind, b.args, b.quick) for b in found] == [
      (5, 'run', '--config.num_epochs=1', True), (12, 'skip', 'network: a download', False),
      (16, '', '', False)]
  assert found[0].commands == [
      'python -m bsd_jax.main --config configs/smoke.py --workdir runs/a']


def test_the_pages_are_every_page_of_docs():
  assert sorted(PAGES[1:]) == sorted(os.path.relpath(p, helpers.REPO) for p in
                                     glob.glob(os.path.join(helpers.REPO, 'docs', '*.md')))


def test_every_block_is_marked_as_run_usage_text_or_a_skip_with_its_reason():
  problems = []
  for b in all_blocks():
    if b.kind not in ('run', 'usage', 'text', 'skip'):
      problems.append(f'{b.where()}: no <!-- doc-test: run|usage|text|skip REASON --> marker')
    elif b.kind == 'skip' and b.args.split(':')[0] not in SKIP_REASONS:
      problems.append(f'{b.where()}: skip needs one of {SKIP_REASONS}, then ": why"')
    elif b.kind == 'run' and any(re.search(r'\[--|\b[A-Z]{3,}\b', c) for c in b.commands):
      problems.append(f'{b.where()}: a run block with a placeholder (mark it usage)')
  assert not problems, '\n'.join(problems)


def _flags_of(modules):
  """{module: the flags its --helpfull names} (absl's list, or the usage a command prints)."""
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  procs = {m: subprocess.Popen([sys.executable, '-m', m, '--helpfull'], cwd=helpers.REPO,
                               env=env, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT) for m in modules}
  return {m: set(re.findall(r'--(?:\[no\])?([a-z_0-9]+)', p.communicate(timeout=120)[0]))
          for m, p in procs.items()}


def _config_keys():
  config = helpers.load_config('default.py')
  keys = set()

  def walk(node, prefix):
    for key, value in node.items():
      keys.add(prefix + key)
      if hasattr(value, 'items'):
        walk(value, prefix + key + '.')
  walk(config, '')
  return keys


def test_the_flags_and_config_keys_the_blocks_name_exist():
  """A flag renamed in code but not in the docs fails here, without running anything."""
  commands = []
  for b in all_blocks():
    for command in b.commands if b.kind in ('run', 'usage') else ():
      words = shlex.split(command.replace('[', ' ').replace(']', ' ').replace('|', ' '))
      if words[:2] == ['python', '-m'] and words[2].startswith('bsd_jax.'):
        commands.append((b, words[2], words[3:]))
  assert len(commands) > 10
  known = _flags_of({module for _, module, _ in commands})
  keys, problems = _config_keys(), []
  for b, module, words in commands:
    registry = known[module]
    for word in words:
      if not word.startswith('--'):
        continue
      name = word[2:].split('=')[0]
      if name.startswith('config.'):
        if name[len('config.'):] not in keys and name != 'config.KEY':
          problems.append(f'{b.where()}: {module}: no config key {name}')
      elif name not in registry and not (name.startswith('no') and name[2:] in registry):
        problems.append(f'{b.where()}: {module}: no flag --{name}')
  assert not problems, '\n'.join(problems)


def _copy_of_the_repository(tmp_path):
  copy = tmp_path / 'repo'
  shutil.copytree(helpers.REPO, copy, ignore=shutil.ignore_patterns(
      '.git', 'runs', 'data', '.whl', '.venv', '__pycache__', '*.egg-info', '.pytest_cache'))
  return copy


def _run(block, cwd):
  """Runs a block's commands in one bash, the marker's overrides added to each training or
  evaluating command (main, sweep, evaluate, launch/)."""
  lines = []
  for command in block.commands:
    if block.args and re.match(r'(python -m bsd_jax\.(main|sweep|evaluate) |launch/)', command):
      command += ' ' + block.args
    lines.append(command)
  script = 'set -euo pipefail\n' + '\n'.join(lines)
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  proc = subprocess.run(['bash', '-c', script], cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=900)
  assert proc.returncode == 0, (f'{block.where()} failed (exit {proc.returncode}):\n{script}\n'
                                f'{(proc.stdout + proc.stderr)[-4000:]}')


def test_the_quick_blocks_run_in_order(tmp_path):
  """The README's first run and what the docs do with it: a doc command that breaks breaks CI."""
  copy = _copy_of_the_repository(tmp_path)
  quick = [b for b in all_blocks() if b.kind == 'run' and b.quick]
  assert quick, 'no quick block: the default run would test no doc command'
  for block in quick:
    _run(block, copy)
  assert os.path.exists(copy / 'runs' / 'smoke' / 'eval' / 'metrics.json')


CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship',
                   'truck')


def test_the_guide_runs_as_written_on_a_small_stand_in_for_cifar10(tmp_path):
  """docs/your_data.md, every run block in order, on a folder of 8 train and 4 test images a
  class in CIFAR-10's layout (the whole CIFAR-10: behind slow, below): smaller batches and
  validation split, one epoch."""
  from tests import photo_folder
  copy = _copy_of_the_repository(tmp_path)
  photo_folder.make(str(copy / 'data' / 'cifar10-jpeg'), CIFAR10_CLASSES, per_class=8,
                    sizes=(32, 33))
  for split in ('train', 'test'):  # the CIFAR-10 folders hold only images
    for c in CIFAR10_CLASSES:
      os.remove(copy / 'data' / 'cifar10-jpeg' / split / c / 'notes.txt')
  smaller = ('--config.num_epochs=1 --config.batch_size=16 --config.eval_batch_size=32 '
             '--config.data.val_size=14')
  guide = [b for b in blocks('docs/your_data.md') if b.kind == 'run']
  assert len(guide) >= 4
  for block in guide:
    trains = any(re.match(r'python -m bsd_jax\.(main|sweep) ', c) for c in block.commands)
    _run(dataclasses.replace(block, args=smaller if trains else ''), copy)
  assert os.path.exists(copy / 'runs' / 'photos' / 'report.md')
  assert os.path.exists(copy / 'runs' / 'photos' / 'bsd' / 'seed0' / 'eval' / 'reliability.png')
  records = helpers.read_metrics(str(copy / 'runs' / 'photos_new'))
  assert (records[0]['step'], records[0]['split']) == (0, 'test')  # where fine-tuning starts
  with open(copy / 'runs' / 'photos_new' / 'config.json') as f:
    assert 'photos/bsd/seed0' in f.read()


@pytest.mark.slow
def test_every_runnable_block_runs_in_order_with_the_workspaces_data(tmp_path):
  """A fresh copy, the archives docs/data.md extracts beside it, then every run block in order."""
  missing = [a for a in ARCHIVES if not os.path.exists(os.path.join(DATA, a))]
  if missing:
    pytest.skip(f'the workspace data is not at {DATA}: {missing}')
  copy = _copy_of_the_repository(tmp_path)
  for archive in ARCHIVES:
    os.symlink(os.path.join(DATA, archive), copy / os.path.basename(archive))
  runnable = [b for b in all_blocks() if b.kind == 'run']
  for block in runnable:
    print(f'{block.where()}: {" && ".join(block.commands)[:200]}', file=sys.stderr)
    _run(block, copy)
