"""config.init_from with PyTorch weights: torchvision's ResNets and timm's ViTs give the logits
PyTorch computed, after loading into bsd_jax's models (bsd_jax/pretrained/).

By default on the committed fixtures (narrow models of the same key layouts, random weights,
the logits PyTorch computed: tests/fixtures/pretrained/make_fixtures.py made them); the
full-size models where torch, torchvision and timm are installed (`pytest -m torch`)."""
import logging
import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bsd_jax import models, pretrained, train
from bsd_jax.errors import UserError
from bsd_jax.models import resnet, vit
from tests import helpers, photo_folder

FIXTURES = os.path.join(helpers.REPO, 'tests', 'fixtures', 'pretrained')
NARROW = {'resnet18_narrow': lambda k: resnet.imagenet_resnet(18, k, width=4),
          'resnet50_narrow': lambda k: resnet.imagenet_resnet(50, k, width=2),
          'vit_tiny': lambda k: vit.ViT(k, patch=8, width=48, depth=2, heads=3, mlp_dim=192)}


def _abstract(model, x):
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
  return types.SimpleNamespace(params=variables['params'],
                               batch_stats=variables.get('batch_stats', {}))


def _variables(merged):
  tree = {}
  for name, array in merged.items():
    *path, leaf = name.split('/')
    node = tree
    for part in path:
      node = node.setdefault(part, {})
    node[leaf] = jnp.asarray(array)
  return tree


def _logits_after_loading(model, path, x_nchw, num_classes):
  """bsd_jax's eval-mode logits of `model` with the weights of the file at `path`."""
  x = jnp.asarray(np.transpose(x_nchw, (0, 2, 3, 1)))
  abstract = _abstract(model, x)
  merged = pretrained.merge(pretrained.load(path, abstract), abstract, num_classes)
  assert all(a is not None for a in merged.values())
  return np.asarray(model.apply(_variables(merged), x, train=False))


def _assert_same_logits(got, expected):
  """Max abs difference at most 1e-4 of the logits' scale (float32, another library's kernels
  and summation order)."""
  scale = np.abs(expected).max()
  assert got.shape == expected.shape
  assert np.abs(got - expected).max() <= 1e-4 * scale, (np.abs(got - expected).max(), scale)


@pytest.mark.parametrize('name', sorted(NARROW))
def test_fixture_weights_give_the_logits_pytorch_computed(name):
  expected = np.load(os.path.join(FIXTURES, 'expected.npz'))
  got = _logits_after_loading(NARROW[name](10), os.path.join(FIXTURES, f'{name}.safetensors'),
                              expected[f'{name}_input'], 10)
  _assert_same_logits(got, expected[f'{name}_logits'])


def test_a_file_of_another_model_or_layout_is_one_line(tmp_path):
  x = jnp.zeros((1, 32, 32, 3))
  resnet_file = os.path.join(FIXTURES, 'resnet18_narrow.safetensors')
  vit_file = os.path.join(FIXTURES, 'vit_tiny.safetensors')
  with pytest.raises(UserError, match=r'holds a timm ViT .*; config\.model\.name makes no ViT'):
    pretrained.load(vit_file, _abstract(NARROW['resnet18_narrow'](10), x))
  abstract = _abstract(NARROW['resnet50_narrow'](10), x)
  with pytest.raises(UserError, match=r'config\.init_from: (this config makes no|the weights '
                                      r'have no) array (params|batch_stats)/B\w+_0/'):
    pretrained.merge(pretrained.load(resnet_file, abstract), abstract, 10)
  from safetensors.numpy import save_file
  save_file({'encoder.weight': np.zeros((2, 2), np.float32)}, str(tmp_path / 'other.safetensors'))
  with pytest.raises(UserError, match=r'neither a torchvision ResNet nor a timm ViT state_dict '
                                      r'\(its first keys: encoder\.weight\)'):
    pretrained.load(str(tmp_path / 'other.safetensors'), abstract)
  (tmp_path / 'broken.safetensors').write_bytes(b'\0' * 16)
  with pytest.raises(UserError, match=r'cannot read \S*broken\.safetensors as safetensors'):
    pretrained.load(str(tmp_path / 'broken.safetensors'), abstract)
  (tmp_path / 'weights.npz').write_bytes(b'')
  with pytest.raises(UserError, match=r'weights\.npz: give a \.safetensors or \.pth file'):
    pretrained.load(str(tmp_path / 'weights.npz'), abstract)


def test_fine_tuning_from_torchvision_weights_reinitialises_the_head_and_trains(
    tmp_path, monkeypatch, caplog):
  """The narrow ResNet-18 fixture (10 classes) as resnet18_imagenet on a 3-class photo folder:
  the head starts afresh (one line), everything else starts from the file."""
  from safetensors.numpy import load_file
  monkeypatch.setitem(models.MODELS, 'resnet18_imagenet',
                      lambda k, dtype, mc: resnet.imagenet_resnet(18, k, dtype, width=4))
  photo_folder.make(str(tmp_path / 'photos'), ('a', 'b', 'c'), 8)
  config = helpers.override(helpers.load_config('smoke.py'), {
      'model.name': 'resnet18_imagenet', 'data.source': 'folder_stream',
      'data.root': str(tmp_path / 'photos'), 'data.stream.image_size': 32,
      'data.stream.eval_resize': 36, 'batch_size': 8, 'eval_batch_size': 8, 'num_epochs': 1,
      'learning_rate': 0.0, 'weight_decay': 0.0,
      'init_from': os.path.join(FIXTURES, 'resnet18_narrow.safetensors')})
  with caplog.at_level(logging.INFO):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert any('the classifier head starts afresh for 3 classes: params/Dense_0/bias [10] -> [3]'
             in r.getMessage() for r in caplog.records)
  state, _ = helpers.read_checkpoint_state(str(tmp_path / 'run'))
  torch_state = load_file(os.path.join(FIXTURES, 'resnet18_narrow.safetensors'))
  np.testing.assert_array_equal(state['params']['Conv_0']['kernel'],
                                torch_state['conv1.weight'].transpose(2, 3, 1, 0))
  assert state['params']['Dense_0']['kernel'].shape == (32, 3)


# Full size, where PyTorch, torchvision and timm are installed.

def _torch_models():
  import timm
  import torchvision
  return {'resnet18_imagenet': lambda: torchvision.models.resnet18(),
          'resnet34_imagenet': lambda: torchvision.models.resnet34(),
          'resnet50_imagenet': lambda: torchvision.models.resnet50(),
          'resnet101_imagenet': lambda: torchvision.models.resnet101(),
          'vit_s16': lambda: timm.create_model('vit_small_patch16_224', pretrained=False),
          'vit_b16': lambda: timm.create_model('vit_base_patch16_224', pretrained=False)}


@pytest.mark.torch
@pytest.mark.parametrize('name, suffix', [('resnet18_imagenet', '.pth'),
                                          ('resnet18_imagenet', '.safetensors'),
                                          ('resnet34_imagenet', '.pth'),
                                          ('resnet50_imagenet', '.safetensors'),
                                          ('resnet101_imagenet', '.safetensors'),
                                          ('vit_s16', '.safetensors'),
                                          ('vit_b16', '.safetensors')])
def test_full_size_torch_models_give_the_same_logits(tmp_path, name, suffix):
  torch = pytest.importorskip('torch')
  pytest.importorskip('torchvision')
  pytest.importorskip('timm')
  from safetensors.torch import save_file
  generator = torch.Generator().manual_seed(0)
  model = _torch_models()[name]()
  with torch.no_grad():  # random BatchNorm statistics: eval mode tested
    for key, tensor in model.state_dict().items():
      if key.endswith('running_mean'):
        tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
      elif key.endswith('running_var'):
        tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
  model.eval()
  x = torch.randn(2, 3, 224, 224, generator=generator)
  with torch.no_grad():
    expected = model(x).numpy()
  path = str(tmp_path / f'weights{suffix}')
  state = {k: v.contiguous() for k, v in model.state_dict().items()}
  torch.save(state, path) if suffix == '.pth' else save_file(state, path)
  ours = models.MODELS[name](1000, jnp.float32, helpers.load_config('smoke.py').model)
  _assert_same_logits(_logits_after_loading(ours, path, x.numpy(), 1000), expected)
