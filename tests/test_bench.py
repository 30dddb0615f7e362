"""bench/ scripts keep working: step_time.py's report is consistent with its own measurements,
read_share.py reads the share it names.

Speed itself is never asserted here (BENCHMARKS.md holds the numbers)."""
import json
import os
import re
import statistics
import subprocess
import sys

import numpy as np
import pytest

from tests import helpers


@pytest.mark.slow
def test_step_time_reports_the_median_ratio_on_its_last_line(tmp_path):
  out_json = tmp_path / 'bench.json'
  proc = subprocess.run(
      [sys.executable, 'bench/step_time.py', '--num_train', '256', '--num_classes', '10',
       '--steps', '2', '--rounds', '3', '--warmup', '0', '--json', str(out_json)],
      cwd=helpers.REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stdout
  last = proc.stdout.strip().splitlines()[-1]
  match = re.fullmatch(r'bsd/ce step-time ratio: (\d+\.\d{3})', last)
  assert match, last
  record = json.loads(out_json.read_text())
  for entry in record['methods'].values():
    assert len(entry['round_step_ms']) == 3
    assert entry['step_ms'] == statistics.median(entry['round_step_ms'])
    assert entry['images_per_s'] * entry['step_ms'] / 1e3 == pytest.approx(record['batch_size'])
  ratio = record['methods']['bsd']['step_ms'] / record['methods']['ce']['step_ms']
  assert float(match.group(1)) == round(record['bsd/ce'], 3)
  assert abs(record['bsd/ce'] - ratio) < 1e-12


def test_read_share_reads_process_0s_share_of_a_folder(tmp_path):
  from PIL import Image
  for split, per_class in (('train', 5), ('test', 3)):
    for c in ('a', 'b'):
      os.makedirs(tmp_path / split / c)
      for i in range(per_class):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / split / c / f'{i}.png')
  proc = subprocess.run(
      [sys.executable, 'bench/read_share.py', '--root', str(tmp_path), '--processes', '4'],
      cwd=helpers.REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stdout
  # 10 train rows padded to 12 over 4 processes: 3 each; 6 test rows padded to 8: 2 each.
  assert 'process 0 read 3 of 10 train and 2 of 6 test images' in proc.stdout, proc.stdout


@pytest.mark.slow
def test_loop_overhead_reports_the_ratio_of_its_own_measurements():
  proc = subprocess.run(
      [sys.executable, 'bench/loop_overhead.py', '--num_train', '256', '--epochs', '3',
       '--steps', '16', '--rounds', '1'],
      cwd=helpers.REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stdout
  lines = proc.stdout.strip().splitlines()
  loop = float(re.search(r'^loop: ([\d.]+) steps/s', lines[-3]).group(1))
  step = float(re.search(r'^bare step: ([\d.]+) steps/s', lines[-2]).group(1))
  match = re.fullmatch(r'loop/step time ratio: (\d+\.\d{3})', lines[-1])
  assert match, lines[-1]
  assert float(match.group(1)) == pytest.approx(step / loop, abs=2e-3)  # printed to 0.1 step/s


CIFAR10_JPEG = os.path.join(os.path.dirname(helpers.REPO), 'shared', 'data', 'cifar10-jpeg',
                            'cifar10-jpeg.tar.gz')


def _evidence(out, *args):
  return subprocess.run(['bash', 'bench/gpu_evidence.sh'] + list(args) + [str(out)],
                        cwd=helpers.REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        text=True, timeout=600,
                        env=dict(os.environ, JAX_PLATFORMS='cpu', PYTHON=sys.executable))


@pytest.mark.slow  # a minute on 2 cores: every stage of the script, a training run included
def test_gpu_evidence_tiny_fills_every_field_of_its_summary(tmp_path):
  if not os.path.exists(CIFAR10_JPEG):
    pytest.skip(f'SKIPPED LOUDLY: {CIFAR10_JPEG} (the workspace data) is not here')
  out = tmp_path / 'evidence'
  proc = _evidence(out, '--tiny')
  assert proc.returncode == 0, proc.stdout
  s = json.loads((out / 'summary.json').read_text())
  assert all(stage['status'] == 'ok' for stage in s['stages'].values()), s['stages']
  assert set(s['stages']) == {'versions', 'step_time_16', 'step_time_32', 'loop_overhead_k1',
                              'loop_overhead_k8', 'train'}
  has_torch = subprocess.run([sys.executable, '-c', 'import torch']).returncode == 0
  v = s['versions']
  for key in ('python', 'jax', 'jaxlib', 'flax', 'optax', 'orbax_checkpoint', 'platform',
              'platform_version', 'device'):
    assert isinstance(v[key], str) and v[key], key
  assert v['platform'] == 'cpu' and v['device_count'] >= 1
  assert (v['torch'] is not None) == has_torch and 'torch_cuda' in v
  for batch in (16, 32):
    t = s[f'step_time_{batch}']
    assert t['batch_size'] == batch and t['model'] == 'cnn' and t['device'] == 'cpu'
    assert t['jax_ce_images_per_s'] > 0 and t['jax_bsd_images_per_s'] > 0
    # BSD/CE step time is CE's images/s over BSD's (the same batch).
    assert t['bsd_over_ce_step_time'] == pytest.approx(
        t['jax_ce_images_per_s'] / t['jax_bsd_images_per_s'], rel=1e-9)
    assert t['mfu_ce'] > 0 and t['mfu_bsd'] > 0
    for m in ('ce', 'bsd'):
      if has_torch:
        assert t[f'jax_over_torch_speed_{m}'] == pytest.approx(
            t[f'jax_{m}_images_per_s'] / t[f'torch_{m}_images_per_s'], rel=1e-9)
      else:
        assert t[f'torch_{m}_images_per_s'] is None and t[f'jax_over_torch_speed_{m}'] is None
  for k in (1, 8):
    o = s[f'loop_overhead_k{k}']
    assert o['steps_per_call'] == k and o['device'] == 'cpu'
    assert o['loop_over_step_time'] == pytest.approx(
        o['bare_step_steps_per_s'] / o['loop_steps_per_s'], abs=2e-3)
  t = s['train']
  assert (t['epochs_planned'], t['epochs_done'], t['stopped_early']) == (2, 2, False)
  assert t['device'] == 'cpu'
  assert t['wall_s'] > 0 and t['images_per_s'] > 0
  last_test = helpers.read_metrics(out / 'run', 'test')[-1]
  assert (t['test_accuracy'], t['test_ece']) == (last_test['accuracy'], last_test['ece'])
  assert s['total_s'] > 0
  md = (out / 'summary.md').read_text()
  for name in s['stages']:
    assert f'## {name}' in md
    for field in s[name]:
      assert f'| {field} |' in md, field


def test_gpu_evidence_refuses_missing_data_in_one_line(tmp_path):
  proc = _evidence(tmp_path / 'evidence', '--data', str(tmp_path / 'nope.tar.gz'))
  assert proc.returncode == 2
  assert proc.stdout.strip().splitlines() == [
      f'gpu_evidence: error: --data {tmp_path}/nope.tar.gz: no such file or folder (the '
      'CIFAR-10 JPEG set, cifar10-jpeg.tar.gz)']
  assert not (tmp_path / 'evidence').exists()


def test_step_time_methods_entry_sets_several_keys_of_its_section():
  import importlib.util
  spec = importlib.util.spec_from_file_location(
      'step_time', os.path.join(helpers.REPO, 'bench', 'step_time.py'))
  step_time = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(step_time)
  args = step_time.parse_args(['--num_classes', '10'])
  config = step_time._config(args, 'bsd:top_k=3:rest_spread=prediction')
  assert (config.method, config.bsd.top_k, config.bsd.rest_spread) == ('bsd', 3, 'prediction')
  assert step_time._config(args, 'bsd').bsd.rest_spread == 'uniform'
  with pytest.raises(SystemExit, match='bsd:top_k=3:no_such_key=1'):
    step_time._config(args, 'bsd:top_k=3:no_such_key=1')
