"""Paper experiment imagenet_resnet50: resnet50_imagenet on ImageNet.

Checks: BSD against CE and the self-distillation baselines on ImageNet with ResNet-50 (top-1,
top-5, ECE).

    python -m bsd_jax.sweep --config configs/paper/imagenet_resnet50.py \
        --workdir runs/paper/imagenet_resnet50 --seeds 0,1,2 \
        --methods ce,label_smoothing,pskd,cskd,tfkd_reg,dlb,bsd

Time on one H200: about 7.9 hours a run, 212.5 hours for the sweep run one after another (CS-KD
and DLB forward two batches a step). ESTIMATED from FLOPs, not measured: 8.00 GFLOPs forward per
image (bench/model_flops.py), a train step ~3 forward passes, 90 epochs of 1,281,167 images and
the test split every 1 epoch, at 10% of the 989 TFLOP/s bf16 peak.
Data: imagenet2012 prepared once by hand (docs/data.md, "ImageNet"),
--config.data.tfds_data_dir=D.
Status and the map of claims: docs/paper.md.
"""
import pathlib
import runpy

base = runpy.run_path(str(pathlib.Path(__file__).with_name('_base.py')))


def get_config():
  c = base['imagenet']('resnet50_imagenet')
  return c
