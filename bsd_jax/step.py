"""Pure step functions: one train step, one eval forward, one table refresh.

They close over static pieces (model, method, optimizer, mesh) and take arrays only, so that
train.py can jit them with shardings and donate the state. The training labels live on device
(`data['labels']`, int32 [N], replicated); a batch is the sample indices `index` [B] (sharded on
the data axis) and a `mask` [B] that is 0 for the wrap-around padding of an epoch's last batch.
The images come one of two ways (bsd_jax/feeds.py): a CIFAR-size split lives on the devices too
(`data['images']`, uint8 [N_pad, H, W, C], split by rows like the table) and is gathered by
index; a streamed split's images
(already augmented on the host) arrive in the batch, `images` [B, H, W, C] (and
`extra_images` for a method's extra view). Which one is a matter of the batch's keys, fixed
when the step is traced.
"""
import jax
import jax.numpy as jnp
import numpy as np

from bsd_jax import losses, methods, sharding
from bsd_jax.data import augment
from bsd_jax.data import mix as mix_lib


def _gather_images(data, index, mesh):
  return sharding.take_rows(data['images'], index, mesh)


def _images(data, batch, key, mesh):
  """Images of the samples batch[key] ('index' or 'extra_index'): carried by a streamed batch
  ('images' / 'extra_images'), else gathered from the device-resident split."""
  carried = key.replace('index', 'images')
  return batch[carried] if carried in batch else _gather_images(data, batch[key], mesh)


def make_train_step(model, method, tx, mesh, mean, std, *, steps_per_epoch: int,
                    augment_images: bool, update_table: bool, supcon=None, mix=None):
  """train_step(state, data, batch) -> (state, sums of loss/count/correct/confidence).

  A method with an extra view gets `extra_index` / `extra_mask` in the batch; the extra images
  go through the same forward pass (and BatchNorm batch) as the batch itself. With `supcon`
  (config.supcon, weight > 0) a second augmentation of the batch goes through the same pass too,
  and supcon.weight x the SupCon loss of the two views' projections is added to the method's
  loss, which sees the first view only. With `mix` (data/mix.py MixConfig: CutMix or Mixup;
  neither extra views nor SupCon, config_check.py) the batch is mixed with a permutation of
  itself after augmentation, the loss mixed with the same lambda, and a visited row is updated
  from the prediction on its mixed image (as PS-KD's code stores the prediction on the image it
  trained on; bsd.prediction_source = 'eval_pass' updates from clean images instead).
  """
  update = (None if method.update_rows is None else
            sharding.per_device_rows(method.update_rows, mesh))

  def train_step(state, data, batch):
    index, mask = batch['index'], batch['mask']
    batch_size = index.shape[0]
    labels = jnp.take(data['labels'], index, axis=0)
    images = _images(data, batch, 'index', mesh)
    extra = {}
    if method.extra_view is not None:
      extra = {'extra_labels': jnp.take(data['labels'], batch['extra_index'], axis=0),
               'extra_mask': batch['extra_mask']}
      images = jnp.concatenate([images, _images(data, batch, 'extra_index', mesh)])
    key = jax.random.fold_in(state.rng, state.step)
    views = [images]
    if supcon is not None:  # the second view: another crop and flip of the same batch
      views.append(augment.crop_and_flip(images[:batch_size], jax.random.fold_in(key, 1)))
    if augment_images:
      views[0] = augment.crop_and_flip(images, key)
    x = augment.normalize(jnp.concatenate(views), mean, std)
    if mix is not None:
      x, perm, lam = mix_lib.mix_batch(jax.random.fold_in(key, 2), x, mix)
    rows = sharding.gather_rows(state.alpha, index, mesh)
    epoch = state.step // steps_per_epoch
    num_main = images.shape[0]  # the batch and the method's extra view, if any

    def loss_fn(params):
      variables = {'params': params, 'batch_stats': state.batch_stats}
      if supcon is None:
        logits, new_vars = model.apply(variables, x, train=True, mutable=['batch_stats'])
      else:
        (logits, z), new_vars = model.apply(variables, x, train=True, project=True,
                                            mutable=['batch_stats'])
      inputs = methods.StepInputs(
          logits=logits[:batch_size], labels=labels, mask=mask, rows=rows, epoch=epoch,
          extra_logits=logits[batch_size:num_main] if extra else None, carry=state.carry,
          **extra)
      loss = (method.loss(inputs) if mix is None else
              mix_lib.mixed_loss(method.loss, inputs, perm, lam))
      if supcon is not None:  # 'target_argmax': a method with row_targets (config_check.py)
        positives = (labels if supcon.positives == 'labels' else jnp.argmax(
            method.row_targets(rows, logits.shape[-1]), axis=-1))
        pair = jnp.concatenate([z[:batch_size], z[num_main:]])
        loss = loss + supcon.weight * losses.supcon(
            pair, jnp.concatenate([positives, positives]), jnp.concatenate([mask, mask]),
            supcon.temperature, supcon.base_temperature)
      return loss, (inputs, new_vars['batch_stats'])

    (loss, (inputs, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = jax.tree.map(lambda p, u: p + u, state.params, updates)
    probs = jax.nn.softmax(inputs.logits.astype(jnp.float32), axis=-1)
    alpha = state.alpha
    if update_table and update is not None:
      # Update at visit (METHOD.md 1): the same train-pass forward gives the loss and the update.
      alpha = sharding.scatter_rows(alpha, index, update(rows, probs, epoch), mask > 0, mesh)
    carry = state.carry if method.next_carry is None else method.next_carry(inputs)
    count = jnp.sum(mask)
    sums = {  # the names of step.zero_sums
        'loss_sum': loss * count,
        'count': count,
        'correct': jnp.sum(mask * (jnp.argmax(probs, -1) == labels)),
        'confidence_sum': jnp.sum(mask * jnp.max(probs, -1)),
    }
    if 'clean_labels' in data:  # label noise: accuracy against the labels before corruption
      clean = jnp.take(data['clean_labels'], index, axis=0)
      sums['correct_clean'] = jnp.sum(mask * (jnp.argmax(probs, -1) == clean))
    new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                              opt_state=opt_state, alpha=alpha, carry=carry)
    return new_state, sums

  return train_step


def zero_sums(data):
  """Zeros named like a train step's sums (an epoch's running sums start from these)."""
  names = ['loss_sum', 'count', 'correct', 'confidence_sum']
  if 'clean_labels' in data:
    names.append('correct_clean')
  return {k: np.zeros((), np.float32) for k in names}


def make_train_calls(train_step):
  """train_calls(state, data, plan, carried, start, n, sums) -> (state, sums): `n` train steps in
  one call (config.steps_per_call), the steps' sums added to `sums` on the way.

  `plan` holds the epoch's batches, [steps_per_epoch, B] arrays sent once per epoch; the call
  runs its steps `start` .. `start + n - 1`. `carried` holds what a streamed batch carries
  ([K, B, ...] images, rows 0 .. n-1 used; {} for an in-memory source). `n` is a traced number:
  one compiled program serves every call length, so runs with any two K > 1 execute the same
  program and arithmetic, bit for bit.
  """
  def train_calls(state, data, plan, carried, start, n, sums):
    def one_step(i, state_sums):
      state, sums = state_sums
      batch = {k: jax.lax.dynamic_index_in_dim(v, start + i, keepdims=False)
               for k, v in plan.items()}
      batch.update({k: jax.lax.dynamic_index_in_dim(v, i, keepdims=False)
                    for k, v in carried.items()})
      state, step_sums = train_step(state, data, batch)
      return state, jax.tree.map(jnp.add, sums, step_sums)

    return jax.lax.fori_loop(0, n, one_step, (state, sums))

  return train_calls


def make_logits_images(model, mean, std):
  """logits_images(state, images) -> eval-mode logits [B, K] in float32 of uint8 images
  [B, H, W, C]."""
  def logits_images(state, images):
    x = augment.normalize(images, mean, std)
    logits = model.apply({'params': state.params, 'batch_stats': state.batch_stats}, x,
                         train=False)
    return logits.astype(jnp.float32)

  return logits_images


def make_predict_images(model, mean, std):
  """predict_images(state, images) -> eval-mode softmax probabilities [B, K] in float32."""
  logits_images = make_logits_images(model, mean, std)

  def predict_images(state, images):
    return jax.nn.softmax(logits_images(state, images), axis=-1)

  return predict_images


def make_outputs_images(model, mean, std):
  """outputs_images(state, images) -> (float32 logits, softmax probabilities) [B, K] of uint8
  images: evaluation keeps both (temperature scaling needs the logits)."""
  logits_images = make_logits_images(model, mean, std)

  def outputs_images(state, images):
    logits = logits_images(state, images)
    return logits, jax.nn.softmax(logits, axis=-1)

  return outputs_images


def make_outputs(model, mesh, mean, std):
  """outputs(state, data, index) -> make_outputs_images of device-resident images."""
  outputs_images = make_outputs_images(model, mean, std)

  def outputs(state, data, index):
    return outputs_images(state, _gather_images(data, index, mesh))

  return outputs


def make_refresh_step(model, method, mesh, mean, std, *, steps_per_epoch: int):
  """refresh(state, data, batch) -> state with the batch's rows updated from clean eval-mode
  predictions (a method with refresh_pass: one extra forward pass per epoch)."""
  predict_images = make_predict_images(model, mean, std)
  update = sharding.per_device_rows(method.update_rows, mesh)

  def refresh(state, data, batch):
    probs = predict_images(state, _images(data, batch, 'index', mesh))
    rows = sharding.gather_rows(state.alpha, batch['index'], mesh)
    epoch = state.step // steps_per_epoch - 1  # runs after the epoch's last step
    alpha = sharding.scatter_rows(state.alpha, batch['index'], update(rows, probs, epoch),
                                  batch['mask'] > 0, mesh)
    return state.replace(alpha=alpha)

  return refresh
