"""The all-methods CPU table of RESULTS.md: CIFAR-100 where CE fits its training set, small enough
for 20 runs on 2 CPU cores in under two hours.

The CPU pilot (configs/cifar100_cpu_pilot.py: CNN 48/96/192, no augmentation, lr 0.05 cosine)
with a 2,000-image class-balanced subset (20 per class), batch 64, 40 epochs, and the full test
set evaluated every 10th epoch. (A 32/64/128 CNN on 30 per class stalled at 81% train accuracy
with CE: not the regime this table is for.)
Run it through the sweep: RESULTS.md gives the command.
"""
import pathlib
import runpy

pilot = runpy.run_path(str(pathlib.Path(__file__).with_name('cifar100_cpu_pilot.py')))


def get_config():
  c = pilot['get_config']()
  c.num_epochs = 40
  c.batch_size = 64
  c.log_every_steps = 32
  c.checkpoint_every_epochs = 10
  c.eval_every_epochs = 10
  c.data.train_subset_per_class = 20
  return c
