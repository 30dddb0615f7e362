"""Vision Transformer (Dosovitskiy et al. 2021) for CIFAR: ViT-S on 4x4 patches.

ViT-S is the width-384, depth-12, 6-head, MLP-1536 ViT of DeiT (Touvron et al. 2021) and timm's
`vit_small_patch16_224` (22,050,664 parameters at 224x224 with 16x16 patches, 1000 classes);
on 32x32 images with 4x4 patches it sees 64 patch tokens plus a class token. Layout as in
google-research/vision_transformer: a strided conv embeds the patches, learned position
embeddings, pre-LayerNorm blocks (attention with qkv biases, GELU MLP), a final LayerNorm, the
class token's features go to a zero-initialised dense head. No BatchNorm (the `batch_stats`
collection stays empty) and no dropout or stochastic depth (the train step passes no rng).
Float32 parameters, `dtype` compute, softmax of the attention in float32."""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

_init = nn.initializers.xavier_uniform()


class EncoderBlock(nn.Module):
  heads: int
  mlp_dim: int
  dtype: Any

  @nn.compact
  def __call__(self, x):
    y = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype)(x)
    y = nn.MultiHeadDotProductAttention(self.heads, dtype=self.dtype, kernel_init=_init,
                                        force_fp32_for_softmax=True)(y, y)
    x = x + y
    y = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype)(x)
    y = nn.Dense(self.mlp_dim, dtype=self.dtype, kernel_init=_init)(y)
    y = nn.Dense(x.shape[-1], dtype=self.dtype, kernel_init=_init)(nn.gelu(y, approximate=False))
    return x + y


class ViT(nn.Module):
  num_classes: int
  patch: int = 4
  width: int = 384
  depth: int = 12
  heads: int = 6
  mlp_dim: int = 1536
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False, return_features: bool = False):
    del train  # nothing behaves differently in training
    x = x.astype(self.dtype)
    x = nn.Conv(self.width, (self.patch, self.patch), (self.patch, self.patch), padding='VALID',
                dtype=self.dtype, name='embedding')(x)
    batch, h, w, c = x.shape
    x = x.reshape(batch, h * w, c)
    cls = self.param('cls', nn.initializers.zeros, (1, 1, c))
    x = jnp.concatenate([jnp.broadcast_to(cls.astype(self.dtype), (batch, 1, c)), x], axis=1)
    x = x + self.param('pos_embedding', nn.initializers.normal(0.02), (1, h * w + 1, c)).astype(
        self.dtype)
    for _ in range(self.depth):
      x = EncoderBlock(self.heads, self.mlp_dim, self.dtype)(x)
    x = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name='encoder_norm')(x)
    features = x[:, 0].astype(jnp.float32)
    logits = nn.Dense(self.num_classes, dtype=jnp.float32, kernel_init=nn.initializers.zeros,
                      name='head')(features)
    return (logits, features) if return_features else logits
