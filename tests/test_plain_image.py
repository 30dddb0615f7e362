"""The package runs where only the packages of a plain CUDA image are installed: a run from the
synthetic or the image-folder source imports neither tensorflow, tensorflow_datasets, grain nor
matplotlib (they are imported where a tfds or streamed source, or a diagram, needs them)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tests import helpers

HEAVY = ('tensorflow', 'tensorflow_datasets', 'grain', 'matplotlib')
# Runs bsd_jax.main as `python -m` would, then reports the heavy modules it imported.
PROBE = f'''
import atexit, sys
atexit.register(lambda: print('IMPORTED', sorted(m for m in sys.modules
                                                 if m.split('.')[0] in {HEAVY!r})))
sys.argv = ['bsd_jax.main'] + sys.argv[1:]
from bsd_jax import main
main.run()
'''


def _folder(root):
  from PIL import Image
  for split in ('train', 'test'):
    for c in ('a', 'b'):
      os.makedirs(root / split / c)
      for i in range(8):
        Image.fromarray(np.full((8, 8, 3), 30 * i, np.uint8)).save(root / split / c / f'{i}.png')


# The synthetic source imports less than the folder source: slow.
@pytest.mark.parametrize('source', [pytest.param('synthetic', marks=pytest.mark.slow), 'folder'])
def test_a_run_imports_no_tensorflow_tfds_or_grain(tmp_path, source):
  args = ['--config', 'configs/smoke.py', '--workdir', str(tmp_path / 'run'),
          '--config.num_epochs=1']
  if source == 'folder':
    _folder(tmp_path / 'data')
    args += ['--config.data.source=folder', f'--config.data.root={tmp_path / "data"}',
             '--config.batch_size=8', '--config.eval_batch_size=8']
  proc = subprocess.run([sys.executable, '-c', PROBE] + args, cwd=helpers.REPO,
                        capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert 'Done: ' in proc.stderr  # it trained
  assert 'IMPORTED []' in proc.stdout, proc.stdout
