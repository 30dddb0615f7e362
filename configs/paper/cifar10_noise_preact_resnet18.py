"""Paper experiment cifar10_noise_preact_resnet18: preact_resnet18 on cifar10 with noisy labels.

Checks: "When combined with a contrastive loss, BSD achieves state-of-the-art robustness under
label noise for single-stage, single-network methods": BSD + SupCon against CE, BSD alone and the
baselines under symmetric and asymmetric noise on CIFAR-10.

    python -m bsd_jax.sweep --config configs/paper/cifar10_noise_preact_resnet18.py \
        --workdir runs/paper/cifar10_noise_preact_resnet18 --seeds 0,1,2 \
        --methods ce,pskd,bsd \
        --grid label_noise.rate=0.2,0.5 --grid supcon.weight=0,0.5

Time on one H200: about 10 minutes a run (with SupCon, as configured), 4.4 hours for the sweep run
one after another. ESTIMATED from FLOPs, not measured: 0.97 GFLOPs forward per image
(bench/model_flops.py), a train step ~3 forward passes, 200 epochs of 50,000 images and the test
split every 10 epochs, at 10% of the 989 TFLOP/s bf16 peak, SupCon's second view doubling a step.
Asymmetric noise: --config.label_noise.kind=asymmetric --grid label_noise.rate=0.2,0.4 instead of
the symmetric rates.
Status and the map of claims: docs/paper.md.
"""
import pathlib
import runpy

base = runpy.run_path(str(pathlib.Path(__file__).with_name('_base.py')))


def get_config():
  c = base['noisy']('cifar10', 'symmetric', 0.2)
  return c
