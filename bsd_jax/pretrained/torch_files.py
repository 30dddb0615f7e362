"""A PyTorch state_dict on disk as numpy arrays: `.safetensors` through the `safetensors` package
(no torch needed), `.pth` / `.pt` / `.bin` through torch when it is installed (weights only: a
pickle that holds code is refused by torch, not run). A dict wrapping the state_dict under
'state_dict', 'model' or 'state_dict_ema' is unwrapped, and a 'module.' prefix (DataParallel)
is removed."""

import numpy as np

from bsd_jax.errors import UserError

TORCH_SUFFIXES = ('.pth', '.pt', '.bin')


def _from_pickle(path):
  try:
    import torch
  except ImportError:
    raise UserError(f'config.init_from: {path} is a PyTorch pickle, which needs torch (not '
                    'installed here); convert it once where torch is: python -c "import torch; '
                    'from safetensors.torch import save_file; save_file(torch.load(\'IN.pth\', '
                    'weights_only=True), \'OUT.safetensors\')", or pip install torch') from None
  try:
    state = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as e:  # pylint: disable=broad-except  (torch raises many kinds)
    raise UserError(f'config.init_from: cannot read {path} with torch.load: '
                    f'{str(e).splitlines()[0] if str(e) else type(e).__name__}') from None
  for key in ('state_dict', 'model', 'state_dict_ema'):
    if isinstance(state, dict) and isinstance(state.get(key), dict):
      state = state[key]
      break
  if not isinstance(state, dict):
    raise UserError(f'config.init_from: {path} holds a {type(state).__name__}, not a state_dict')
  return {k: v.detach().float().numpy() if v.is_floating_point() else v.numpy()
          for k, v in state.items() if hasattr(v, 'numpy')}


def _from_safetensors(path):
  try:
    from safetensors.numpy import load_file
  except ImportError:
    raise UserError(f'config.init_from: {path} needs the safetensors package: pip install '
                    'safetensors') from None
  try:
    return load_file(path)
  except Exception as e:  # pylint: disable=broad-except  (its Rust errors are not OSError)
    raise UserError(f'config.init_from: cannot read {path} as safetensors: {e}') from None


def read(path) -> dict:
  """{key: numpy array} of the state_dict in the file at `path`."""
  if path.endswith('.safetensors'):
    state = _from_safetensors(path)
  elif path.endswith(TORCH_SUFFIXES):
    state = _from_pickle(path)
  else:
    raise UserError(f'config.init_from: {path}: give a .safetensors or .pth file, or a bsd_jax '
                    'run directory')
  if not state:
    raise UserError(f'config.init_from: {path} holds no arrays')
  if all(k.startswith('module.') for k in state):
    state = {k[len('module.'):]: v for k, v in state.items()}
  return {k: np.asarray(v) for k, v in state.items()}
