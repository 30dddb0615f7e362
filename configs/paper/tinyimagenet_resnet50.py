"""Paper experiment tinyimagenet_resnet50: resnet50 on Tiny ImageNet.

Checks: BSD against CE and the self-distillation baselines on TinyImageNet with ResNet-50.

    python -m bsd_jax.sweep --config configs/paper/tinyimagenet_resnet50.py \
        --workdir runs/paper/tinyimagenet_resnet50 --seeds 0,1,2 \
        --methods ce,label_smoothing,pskd,cskd,tfkd_reg,dlb,bsd

Time on one H200: about 1.7 hours a run, 46.5 hours for the sweep run one after another (CS-KD and
DLB forward two batches a step). ESTIMATED from FLOPs, not measured: 10.19 GFLOPs forward per
image (bench/model_flops.py), a train step ~3 forward passes, 200 epochs of 100,000 images and the
test split every 10 epochs, at 10% of the 989 TFLOP/s bf16 peak.
Data: the official tiny-imagenet-200 directory or zip, --config.data.root=PATH (docs/data.md).
Status and the map of claims: docs/paper.md.
"""
import pathlib
import runpy

base = runpy.run_path(str(pathlib.Path(__file__).with_name('_base.py')))


def get_config():
  c = base['tiny_imagenet']('resnet50')
  return c
