"""BSD's per-sample posterior for your own training loop: pure functions on arrays, independent
of bsd_jax's trainer and configs (which are built from the same functions).

Dense (one Dirichlet alpha [K] per sample, a table alpha [N, K] float32):

  init_alpha(labels [N] int, K, c, eps) -> alpha [N, K]    the prior: c on the label, eps elsewhere
  posterior_mean(alpha [..., K]) -> targets [..., K]       float32, rows sum to one
  update_alpha(alpha [..., K], probs [..., K], gamma)      gamma * alpha + probs (no gradient)
  soft_cross_entropy(logits [B, K], targets [B, K], T=1)   per-sample loss [B]
  posterior_stats(alpha, labels, valid)                    mean target max, label weight, drift
  noisy_label_recovery(alpha, noisy, clean, valid)         under label noise
  gamma_for_label_weight(w, num_epochs)                    the gamma that leaves w on the label
  prior_strength_for(gamma)                                c = 1 / (1 - gamma)

Sparse (`posterior.sparse`, for many classes): a row keeps its k largest (class id, alpha) pairs
and the total of the others: ids int32 [N, k], values [N, k], rest float32 [N, 1]; `init`,
`update`, `target`, `soft_cross_entropy`, `posterior_stats`, `dense_target` (docstrings there).
The unkept mass is spread evenly (spread='uniform'), by the row's prediction
(spread='prediction': `dense_target` takes the probs as the profile, `soft_cross_entropy` uses
its logits' softmax), or by its label's class profile (spread='class': `posterior.profiles`
keeps the class profiles, `init_profiles` and `update_profiles`; the row's profile goes to
`update`, `dense_target`, `soft_cross_entropy`), or by `sparse.blend` of the two (half each),
given to those functions as a 'class' profile.

A table on a mesh, split by rows over its devices (axis 'data'; N padded to a multiple of the
device count by `padded_rows`): `make_mesh()`, `rows_sharded(mesh)` (the table's sharding),
`gather_rows(table, idx, mesh)` (the batch's rows, float32) and `scatter_rows(table, idx, rows,
valid, mesh)` (write them back where valid), under jit, without moving the table.

The usual loop, per batch (idx: the batch's sample indices): rows = gather_rows(alpha, idx, mesh);
loss = mean(soft_cross_entropy(logits, posterior_mean(rows))); alpha = scatter_rows(alpha, idx,
update_alpha(rows, softmax(logits), gamma), valid, mesh). examples/bsd_in_your_loop.py is one
in full; docs/method.md says what the constants mean and how bsd_jax chooses them."""
from bsd_jax.losses import soft_cross_entropy
from bsd_jax.posterior import profiles, sparse
from bsd_jax.posterior.bfloat16 import bfloat16_holds
from bsd_jax.posterior.dense import (gamma_for_label_weight, init_alpha, noisy_label_recovery,
                                     posterior_mean, posterior_stats, prior_strength_for,
                                     update_alpha)
from bsd_jax.sharding import gather_rows, make_mesh, padded_rows, rows_sharded, scatter_rows

__all__ = ['init_alpha', 'posterior_mean', 'update_alpha', 'soft_cross_entropy',
           'posterior_stats', 'noisy_label_recovery', 'gamma_for_label_weight',
           'prior_strength_for', 'bfloat16_holds', 'sparse', 'profiles', 'make_mesh',
           'rows_sharded', 'padded_rows', 'gather_rows', 'scatter_rows']
