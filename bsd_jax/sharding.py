"""Mesh, shardings and the row gather/scatter of the per-sample table.

One mesh axis, 'data', spans every device. The batch and the rows of the per-sample table
(`alpha` for BSD) are split on it; parameters, optimizer state and the (CIFAR-size) dataset are
replicated. Gathering the batch's rows is written with `shard_map` so that each device only
reads its own slice of the table: the compiled step exchanges [batch, K] values, never the
[N, K] table.
"""
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


def rows_sharded(mesh):
  """Rows of an [N, K] table split over the devices, columns whole."""
  return NamedSharding(mesh, P(AXIS, None))


def padded_rows(num_rows: int, num_devices: int) -> int:
  """Table rows rounded up to a multiple of the device count (padding rows are never read)."""
  return -(-num_rows // num_devices) * num_devices


def _local_positions(idx, rows_per_device):
  offset = jax.lax.axis_index(AXIS) * rows_per_device
  local = idx - offset
  return local, (local >= 0) & (local < rows_per_device)


def gather_rows(table, idx, mesh):
  """table[idx] in float32 for a row-sharded table (of any float dtype) and a batch-sharded
  idx, without moving the table.

  Every device sees all of the batch's indices, reads the rows it owns (zeros elsewhere), and a
  reduce-scatter sums the contributions back onto the batch sharding (exact: one term is
  nonzero).
  """
  def local_gather(block, local_idx):
    all_idx = jax.lax.all_gather(local_idx, AXIS, tiled=True)
    local, mine = _local_positions(all_idx, block.shape[0])
    rows = jnp.take(block, jnp.where(mine, local, 0), axis=0)
    rows = jnp.where(mine[:, None], rows, jnp.zeros_like(rows))
    return jax.lax.psum_scatter(rows, AXIS, scatter_dimension=0, tiled=True)

  return jax.shard_map(local_gather, mesh=mesh, in_specs=(P(AXIS, None), P(AXIS)),
                       out_specs=P(AXIS, None), check_vma=False)(table, idx).astype(jnp.float32)


def bytes_per_device(array) -> int:
  """Bytes of `array` held on one device under its sharding (the largest shard)."""
  shard = array.sharding.shard_shape(array.shape)
  return int(np.prod(shard)) * np.dtype(array.dtype).itemsize


def scatter_rows(table, idx, rows, valid, mesh):
  """table with table[idx[b]] = rows[b] wherever valid[b]; other rows are left untouched."""
  def local_scatter(block, local_idx, local_rows, local_valid):
    all_idx = jax.lax.all_gather(local_idx, AXIS, tiled=True)
    all_rows = jax.lax.all_gather(local_rows, AXIS, tiled=True)
    all_valid = jax.lax.all_gather(local_valid, AXIS, tiled=True)
    local, mine = _local_positions(all_idx, block.shape[0])
    # Rows that are not ours, or not valid, point past the end and are dropped.
    target = jnp.where(mine & all_valid, local, block.shape[0])
    return block.at[target].set(all_rows.astype(block.dtype), mode='drop')

  return jax.shard_map(local_scatter, mesh=mesh,
                       in_specs=(P(AXIS, None), P(AXIS), P(AXIS, None), P(AXIS)),
                       out_specs=P(AXIS, None), check_vma=False)(table, idx, rows, valid)
