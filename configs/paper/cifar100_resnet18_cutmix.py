"""Paper experiment cifar100_resnet18_cutmix: resnet18 on cifar100.

Checks: BSD combined with data augmentation strategies: CutMix (alpha 1, every batch) on top of
crop and flip, for BSD and the baselines (PS-KD reports PS-KD + CutMix). Every batch is mixed
(data.mix_prob 1.0; the CutMix paper mixed half of the CIFAR batches: --config.data.mix_prob=0.5).
BSD's rows are updated from a clean evaluation-mode pass over the training set at each epoch end
(bsd.prediction_source = 'eval_pass'), not from its predictions on the mixed images: on the CPU
CIFAR-100 protocol the train-pass update over-softened BSD + CutMix (ECE-15 7.46% against 3.41%
with the clean pass; RESULTS.md, "BSD and CE with and without CutMix"). The train-pass variant
for comparison: --config.bsd.prediction_source=train_pass.

    python -m bsd_jax.sweep --config configs/paper/cifar100_resnet18_cutmix.py \
        --workdir runs/paper/cifar100_resnet18_cutmix --seeds 0,1,2 \
        --methods ce,pskd,bsd \
        --grid data.cutmix_alpha=0,1

Time on one H200: about 5 minutes a run, 89 minutes for the sweep run one after another. ESTIMATED
from FLOPs, not measured: 0.97 GFLOPs forward per image (bench/model_flops.py), a train step ~3
forward passes, 200 epochs of 50,000 images and the test split every 10 epochs, at 10% of the 989
TFLOP/s bf16 peak; BSD's clean pass adds one forward per training image and epoch (about a
third more per BSD run).
Status and the map of claims: docs/paper.md.
"""
import pathlib
import runpy

base = runpy.run_path(str(pathlib.Path(__file__).with_name('_base.py')))


def get_config():
  c = base['cifar']('cifar100', 'resnet18')
  c.data.cutmix_alpha = 1.0
  c.bsd.prediction_source = 'eval_pass'
  return c
