"""docs/your_data.md's try-out on CPU: a small CNN trained from scratch with BSD on a folder of
photos at 64x64 (a few minutes on 2 cores, where ResNet-18 at 64x64 takes ten times as long).

    python -m bsd_jax.main --config configs/photos_cpu.py --workdir runs/photos \
        --config.data.root=data/photos

The recipe for real photos and pretrained weights is configs/finetune_resnet50.py; this is its
CPU-size sibling: a smaller model and crops, a learning rate for training from scratch.
"""
import pathlib
import runpy

finetune = runpy.run_path(str(pathlib.Path(__file__).with_name('finetune_resnet50.py')))


def get_config():
  c = finetune['get_config']()
  c.model.name = 'cnn'
  c.model.cnn_widths = (32, 64, 128)
  c.num_epochs = 15
  c.learning_rate = 0.05
  c.backbone_lr_multiplier = 1.0
  c.weight_decay = 5e-4
  c.eval_batch_size = 200
  c.log_every_steps = 10
  c.data.stream.image_size = 64
  c.data.stream.eval_resize = 73
  return c
