"""What the configs of configs/paper/ share (not a config itself: no get_config).

One function per kind of experiment; each config file picks one and names the dataset and the
model. The recipes are this project's (the paper gives few: docs/paper.md); every method runs
the same recipe, switched with --config.method or the sweep's --methods.
"""
import pathlib
import runpy

_CONFIGS = pathlib.Path(__file__).resolve().parents[1]
_default = runpy.run_path(str(_CONFIGS / 'default.py'))
_imagenet = runpy.run_path(str(_CONFIGS / 'imagenet.py'))
_noise = runpy.run_path(str(_CONFIGS / 'cifar10_noise.py'))


def cifar(dataset, model):
  """CIFAR-10/100 from tfds, 200 epochs, SGD Nesterov 0.9, lr 0.1 cosine, weight decay 5e-4,
  batch 128, crop + flip, bf16 compute (configs/default.py)."""
  c = _default['get_config']()
  c.data.name = dataset
  c.model.name = model
  c.compute_dtype = 'bfloat16'
  c.eval_every_epochs = 10
  c.checkpoint_every_epochs = 10
  return c


def tiny_imagenet(model, root='data/tiny-imagenet-200'):
  """The official tiny-imagenet-200 directory or zip (--config.data.root), 64 x 64, the CIFAR
  recipe (200 epochs), the CIFAR model with its 3x3 stem at 64 x 64."""
  c = cifar('cifar100', model)
  c.data.source = 'tiny_imagenet'
  c.data.root = root
  return c


def imagenet(model):
  """ImageNet, streamed (configs/imagenet.py: torchvision's 90-epoch recipe, bf16)."""
  c = _imagenet['get_config']()
  c.model.name = model
  return c


def noisy(dataset, kind, rate):
  """BSD + SupCon under label noise (configs/cifar10_noise.py) on PreAct ResNet-18, the
  label-noise literature's standard model."""
  c = _noise['get_config']()
  c.data.name = dataset
  c.model.name = 'preact_resnet18'
  c.compute_dtype = 'bfloat16'
  c.label_noise.kind = kind
  c.label_noise.rate = rate
  c.eval_every_epochs = 10
  c.checkpoint_every_epochs = 10
  return c


def crowd(dataset, field):
  """noisy() with the crowd workers' labels of CIFAR-N (tfds cifar10_n / cifar100_n, field
  `field`) instead of synthetic noise."""
  c = noisy(dataset, 'human', 0.0)
  c.label_noise.human_label = field
  return c
