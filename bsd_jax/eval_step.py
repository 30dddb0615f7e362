"""The eval-mode forward of uint8 images (the test and validation splits, the suites, the
Predictor), the table-refresh step of a method with a refresh pass, the class targets of a
method whose targets need predictions; and how a step finds a batch's images (`images_of`),
shared with the train step (step.py)."""
import jax
import jax.numpy as jnp

from bsd_jax import sharding
from bsd_jax.data import augment


def images_of(data, batch, key, mesh):
  """Images of the samples batch[key] ('index' or 'extra_index'): carried by a streamed batch
  ('images' / 'extra_images'), else gathered from the device-resident split."""
  carried = key.replace('index', 'images')
  if carried in batch:
    return batch[carried]
  return sharding.take_rows(data['images'], batch[key], mesh)


def make_outputs_images(model, mean, std):
  """outputs_images(state, images) -> eval-mode (float32 logits, softmax probabilities) [B, K] of
  uint8 images [B, H, W, C]: evaluation keeps both (temperature scaling needs the logits)."""
  def outputs_images(state, images):
    x = augment.normalize(images, mean, std)
    logits = model.apply({'params': state.params, 'batch_stats': state.batch_stats}, x, train=False)
    logits = logits.astype(jnp.float32)
    return logits, jax.nn.softmax(logits, axis=-1)

  return outputs_images


def make_outputs(model, mesh, mean, std):
  """outputs(state, data, index) -> make_outputs_images of device-resident images."""
  outputs_images = make_outputs_images(model, mean, std)

  def outputs(state, data, index):
    return outputs_images(state, sharding.take_rows(data['images'], index, mesh))

  return outputs


def tails_of(method, state, data, batch, probs):
  """What a method's row functions get for the batch's rows (Method.row_profile)."""
  if method.row_profile is None:
    return probs
  labels = jnp.take(data['labels'], batch['index'], axis=0)
  return {'probs': probs, 'profile': method.row_profile(state.carry, labels)}


def make_refresh_step(model, method, mesh, mean, std, *, steps_per_epoch: int):
  """refresh(state, data, batch) -> state with the batch's rows updated from clean eval-mode
  predictions (a method with refresh_pass: one extra forward pass per epoch)."""
  outputs_images = make_outputs_images(model, mean, std)
  update = sharding.per_device_rows(method.update_rows, mesh)

  def refresh(state, data, batch):
    probs = outputs_images(state, images_of(data, batch, 'index', mesh))[1]
    rows = sharding.gather_rows(state.table, batch['index'], mesh)
    epoch = state.step // steps_per_epoch - 1  # runs after the epoch's last step
    return state.replace(table=sharding.scatter_rows(
        state.table, batch['index'], update(rows, tails_of(method, state, data, batch, probs),
                                            epoch), batch['mask'] > 0, mesh))

  return refresh


def make_class_target_sums(model, method, mesh, mean, std, num_classes: int):
  """class_target_sums(state, data, batch) -> ([K, K] sums of the batch's row targets by label,
  [K] counts), the rows' targets under the model's eval-mode predictions (a method whose
  targets need them, Method.targets_need_probs)."""
  outputs_images = make_outputs_images(model, mean, std)

  def class_target_sums(state, data, batch):
    probs = outputs_images(state, images_of(data, batch, 'index', mesh))[1]
    rows = sharding.gather_rows(state.table, batch['index'], mesh)
    labels = jnp.take(data['labels'], batch['index'], axis=0)
    w = (batch['mask'] > 0).astype(jnp.float32)
    targets = method.row_targets(rows, num_classes,
                                 tails_of(method, state, data, batch, probs)) * w[:, None]
    return (jax.ops.segment_sum(targets, labels, num_classes),
            jax.ops.segment_sum(w, labels, num_classes))

  return class_target_sums
