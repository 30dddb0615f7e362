"""CPU comparison in the regime where CE fits its training set (docs/method.md, "The posterior": the regime matters).

CIFAR-100 from the lossless PNG image folder, a class-balanced subset of 100 images per class
(10k), a CNN of 48/96/192 channels, no augmentation, 40 epochs, evaluated on the full test set.
data.root is where the extraction command of docs/data.md puts the PNGs
(mkdir -p data && tar xzf cifar100-png.tar.gz -C data); switch the
method with --config.method=ce.
"""
import pathlib
import runpy

# Loaded by path so that the config works from any working directory.
default = runpy.run_path(str(pathlib.Path(__file__).with_name('default.py')))


def get_config():
  c = default['get_config']()
  c.model.name = 'cnn'
  c.model.cnn_widths = (48, 96, 192)
  c.num_epochs = 40
  c.batch_size = 128
  c.learning_rate = 0.05
  c.log_every_steps = 79
  c.checkpoint_every_epochs = 5
  c.data.source = 'folder'
  c.data.root = 'data/cifar100-png'
  c.data.train_subset_per_class = 100
  c.data.augment = False
  return c
