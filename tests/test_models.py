"""Model sizes against the published CIFAR ResNet parameter counts; mixed precision dtypes."""
import jax
import jax.numpy as jnp
import pytest

from bsd_jax.models import cnn, resnet


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
