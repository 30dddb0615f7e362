"""Paper experiment cifar100n_preact_resnet18: preact_resnet18 on cifar100_n with noisy labels.

Checks: "... and label noise" on the label noise of people: CIFAR-100N (Wei et al. 2022) gives
each CIFAR-100 training image one crowd worker's fine label (`noise_label`, 40.2% wrong). BSD +
SupCon against CE, BSD alone and PS-KD, tested on CIFAR-100's clean test split:

    python -m bsd_jax.sweep --config configs/paper/cifar100n_preact_resnet18.py \
        --workdir runs/paper/cifar100n_preact_resnet18 --seeds 0,1,2 \
        --methods ce,pskd,bsd --grid supcon.weight=0,0.5

Data: python -m bsd_jax.prepare cifar100_n --data_dir D --manual_dir M where there is internet,
M holding the three files of github.com/UCSC-REAL/cifar-10-100n that tfds's instructions name
(docs/training.md, "Label noise"), then --config.data.tfds_data_dir=D.
Time on one H200: about 10 minutes a run (with SupCon, as configured), 3 hours for the sweep
run one after another. ESTIMATED from FLOPs, not measured: as
configs/paper/cifar100_noise_preact_resnet18.py (the same model, data size and epochs).
Status and the map of claims: docs/paper.md.
"""
import pathlib
import runpy

base = runpy.run_path(str(pathlib.Path(__file__).with_name('_base.py')))


def get_config():
  return base['crowd']('cifar100_n', 'noise_label')
