"""Paper experiment cifar10_wrn28_10: wrn28_10 on cifar10.

Checks: BSD against CE and the self-distillation baselines on CIFAR-10 with WideResNet-28-10.

    python -m bsd_jax.sweep --config configs/paper/cifar10_wrn28_10.py \
        --workdir runs/paper/cifar10_wrn28_10 --seeds 0,1,2 \
        --methods ce,label_smoothing,pskd,cskd,tfkd_reg,dlb,bsd

Time on one H200: about 49 minutes a run, 21.8 hours for the sweep run one after another (CS-KD
and DLB forward two batches a step). ESTIMATED from FLOPs, not measured: 9.53 GFLOPs forward per
image (bench/model_flops.py), a train step ~3 forward passes, 200 epochs of 50,000 images and the
test split every 10 epochs, at 10% of the 989 TFLOP/s bf16 peak.
Status and the map of claims: docs/paper.md.
"""
import pathlib
import runpy

base = runpy.run_path(str(pathlib.Path(__file__).with_name('_base.py')))


def get_config():
  c = base['cifar']('cifar10', 'wrn28_10')
  return c
