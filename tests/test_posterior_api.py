"""bsd_jax.posterior, the public API for BSD in your own loop: the trainer is built from the same
functions (no second copy of the math), and examples/bsd_in_your_loop.py, a plain Flax + optax
loop, learns with it on 8 CPU devices."""
import os
import re
import runpy

from bsd_jax import posterior
from bsd_jax.methods import bsd
from tests import helpers


def test_the_trainer_uses_the_public_functions():
  for name in ('init_alpha', 'posterior_mean', 'update_alpha', 'posterior_stats',
               'noisy_label_recovery', 'gamma_for_label_weight', 'prior_strength_for'):
    assert getattr(bsd, name) is getattr(posterior, name), name
  assert bsd.bsd_sparse is posterior.sparse


def test_the_example_loop_learns_and_bsd_is_better_calibrated(capsys):
  """Run here, on the test session's 8 CPU devices: the table is split over all of them."""
  example = runpy.run_path(os.path.join(helpers.REPO, 'examples', 'bsd_in_your_loop.py'))
  results = example['main'](epochs=10)  # 30 by default
  assert set(results) == {'ce', 'bsd'}
  assert results['bsd'][0] > 0.5 and results['ce'][0] > 0.5  # 10 classes: chance is 0.1
  assert results['bsd'][1] < results['ce'][1]  # measured at 10 epochs: ECE 0.008 against 0.044
  assert re.search(r'^bsd: test accuracy [\d.]+, ECE [\d.]+', capsys.readouterr().out, re.M)
