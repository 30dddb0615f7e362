"""Paper experiment cifar10n_preact_resnet18: preact_resnet18 on cifar10_n with noisy labels.

Checks: "... and label noise" on the label noise of people rather than of a random draw:
CIFAR-10N (Wei et al. 2022) gives each CIFAR-10 training image the labels of three crowd
workers; `aggre_label` (their majority, 9.0% wrong), `random_label1` (one worker, 17.2%) and
`worse_label` (a wrong one where any was, 40.2%) are the benchmark's standard settings. BSD +
SupCon against CE, BSD alone and PS-KD, tested on CIFAR-10's clean test split:

    python -m bsd_jax.sweep --config configs/paper/cifar10n_preact_resnet18.py \
        --workdir runs/paper/cifar10n_preact_resnet18 --seeds 0,1,2 \
        --methods ce,pskd,bsd \
        --grid label_noise.human_label=aggre_label,random_label1,worse_label \
        --grid supcon.weight=0,0.5

Data: python -m bsd_jax.prepare cifar10_n --data_dir D --manual_dir M where there is internet,
M holding the three files of github.com/UCSC-REAL/cifar-10-100n that tfds's instructions name
(docs/training.md, "Label noise"), then --config.data.tfds_data_dir=D.
Time on one H200: about 10 minutes a run (with SupCon, as configured), 6.6 hours for the sweep
run one after another. ESTIMATED from FLOPs, not measured: as
configs/paper/cifar10_noise_preact_resnet18.py (the same model, data size and epochs).
Status and the map of claims: docs/paper.md.
"""
import pathlib
import runpy

base = runpy.run_path(str(pathlib.Path(__file__).with_name('_base.py')))


def get_config():
  return base['crowd']('cifar10_n', 'worse_label')
