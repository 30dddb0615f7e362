"""Model sizes against published parameter counts; mixed precision dtypes; feature widths.

Parameter count = elements of the `params` collection (BatchNorm scale and bias count, running
statistics do not), as PyTorch's parameters(). Big models are only traced (jax.eval_shape).
"""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bsd_jax import models
from bsd_jax.models import cnn, densenet, preact_resnet, resnet, vit
from tests import helpers


def _count(model):
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3))))
  return sum(x.size for x in jax.tree.leaves(variables['params']))


@pytest.mark.parametrize('build, classes, expected', [
    (resnet.cifar_resnet18, 100, 11_220_132), (resnet.cifar_resnet18, 10, 11_173_962),
    (resnet.cifar_resnet50, 100, 23_705_252), (resnet.cifar_resnet50, 10, 23_520_842),
])
def test_cifar_resnet_parameter_counts_match_the_pytorch_reference(build, classes, expected):
  assert _count(build(classes)) == expected


def test_bfloat16_compute_keeps_float32_params_statistics_and_logits():
  model = cnn.SmallCNN(num_classes=5, widths=(8,), dtype=jnp.bfloat16)
  x = jnp.ones((4, 8, 8, 3))
  variables = model.init(jax.random.PRNGKey(0), x)
  assert {l.dtype for l in jax.tree.leaves(variables)} == {jnp.dtype('float32')}
  logits, new = model.apply(variables, x, train=True, mutable=['batch_stats'])
  assert logits.dtype == jnp.float32
  assert {l.dtype for l in jax.tree.leaves(new)} == {jnp.dtype('float32')}


def _vit_formula(classes, image=32, patch=4, width=384, depth=12, mlp=1536):
  """ViT parameters written out from the architecture, independently of the model code."""
  tokens = (image // patch) ** 2 + 1
  embedding = patch * patch * 3 * width + width     # patch projection, with bias
  token_params = width + tokens * width             # class token, position embeddings
  block = (2 * 2 * width                            # two LayerNorms (scale, bias)
           + 3 * (width * width + width)            # q, k, v with biases
           + width * width + width                  # attention output projection
           + width * mlp + mlp + mlp * width + width)  # MLP
  return embedding + token_params + depth * block + 2 * width + width * classes + classes


def test_vit_small_matches_the_published_vit_s16_count_and_the_formula():
  # timm vit_small_patch16_224 (= DeiT-S): 22,050,664 parameters, 224x224, 16x16 patches.
  assert _vit_formula(1000, image=224, patch=16) == 22_050_664
  variables = jax.eval_shape(vit.ViT(1000, patch=16).init, jax.random.PRNGKey(0),
                             jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32))
  assert sum(x.size for x in jax.tree.leaves(variables['params'])) == 22_050_664
  # The CIFAR configuration (4x4 patches, 65 tokens) then follows from the formula.
  assert _vit_formula(10) == 21_342_346


# name, classes, input size, parameter count, feature width. Sources of the counts:
# preact_resnet18: Kuang Liu's pytorch-cifar PreActResNet18 (no final BN), 11,171,146 for 10
#   classes as listed by e.g. Harry24k/Adversarial-Defenses-PyTorch; wrn28_10 and
#   densenet_bc_100: osmr/imgclsmob CIFAR-10/100 tables (WRN-28-10 36,479,194 / 36,536,884,
#   DenseNet-BC-100 k=12 769,162 / 800,032); densenet121 and resnet50_imagenet: torchvision
#   (7,978,856; 25,557,032); densenet264 (k=32, blocks 6/12/64/48): 33,337,704 in the docs of
#   the lucid library (ChanLumerico/lucid, densenet_264); the DenseNet paper gives no count, and
#   timm's densenet264d is another network (k=48, deep stem); vit_cifar: the formula above;
#   resnet18/34/101_imagenet: torchvision (11,689,512; 21,797,672; 44,549,160); vit_s16 and
#   vit_b16: timm's vit_small_patch16_224 and vit_base_patch16_224 (22,050,664; 86,567,656).
@pytest.mark.parametrize('name, classes, size, expected, width', [
    ('preact_resnet18', 10, 32, 11_171_146, 512),
    ('wrn28_10', 10, 32, 36_479_194, 640),
    ('wrn28_10', 100, 32, 36_536_884, 640),
    ('densenet_bc_100', 10, 32, 769_162, 342),
    ('densenet_bc_100', 100, 32, 800_032, 342),
    ('vit_cifar', 10, 32, _vit_formula(10), 384),
    ('resnet18_imagenet', 1000, 224, 11_689_512, 512),
    ('resnet34_imagenet', 1000, 224, 21_797_672, 512),
    ('resnet50_imagenet', 1000, 224, 25_557_032, 2048),
    ('resnet101_imagenet', 1000, 224, 44_549_160, 2048),
    ('vit_s16', 1000, 224, 22_050_664, 384),
    ('vit_b16', 1000, 224, 86_567_656, 768),
    ('densenet121', 1000, 224, 7_978_856, 1024),
    ('densenet264', 1000, 224, 33_337_704, 2688),
])
def test_registry_models_counts_bfloat16_dtypes_and_features(name, classes, size, expected,
                                                             width):
  model = models.MODELS[name](classes, jnp.bfloat16, helpers.load_config('smoke.py').model)
  x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
  assert sum(v.size for v in jax.tree.leaves(variables['params'])) == expected
  assert {v.dtype for v in jax.tree.leaves(variables)} == {jnp.dtype('float32')}
  (logits, features), new = jax.eval_shape(
      partial(model.apply, train=True, return_features=True, mutable=['batch_stats']),
      variables, x)
  assert (logits.shape, logits.dtype) == ((2, classes), jnp.float32)
  assert (features.shape, features.dtype) == ((2, width), jnp.float32)
  assert {v.dtype for v in jax.tree.leaves(new)} <= {jnp.dtype('float32')}
  assert ('batch_stats' in variables) == (not name.startswith('vit'))


@pytest.mark.parametrize('model, width', [
    (preact_resnet.PreActResNet((1, 1), 5, jnp.bfloat16), 128),
    (densenet.DenseNet(4, (1, 1), 5, True, jnp.bfloat16), 10),
    (vit.ViT(5, width=16, depth=1, heads=2, mlp_dim=32, dtype=jnp.bfloat16), 16),
], ids=['preact', 'densenet_imagenet_stem', 'vit'])
def test_small_versions_run_in_bfloat16_and_return_float32(model, width):
  x = jnp.ones((2, 32, 32, 3))
  # Constant float32 variables of the right shapes: compiling the random init costs more.
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
  variables = jax.tree.map(lambda s: jnp.full(s.shape, 0.05, s.dtype), shapes)
  (logits, features), new = jax.jit(partial(
      model.apply, train=True, return_features=True, mutable=['batch_stats']))(variables, x)
  assert (logits.shape, logits.dtype) == ((2, 5), jnp.float32)
  assert (features.shape, features.dtype) == ((2, width), jnp.float32)
  assert np.isfinite(np.asarray(logits)).all()
  assert {v.dtype for v in jax.tree.leaves(new)} <= {jnp.dtype('float32')}


def test_train_step_runs_a_model_without_batchnorm(monkeypatch):
  """A ViT has no batch_stats: the state keeps an empty collection through a step."""
  name = helpers.load_config('smoke.py').model.name  # the model step_setup builds
  monkeypatch.setitem(models.MODELS, name, lambda k, dtype, mc: vit.ViT(
      k, width=16, depth=1, heads=2, mlp_dim=32, dtype=dtype))
  state, train_step, data, _, batch_dev = helpers.step_setup(jax.devices())
  assert state.batch_stats == {}
  before = jax.tree.map(np.asarray, state.params)
  state, sums = train_step(state, data, batch_dev)
  assert state.batch_stats == {} and np.isfinite(float(sums['loss_sum']))
  assert not np.allclose(before['head']['kernel'], state.params['head']['kernel'])
