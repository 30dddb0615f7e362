"""TrainState: everything a run needs to continue, as one pytree that orbax saves whole."""
from typing import Any

import flax.struct
import jax


@flax.struct.dataclass
class TrainState:
  step: jax.Array          # int32 scalar: optimizer steps taken (also the data position)
  params: Any
  batch_stats: Any
  opt_state: Any
  table: Any               # the method's per-sample table, rows sharded on the data axis:
                           # [N_pad, W], or a dict of [N_pad, ...] arrays (BSD's sparse posterior);
                           # checkpoints store it as 'alpha', its first name
  rng: jax.Array           # uint32 PRNGKey; per-step keys are fold_in(rng, step)
  carry: Any               # what a method passes from one step to the next (DLB: logits)
