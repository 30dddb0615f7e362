"""The CPU label-noise comparison of RESULTS.md: small enough for 11 runs on 2 cores.

CIFAR-10 from the JPEG image folder (mkdir -p data && tar xzf
cifar10-jpeg.tar.gz -C data), a class-balanced 5,000-image training
subset (500 per class), the full test set; a CNN of 32/64/128 channels with crop + flip, 20
epochs, lr 0.05 cosine; BSD + SupCon (weight 0.5) and 20% symmetric noise as in
configs/cifar10_noise.py. --config.supcon.weight=0 gives plain BSD, --config.method=ce CE.
"""
import pathlib
import runpy

noise = runpy.run_path(str(pathlib.Path(__file__).with_name('cifar10_noise.py')))


def get_config():
  c = noise['get_config']()
  c.model.name = 'cnn'
  c.model.cnn_widths = (32, 64, 128)
  c.num_epochs = 20
  c.learning_rate = 0.05
  c.log_every_steps = 40
  c.eval_every_epochs = 5
  c.checkpoint_every_epochs = 5
  c.data.source = 'folder'
  c.data.root = 'data/cifar10-jpeg'
  c.data.train_subset_per_class = 500
  return c
