"""Fine-tune torchvision's ImageNet ResNet-50 on a folder of your own photos, with BSD.

    python -m bsd_jax.main --config configs/finetune_resnet50.py --workdir runs/my_resnet50 \
        --config.data.root=photos --config.init_from=resnet50-11ad3fa6.pth

`photos/train/<class>/*` (and `photos/test/<class>/*`, or `--config.data.test_fraction=0.2`):
images of any size and format, read per step (data.source=folder_stream). The weights file is
torchvision's (docs/training.md says where to get it; `.pth` needs PyTorch, `.safetensors`
does not); its 1000-class head is replaced by one for your classes. With CE instead of BSD:
`--config.method=ce`. Recipe: SGD with Nesterov momentum, batch 64, learning rate 0.01 after a
one-epoch warm-up, cosine to 0 over 30 epochs, the pretrained backbone at a tenth of the head's
learning rate, weight decay 1e-4, 224x224 crops. docs/your_data.md goes from photos to a report.
"""
import pathlib
import runpy

default = runpy.run_path(str(pathlib.Path(__file__).with_name('default.py')))


def get_config():
  c = default['get_config']()
  c.model.name = 'resnet50_imagenet'
  c.num_epochs = 30
  c.batch_size = 64
  c.eval_batch_size = 128
  c.learning_rate = 0.01
  c.warmup_epochs = 1.0
  c.backbone_lr_multiplier = 0.1
  c.weight_decay = 1e-4
  c.log_every_steps = 20
  c.data.source = 'folder_stream'
  c.data.stream.image_size = 224
  c.data.stream.eval_resize = 256
  return c
