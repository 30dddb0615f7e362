"""A first run: a tiny CNN on synthetic images, 5 epochs, well under a minute on 2 CPU cores."""
import pathlib
import runpy

# Loaded by path so that the config works from any working directory.
default = runpy.run_path(str(pathlib.Path(__file__).with_name('default.py')))


def get_config():
  c = default['get_config']()
  c.model.name = 'cnn'
  c.model.cnn_widths = (16, 32)
  c.num_epochs = 5
  c.batch_size = 64
  c.eval_batch_size = 256
  c.learning_rate = 0.05
  c.log_every_steps = 8
  c.data.source = 'synthetic'
  c.data.augment = False
  return c
