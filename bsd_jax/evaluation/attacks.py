"""L-inf adversarial attacks (FGSM, PGD) on images in [0, 1], pure and jittable.

`logits_fn(x)` maps float images in [0, 1] [B, H, W, C] to logits; the attack ascends the mean
cross-entropy of the given labels. PGD (Madry et al. 2018): optional uniform random start in the
eps ball, then `steps` signed-gradient steps of `step_size`, each projected back onto the eps
ball around the clean image and onto the valid pixel range [0, 1]. FGSM is one step of size eps
from the clean image."""
import jax
import jax.numpy as jnp

from bsd_jax import losses


def _loss(logits_fn, x, labels):
  return jnp.mean(losses.cross_entropy(logits_fn(x), labels))


def pgd(logits_fn, images, labels, *, eps, step_size, steps: int, rng=None,
        random_start: bool = False):
  """(adversarial images, mean loss before each step and after the last: [steps + 1])."""
  clean = images
  x = clean
  if random_start:
    x = jnp.clip(clean + jax.random.uniform(rng, clean.shape, minval=-eps, maxval=eps), 0.0, 1.0)
  grad_fn = jax.value_and_grad(lambda v: _loss(logits_fn, v, labels))

  def body(i, carry):
    x, trace = carry
    loss, g = grad_fn(x)
    x = x + step_size * jnp.sign(g)
    x = jnp.clip(jnp.clip(x, clean - eps, clean + eps), 0.0, 1.0)
    return x, trace.at[i].set(loss)

  x, trace = jax.lax.fori_loop(0, steps, body, (x, jnp.zeros(steps + 1, jnp.float32)))
  return x, trace.at[steps].set(_loss(logits_fn, x, labels))


def fgsm(logits_fn, images, labels, *, eps):
  """One signed-gradient step of size eps, clipped to [0, 1]."""
  return pgd(logits_fn, images, labels, eps=eps, step_size=eps, steps=1)[0]
