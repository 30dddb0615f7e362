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
