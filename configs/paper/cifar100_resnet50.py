"""Paper experiment cifar100_resnet50: resnet50 on cifar100.

Checks: the abstract's headline: "+1.4% [top-1] for ResNet-50 on CIFAR-100" and "-40% ECE" against
the architecture-preserving self-distillation methods.

    python -m bsd_jax.sweep --config configs/paper/cifar100_resnet50.py \
        --workdir runs/paper/cifar100_resnet50 --seeds 0,1,2 \
        --methods ce,label_smoothing,pskd,cskd,tfkd_reg,dlb,bsd

Time on one H200: about 13 minutes a run, 5.7 hours for the sweep run one after another (CS-KD and
DLB forward two batches a step). ESTIMATED from FLOPs, not measured: 2.47 GFLOPs forward per image
(bench/model_flops.py), a train step ~3 forward passes, 200 epochs of 50,000 images and the test
split every 10 epochs, at 10% of the 989 TFLOP/s bf16 peak.
Status and the map of claims: docs/paper.md.
"""
import pathlib
import runpy

base = runpy.run_path(str(pathlib.Path(__file__).with_name('_base.py')))


def get_config():
  c = base['cifar']('cifar100', 'resnet50')
  return c
