"""What the export command writes (bsd_jax/export.py has the list): a run's model as flat
.safetensors, its model.json, and PyTorch's key layout where the model has one."""
import json
import os

import jax
import numpy as np

from bsd_jax import inference
from bsd_jax.errors import UserError
from bsd_jax.pretrained import to_torch
from bsd_jax.rundir import checkpoints


def model_arrays(state) -> dict:
  """{'params/...' / 'batch_stats/...': float32 numpy array} of a state's model."""
  tree = {'params': state.params, 'batch_stats': state.batch_stats}
  return {checkpoints.leaf_name(path): np.asarray(jax.device_get(leaf), np.float32)
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def export(workdir, out, step=None) -> dict:
  """Writes OUT (module docstring); returns model.json's record."""
  from safetensors.numpy import save_file
  if os.path.exists(out):
    raise UserError(f'{out} exists: give a new folder (nothing is overwritten)')
  classifier = inference.Classifier(workdir, step)
  config = classifier.config
  arrays = model_arrays(classifier.state)
  record = {
      'model': config.model.name, 'num_classes': len(classifier.class_names),
      'class_names': classifier.class_names,
      'input': {'height': classifier.height, 'width': classifier.width, 'channels': 1 if classifier.grey else 3,
                'resize_shorter_side': classifier.resize, 'pixels': 'uint8 / 255',
                'mean': classifier.mean.tolist(), 'std': classifier.std.tolist()},
      'temperature': classifier.temperature, 'step': classifier.step,
      'run': os.path.abspath(workdir), 'config': json.loads(config.to_json())}
  torch_state = to_torch.convert(config.model.name, arrays)
  os.makedirs(out)
  save_file(arrays, os.path.join(out, 'model.safetensors'))
  if torch_state is not None:
    save_file(torch_state, os.path.join(out, 'torch.safetensors'))
    record['torch'] = to_torch.describe(config.model.name, len(classifier.class_names))
  with open(os.path.join(out, 'model.json'), 'w') as f:
    json.dump(record, f, indent=1)
  return record
