"""BSD + SupCon on CIFAR-100 with noisy labels: configs/cifar10_noise.py on tfds 'cifar100'.

Asymmetric noise on CIFAR-100 moves labels within superclasses: tfds cifar100 brings them; for
an image folder set --config.label_noise.superclass_csv (e.g. the labels.csv.gz of
the cifar100-png folder of docs/data.md).
"""
import pathlib
import runpy

cifar10_noise = runpy.run_path(str(pathlib.Path(__file__).with_name('cifar10_noise.py')))


def get_config():
  c = cifar10_noise['get_config']()
  c.data.name = 'cifar100'
  return c
