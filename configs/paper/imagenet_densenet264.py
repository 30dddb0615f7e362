"""Paper experiment imagenet_densenet264: densenet264 on ImageNet.

Checks: v2's headline: "+2.0% [top-1] for DenseNet-264 on ImageNet" against the self-distillation
methods.

    python -m bsd_jax.sweep --config configs/paper/imagenet_densenet264.py \
        --workdir runs/paper/imagenet_densenet264 --seeds 0,1,2 \
        --methods ce,label_smoothing,pskd,cskd,tfkd_reg,dlb,bsd

Time on one H200: about 11.3 hours a run, 304.4 hours for the sweep run one after another (CS-KD
and DLB forward two batches a step). ESTIMATED from FLOPs, not measured: 11.46 GFLOPs forward per
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
  c = base['imagenet']('densenet264')
  return c
