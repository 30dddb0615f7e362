"""python -m bsd_jax.export --workdir runs/x [--step N] OUT

Writes a trained run's model to the new folder OUT, for use without bsd_jax's trainer:
  model.safetensors   the parameters and BatchNorm statistics, float32, by flat flax name
                      ('params/Conv_0/kernel', 'batch_stats/BatchNorm_0/mean', ...)
  model.json          the model (config.model), its class names in order, the input it takes
                      (size, the evaluation view's resize, the per-channel mean and std of
                      pixels / 255), the temperature fitted on the run's validation split (or
                      null), the step, the run's config
  torch.safetensors   for the torchvision- and timm-compatible models (resnet*_imagenet,
                      vit_s16, vit_b16): the same weights in PyTorch's key layout, to load into
                      torchvision.models.resnet50(num_classes=K) or timm.create_model(...,
                      num_classes=K) with load_state_dict
The same loading as the predict command (docs/evaluation.md). OUT must not exist: nothing is
overwritten. Bad input is one line, exit status 2."""
import logging
import sys

from absl import flags

from bsd_jax import cli, model_export
from bsd_jax.errors import UserError, fail

_WORKDIR = flags.DEFINE_string('workdir', None, 'A bsd_jax run directory.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest that reads).')
PROG = 'bsd_jax.export'


def main(argv):
  if not _WORKDIR.value:
    fail(PROG, '--workdir is required')
  if len(argv) != 2:
    fail(PROG, 'give one output folder after the flags')
  logging.getLogger('absl').setLevel(logging.WARNING)
  try:
    record = model_export.export(_WORKDIR.value, argv[1], _STEP.value)
  except UserError as e:
    fail(PROG, str(e), e.exit_status)
  print(f'{PROG}: wrote {argv[1]}: {record["model"]}, {record["num_classes"]} classes, step '
        f'{record["step"]}, temperature {record["temperature"]}'
        + (f'; torch.safetensors for {record["torch"]}' if 'torch' in record else ''),
        file=sys.stderr)


if __name__ == '__main__':
  cli.run(main)
