"""Fine-tune timm's ViT-S/16 (vit_small_patch16_224) on a folder of your own photos, with BSD.

    python -m bsd_jax.main --config configs/finetune_vit_s16.py --workdir runs/my_vit \
        --config.data.root=photos --config.init_from=model.safetensors

`photos/train/<class>/*` (and `photos/test/<class>/*`, or `--config.data.test_fraction=0.2`):
images of any size and format, read per step (data.source=folder_stream). The weights are the
`model.safetensors` of a timm ViT-S/16 at 224x224, e.g. timm/vit_small_patch16_224.augreg_in21k_
ft_in1k (docs/training.md); its head is replaced by one for your classes. With CE instead of
BSD: `--config.method=ce`. Recipe, after big_vision's transfer config (SGD with momentum, no
weight decay, warm-up, cosine; it takes batch 512, learning rate 0.03 and clips the gradient
norm at 1, which bsd_jax does not): batch 64, learning rate 0.01 after a one-epoch warm-up,
cosine to 0 over 20 epochs, 224x224 crops. docs/your_data.md goes from photos to a report.
"""
import pathlib
import runpy

resnet50 = runpy.run_path(str(pathlib.Path(__file__).with_name('finetune_resnet50.py')))


def get_config():
  c = resnet50['get_config']()  # the same folder source, batch, warm-up and crops
  c.model.name = 'vit_s16'
  c.num_epochs = 20
  c.backbone_lr_multiplier = 1.0
  c.weight_decay = 0.0
  c.nesterov = False
  return c
