"""BSD on CIFAR-10 with a CIFAR ResNet-18, 200 epochs (tfds 'cifar10')."""
import pathlib
import runpy

# Loaded by path so that the config works from any working directory.
default = runpy.run_path(str(pathlib.Path(__file__).with_name('default.py')))


def get_config():
  c = default['get_config']()
  c.data.name = 'cifar10'
  return c
