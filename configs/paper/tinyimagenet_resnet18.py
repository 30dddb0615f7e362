"""Paper experiment tinyimagenet_resnet18: resnet18 on Tiny ImageNet.

Checks: BSD against CE and the self-distillation baselines on TinyImageNet (top-1, top-5, ECE).

    python -m bsd_jax.sweep --config configs/paper/tinyimagenet_resnet18.py \
        --workdir runs/paper/tinyimagenet_resnet18 --seeds 0,1,2 \
        --methods ce,label_smoothing,pskd,cskd,tfkd_reg,dlb,bsd

Time on one H200: about 42 minutes a run, 19.0 hours for the sweep run one after another (CS-KD
and DLB forward two batches a step). ESTIMATED from FLOPs, not measured: 4.16 GFLOPs forward per
image (bench/model_flops.py), a train step ~3 forward passes, 200 epochs of 100,000 images and the
test split every 10 epochs, at 10% of the 989 TFLOP/s bf16 peak.
Data: the official tiny-imagenet-200 directory or zip, --config.data.root=PATH (docs/data.md).
Status and the map of claims: docs/paper.md.
"""
import pathlib
import runpy

base = runpy.run_path(str(pathlib.Path(__file__).with_name('_base.py')))


def get_config():
  c = base['tiny_imagenet']('resnet18')
  return c
