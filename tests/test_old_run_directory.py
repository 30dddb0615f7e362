"""A run directory written before the redesign (tests/fixtures/README.md) still evaluates to the
numbers that code computed, and resumes to the same end as the uninterrupted run.

The fixture's numbers were computed on another CPU (an AMD EPYC); XLA rounds differently per CPU
(an Intel Xeon with AVX-512 gave NLL 2.4983530 for 2.4983532, table entries 2.4e-7 apart), so
every float is compared with a relative tolerance of 1e-4 and an absolute one of 1e-5 (TOL):
far above rounding, far below any change of method or data (a wrong label, one step more or a
changed loss moves these numbers by more than 1e-3). Integers, strings and the structure are
compared exactly. Bit-for-bit resume on one machine is tested by tests/test_faults.py and
tests/test_checkpointing.py."""
import json
import os
import shutil

import jax
import numpy as np
import pytest

from tests import helpers

TOL = {'rtol': 1e-4, 'atol': 1e-5}

FIXTURE = os.path.join(helpers.REPO, 'tests', 'fixtures', 'run_9c28292')
EXPECTED = os.path.join(helpers.REPO, 'tests', 'fixtures', 'run_9c28292_expected')
# The flags that made the fixture (its config.json records the same values).
RUN_FLAGS = ['--config', 'configs/smoke.py', '--config.num_epochs=3',
             '--config.data.synthetic.num_train=256', '--config.data.synthetic.num_test=128',
             '--config.label_noise.kind=symmetric', '--config.label_noise.rate=0.2',
             '--config.keep_checkpoints=3', '--config.data.augment=True']


def make_inputs(directory):
  """The OOD set and the one-corruption CIFAR-C-layout set the expected results were made on."""
  rng = np.random.default_rng(2026)
  np.save(os.path.join(directory, 'ood.npy'),
          rng.integers(0, 256, (40, 32, 32, 3)).astype(np.uint8))
  corrupted = os.path.join(directory, 'cifar_c')
  os.makedirs(corrupted)
  np.save(os.path.join(corrupted, 'labels.npy'),
          np.tile(rng.integers(0, 10, 16), 5).astype(np.int64))
  np.save(os.path.join(corrupted, 'gaussian_noise.npy'),
          rng.integers(0, 256, (80, 32, 32, 3)).astype(np.uint8))


def _copy(tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(FIXTURE, workdir)
  return workdir


def _expected(name, workdir, inputs):
  with open(os.path.join(EXPECTED, name)) as f:
    text = f.read()
  return json.loads(text.replace('WORKDIR', workdir).replace('INPUTS', inputs))


def _without_additions(got, expected):
  """`got` without the dict keys that `expected` lacks, at every depth."""
  if isinstance(got, dict) and isinstance(expected, dict):
    return {k: _without_additions(v, expected[k]) for k, v in got.items() if k in expected}
  return got


def _assert_close(got, expected, where='record'):
  """got == expected, floats within TOL, everything else exactly."""
  if isinstance(expected, dict):
    assert isinstance(got, dict) and sorted(got) == sorted(expected), where
    for key in expected:
      _assert_close(got[key], expected[key], f'{where}.{key}')
  elif isinstance(expected, list):
    assert isinstance(got, list) and len(got) == len(expected), where
    for i, (g, e) in enumerate(zip(got, expected)):
      _assert_close(g, e, f'{where}[{i}]')
  elif isinstance(expected, float) and not isinstance(got, bool):
    assert isinstance(got, (int, float)), where
    assert got == pytest.approx(expected, rel=TOL['rtol'], abs=TOL['atol']), where
  else:
    assert got == expected and type(got) is type(expected), where


def _run(args, module):
  proc = helpers.run_cli(args, module=module)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out
  return out


@pytest.mark.parametrize('suite,args,name', [
    ('test', [], 'metrics'),
    ('ood', ['--ood', 'npy:{inputs}/ood.npy'], 'ood'),
    ('adversarial', ['--adv_samples', '64', '--adv_eps', '2,8', '--adv_steps', '2'],
     'adversarial'),
    ('corruptions', ['--corruptions', 'npy:{inputs}/cifar_c', '--corruption_names',
                     'gaussian_noise'], 'corruptions'),
])
def test_old_run_directory_evaluates_to_the_recorded_numbers(tmp_path, suite, args, name):
  workdir, inputs = _copy(tmp_path), str(tmp_path)
  make_inputs(inputs)
  _run(['--workdir', workdir, '--suite', suite] + [a.format(inputs=inputs) for a in args],
       'bsd_jax.evaluate')
  with open(os.path.join(workdir, 'eval', f'{name}.json')) as f:
    got = json.load(f)
  # Every field that code wrote has the same value (floats within TOL); later versions may add
  # fields (the test suite's reliability bins, the definition of its temperature).
  expected = _expected(f'eval_{name}.json', workdir, inputs)
  _assert_close(_without_additions(got, expected), expected, name)


def test_old_run_directory_resumes_to_the_same_end(tmp_path):
  workdir = _copy(tmp_path)
  out = _run(RUN_FLAGS + ['--workdir', workdir], 'bsd_jax.main')
  assert 'Resumed' in out and 'at step 8' in out
  state, step = helpers.read_checkpoint_state(workdir)
  assert step == 12
  got = {jax.tree_util.keystr(p): np.asarray(v)
         for p, v in jax.tree_util.tree_leaves_with_path(state)}
  with np.load(os.path.join(EXPECTED, 'final_state.npz')) as expected:
    assert sorted(got) == sorted(expected.files)
    for key in expected.files:
      if np.issubdtype(expected[key].dtype, np.floating):
        np.testing.assert_allclose(got[key], expected[key], err_msg=key, **TOL)
      else:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
  got, expected = helpers.read_metrics(workdir), helpers.read_metrics(EXPECTED)
  # The records that code wrote, every value the same (floats within TOL); the test records
  # written after the restored step gain top5 (added since).
  _assert_close([_without_additions(g, e) for g, e in zip(got, expected)], expected, 'metrics')
  assert len(got) == len(expected)
  assert {k for g, e in zip(got, expected) for k in set(g) - set(e)} == {'top5'}
  # The fixture predates event files: its records before the restored step are written as
  # TensorBoard scalars too, so the curves start at step 1.
  events = {t: v for t, v in helpers.read_events(workdir).items()
            if not t.startswith('progress/')}
  assert events == helpers.events_of_metrics(workdir)
  # The keys in the same order (the one added since, top5, after confidence).
  assert [[k for k in r if k != 'top5'] for r in got] == [list(r) for r in expected]
