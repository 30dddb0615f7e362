"""How far a bfloat16 BSD table drifts from float32, rounded to nearest and stochastically.

    python bench/bfloat16_table.py            # 2,000 rows, 10 classes, 200 updates

Each row starts at BSD's prior (c = 1/(1 - gamma) on the label, eps elsewhere) and takes
--updates updates alpha <- gamma alpha + p with the same prediction p (p(label) in {0, 0.5, 1},
the rest spread evenly), kept in float32, in bfloat16 rounded to nearest (what a cast does),
and in bfloat16 rounded stochastically (a random 16-bit carry, then truncation). It prints the
label's target weight of each and, for the stochastic one, the mean and largest relative error
over the rows: why bsd_jax refuses a bfloat16 BSD table instead of rounding it either way
(docs/design.md, The per-sample table).
"""
import argparse

import ml_dtypes
import numpy as np


def _stochastic(x, rng):
  bits = x.astype(np.float32).view(np.uint32)
  carry = rng.integers(0, 1 << 16, size=x.shape, dtype=np.uint32)
  return ((bits + carry) & np.uint32(0xFFFF0000)).view(np.float32)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--rows', type=int, default=2000)
  p.add_argument('--classes', type=int, default=10)
  p.add_argument('--updates', type=int, default=200)
  p.add_argument('--gamma', type=float, default=0.5 ** (1 / 200))
  p.add_argument('--eps', type=float, default=1e-3)
  args = p.parse_args(argv)
  g, k, rng = args.gamma, args.classes, np.random.default_rng(0)
  c = 1 / (1 - g)
  print(f'gamma {g:.6f}, c {c:.1f}, {args.rows} rows x {k} classes, {args.updates} updates')
  for p_label in (0.0, 0.5, 1.0):
    probs = np.full(k, (1 - p_label) / (k - 1), np.float32)
    probs[0] = p_label
    f32 = np.tile(np.where(np.arange(k) == 0, c, args.eps).astype(np.float32), (args.rows, 1))
    nearest = f32.astype(ml_dtypes.bfloat16)
    stochastic = _stochastic(f32, rng)
    for _ in range(args.updates):
      f32 = g * f32 + probs
      nearest = (g * nearest.astype(np.float32) + probs).astype(ml_dtypes.bfloat16)
      stochastic = _stochastic(g * stochastic + probs, rng)
    weight = lambda a: a[:, 0].astype(np.float64) / a.astype(np.float64).sum(1)
    err = np.abs(weight(stochastic) / weight(f32) - 1)
    print(f'p(label) {p_label}: label weight float32 {weight(f32)[0]:.4f}, bfloat16 nearest '
          f'{weight(nearest)[0]:.4f}, stochastic mean {weight(stochastic).mean():.4f}; '
          f'stochastic relative error mean {err.mean():.2%} max {err.max():.2%}')


if __name__ == '__main__':
  main()
