"""Whether a table updated with a decay may be stored in bfloat16: BSD's posterior, and the
tables of the baselines that decay (temporal ensembling's prediction average)."""
import jax.numpy as jnp


def bfloat16_holds(decay: float) -> bool:
  """Whether a table entry updated as x <- decay x + u may be stored in bfloat16.

  bfloat16 keeps 8 significant bits and rounds to nearest, so a change smaller than half its
  spacing (2^-9 to 2^-8 of |x|) is lost. An update moves x by (1 - decay) of its distance to
  where u would take it, so the stored entry stops following u anywhere within 2^-8 / (1 - decay)
  of its value: at BSD's default decay 0.5^(1/200) (1 - decay = 0.35%) that is 113%, the entry
  freezes. True when that dead band is at most 1% (decay <= 0.609)."""
  return 2.0 ** -8 <= 0.01 * (1.0 - decay)


def check_bfloat16_decay(dtype, decay, what: str):
  """ValueError when `dtype` is bfloat16 and a decay of `decay` cannot be held in it (a python
  number; a traced decay is not checked)."""
  if (jnp.dtype(dtype) == jnp.bfloat16 and isinstance(decay, (int, float))
      and not bfloat16_holds(decay)):
    raise ValueError(f'{what}: a bfloat16 table cannot follow an update with decay {decay:.4f} '
                     '(changes below 2^-9 of an entry are rounded away); store it in float32')
