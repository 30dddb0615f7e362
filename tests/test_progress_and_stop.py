"""A long run talks and stops promptly: progress lines by time as well as by steps (the ones by
time on the console only: no TensorBoard progress scalars), and a stop request (SIGINT) that
takes effect within the running step and the one queued behind it, plus the checkpoint's save."""
import re
import signal

import pytest

from tests import helpers


def test_progress_lines_come_by_time_and_only_the_step_lines_are_recorded(tmp_path):
  out = helpers.run_smoke(tmp_path, '--config.log_every_steps=1000',
                          '--config.log_every_seconds=1e-9')
  lines = re.findall(r'epoch \d+/5 step (\d+)/80 loss ([\d.]+)', out)
  assert len(lines) >= 40, out  # nearly every call of 80 steps: a line each, by time
  assert all(int(step) % 1000 for step, _ in lines)  # none was due by steps
  tags = helpers.read_events(tmp_path)
  assert 'train/loss' in tags and not [t for t in tags if t.startswith('progress/')]  # console
  assert len(helpers.read_metrics(tmp_path, 'train')) == 5


@pytest.mark.slow
def test_ctrl_c_on_a_resnet18_stops_after_the_running_step_and_the_queued_one(tmp_path):
  """ResNet-18 on CPU, about a second a step here. SIGINT is sent as soon as a progress line (by
  time) says step N is done; the host stays one call ahead of the devices (step.TrainSteps), so
  the checkpoint is saved at most two steps later (the running one and the one queued behind
  it; the host could otherwise have queued the rest of the epoch within milliseconds)."""
  proc = helpers.run_cli(helpers.SMOKE + [
      '--workdir', str(tmp_path), '--config.model.name=resnet18', '--config.batch_size=64',
      '--config.data.synthetic.image_size=32', '--config.data.synthetic.num_train=2560',
      '--config.log_every_steps=1000', '--config.log_every_seconds=3'])
  seen, done = [], None
  for line in proc.stdout:
    seen.append(line)
    match = re.search(r'epoch 1/5 step (\d+)/200 loss', line)
    if done is None and match:
      done = int(match.group(1))
      proc.send_signal(signal.SIGINT)
  proc.wait(timeout=600)
  out = ''.join(seen)
  assert proc.returncode == 130 and done is not None, out  # 128 + SIGINT
  assert 'Received SIGINT: stopping when the running step' in out and 'Ctrl-C again' in out
  stopped = int(re.search(r'Stopped by SIGINT at step (\d+)', out).group(1))
  assert done < stopped <= done + 2, out
  assert helpers.read_checkpoint_state(tmp_path)[1] == stopped
