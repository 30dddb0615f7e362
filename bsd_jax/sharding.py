"""Mesh, shardings and the row gather/scatter of row-sharded arrays.

One mesh axis, 'data', spans every device. The batch, the rows of the per-sample table
(`alpha` for BSD) and the rows of an in-memory (CIFAR-size) dataset's images are split on it;
parameters and optimizer state are replicated. Gathering the batch's rows is written with
`shard_map` so that each device only reads its own slice: the compiled step exchanges
batch-sized values, never the table or the dataset. Each process holds, and reads from disk,
only the rows of its own devices (`process_rows`, `put_rows`)."""
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

AXIS = 'data'


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh over all devices with an Auto axis (jit may shard intermediates freely)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (AXIS,), axis_types=(AxisType.Auto,))


def replicated(mesh):
  return NamedSharding(mesh, P())


def batch_sharded(mesh):
  """Leading (batch) axis split over the devices."""
  return NamedSharding(mesh, P(AXIS))


def steps_batch_sharded(mesh):
  """[steps, batch, ...] arrays (several steps' batches) split on the batch axis."""
  return NamedSharding(mesh, P(None, AXIS))


def rows_sharded(mesh):
  """Rows of an [N, K] table (any [N, ...] array) split over the devices, columns whole."""
  return NamedSharding(mesh, P(AXIS, None))


def padded_rows(num_rows: int, num_devices: int) -> int:
  """Table rows rounded up to a multiple of the device count (padding rows are never read)."""
  return -(-num_rows // num_devices) * num_devices


def process_positions(num_rows: int, device_processes, process_index: int) -> np.ndarray:
  """Rows of an array split on its first axis that one process's devices hold, in increasing
  order (the order jax.make_array_from_process_local_data expects).

  The rows are split into equal contiguous parts, one per device in mesh order;
  `device_processes[d]` is the process of the mesh's d-th device."""
  rows = np.arange(num_rows).reshape(len(device_processes), -1)
  return rows[np.asarray(device_processes) == process_index].reshape(-1)


def sample_rows(num_rows: int, device_processes, process_index: int) -> np.ndarray:
  """The rows 0..num_rows-1 (sample ids) that one process's devices hold when an array of
  num_rows rows is padded to padded_rows() and split by rows (padding rows left out)."""
  rows = process_positions(padded_rows(num_rows, len(device_processes)), device_processes,
                           process_index)
  return rows[rows < num_rows]


def _owners(mesh):
  return [d.process_index for d in mesh.devices.flat]


def this_process_positions(num_rows: int, mesh) -> np.ndarray:
  """process_positions of this process over `mesh` (num_rows a multiple of its size)."""
  return process_positions(num_rows, _owners(mesh), jax.process_index())


def process_rows(num_rows: int, mesh) -> np.ndarray:
  """sample_rows of this process over `mesh`: what this process reads of an in-memory split."""
  return sample_rows(num_rows, _owners(mesh), jax.process_index())


def put_rows(local, ids, num_rows, mesh):
  """The global array of `num_rows` rows, padded with zero rows to padded_rows() and split by
  rows over `mesh`, from this process's rows only: `local[i]` is row `ids[i]`, and `ids` covers
  process_rows(num_rows, mesh) (None: `local` holds all rows in order)."""
  positions = this_process_positions(padded_rows(num_rows, mesh.size), mesh)
  real = positions[positions < num_rows]
  if ids is None:
    picked = local[real]
  else:
    where = np.searchsorted(ids, real)
    if real.size and (where[-1] >= len(ids) or not np.array_equal(ids[where], real)):
      raise ValueError("put_rows: the rows read are not this process's rows")
    picked = local[where]
  block = np.zeros((positions.size,) + local.shape[1:], local.dtype)
  block[:real.size] = picked  # real rows come first: padding rows are the last ones
  global_shape = (padded_rows(num_rows, mesh.size),) + local.shape[1:]
  return jax.make_array_from_process_local_data(NamedSharding(mesh, P(AXIS)), block, global_shape)


def _local_positions(idx, rows_per_device):
  offset = jax.lax.axis_index(AXIS) * rows_per_device
  local = idx - offset
  return local, (local >= 0) & (local < rows_per_device)


def take_rows(array, idx, mesh):
  """array[idx], batch-sharded, for an array split by rows (any rank and dtype; or a pytree of
  them) and a batch-sharded idx, without moving the array.

  Every device sees all of the batch's indices, reads the rows it owns (zeros elsewhere), and a
  reduce-scatter sums the contributions back onto the batch sharding (exact: one term is
  nonzero, so even uint8 images and int32 class ids come back unchanged)."""
  def local_take(block, local_idx):
    all_idx = jax.lax.all_gather(local_idx, AXIS, tiled=True)

    def take(leaf):
      local, mine = _local_positions(all_idx, leaf.shape[0])
      rows = jnp.take(leaf, jnp.where(mine, local, 0), axis=0)
      mine = mine.reshape(mine.shape + (1,) * (rows.ndim - 1))
      rows = jnp.where(mine, rows, jnp.zeros_like(rows))
      return jax.lax.psum_scatter(rows, AXIS, scatter_dimension=0, tiled=True)

    return jax.tree.map(take, block)

  return jax.shard_map(local_take, mesh=mesh, in_specs=(P(AXIS), P(AXIS)), out_specs=P(AXIS),
                       check_vma=False)(array, idx)


def per_device_rows(fn, mesh):
  """fn(rows, probs, epoch) run on each device's part of the batch-sharded rows and probs
  (`epoch` replicated): a method's row update is row by row, and left to the partitioner an
  operation such as top_k may gather the whole [batch, K] probabilities onto every device."""
  return jax.shard_map(fn, mesh=mesh, in_specs=(P(AXIS), P(AXIS), P()), out_specs=P(AXIS),
                       check_vma=False)


def gather_rows(table, idx, mesh):
  """table[idx] of a row-sharded table ([N, K] or a pytree of [N, ...] arrays): float arrays in
  float32 whatever their storage dtype, integer ones (class ids) as stored."""
  return jax.tree.map(
      lambda rows: rows.astype(jnp.float32) if jnp.issubdtype(rows.dtype, jnp.floating)
      else rows, take_rows(table, idx, mesh))


def bytes_per_device(tree) -> int:
  """Bytes of an array (or a pytree of them) held on one device under its sharding (the
  largest shard)."""
  return sum(int(np.prod(a.sharding.shard_shape(a.shape))) * np.dtype(a.dtype).itemsize
             for a in jax.tree.leaves(tree))


def scatter_rows(table, idx, rows, valid, mesh):
  """table with table[idx[b]] = rows[b] wherever valid[b]; other rows are left untouched (`table`
  and `rows`: [N, W] / [B, W] arrays, or pytrees of such, of the same structure)."""
  def local_scatter(block, local_idx, local_rows, local_valid):
    all_idx = jax.lax.all_gather(local_idx, AXIS, tiled=True)
    all_valid = jax.lax.all_gather(local_valid, AXIS, tiled=True)

    def scatter(leaf, leaf_rows):
      all_rows = jax.lax.all_gather(leaf_rows, AXIS, tiled=True)
      local, mine = _local_positions(all_idx, leaf.shape[0])
      # Rows that are not ours, or not valid, point past the end and are dropped.
      target = jnp.where(mine & all_valid, local, leaf.shape[0])
      return leaf.at[target].set(all_rows.astype(leaf.dtype), mode='drop')

    return jax.tree.map(scatter, block, local_rows)

  return jax.shard_map(local_scatter, mesh=mesh,
                       in_specs=(P(AXIS, None), P(AXIS), P(AXIS, None), P(AXIS)),
                       out_specs=P(AXIS, None), check_vma=False)(table, idx, rows, valid)
