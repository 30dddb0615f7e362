"""BSD on ImageNet (tfds 'imagenet2012', streamed): ResNet-50, the standard 90-epoch recipe.

The data is downloaded by hand and prepared once (docs/data.md, "ImageNet"):
  python -m bsd_jax.prepare imagenet2012 --manual_dir M --data_dir D
then --config.data.tfds_data_dir=D. The recipe is torchvision's reference ResNet-50 one:
SGD with momentum 0.9 (not Nesterov), learning rate 0.1 x batch_size / 256 (change
learning_rate with batch_size), divided by 10 at epochs 30, 60 and 80, weight decay 1e-4 on
every parameter, random-resized crop 224 + flip, evaluation on the center 224 crop of the
image resized to 256. Where it differs: bf16 compute, BatchNorm statistics over the global
batch (SyncBN), the extra decay at epoch 80 (Goyal et al. 2017; torchvision stops at 60), and
the loss is BSD's (config.method; 'ce' gives the plain baseline).
"""
import pathlib
import runpy

# Loaded by path so that the config works from any working directory.
default = runpy.run_path(str(pathlib.Path(__file__).with_name('default.py')))


def get_config():
  c = default['get_config']()
  c.model.name = 'resnet50_imagenet'
  c.compute_dtype = 'bfloat16'
  c.num_epochs = 90
  c.batch_size = 256
  c.eval_batch_size = 1024
  c.learning_rate = 0.1 * c.batch_size / 256
  c.nesterov = False
  c.weight_decay = 1e-4
  c.lr_schedule = 'multistep'
  c.lr_milestones = (30, 60, 80)
  c.lr_decay_factor = 0.1
  c.log_every_steps = 100
  c.data.source = 'tfds_stream'
  c.data.name = 'imagenet2012'
  c.data.train_split = 'train'
  c.data.test_split = 'validation'
  c.data.stream.image_size = 224
  c.data.stream.eval_resize = 256
  c.data.stream.worker_count = 16   # per process; up to the host's CPU cores when input-bound
  c.data.stream.worker_threads = 2
  return c
