"""The calibration study of RESULTS.md (does BSD's ECE advantage survive temperature scaling of
CE?): the all-methods CPU table (configs/cifar100_cpu_table.py: 20 training images per class,
CNN 48/96/192, 40 epochs) with a class-balanced validation split of 5,000 images held out of the
rest of the training split; every test evaluation also reports the metrics after temperature
scaling fitted on it. About 7 minutes a run on 2 CPU cores, two at a time:

    mkdir -p data && tar xzf cifar100-png.tar.gz -C data
    python -m bsd_jax.sweep --config configs/cifar100_calibration_cpu.py \
        --workdir runs/calibration --methods ce,label_smoothing,pskd,bsd --seeds 0,1,2 \
        --bsd_label_weights 0.5 --parallel 2
    python -m bsd_jax.report runs/calibration
"""
import pathlib
import runpy

table = runpy.run_path(str(pathlib.Path(__file__).with_name('cifar100_cpu_table.py')))


def get_config():
  c = table['get_config']()
  c.data.val_size = 5000
  return c
