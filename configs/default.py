"""Every config key with its default (CIFAR-100, ResNet-18, BSD). Variants import and edit it.

The returned ConfigDict is locked: assigning a key that does not exist (a typo) is an error.
Durations are in epochs (num_epochs, warmup_epochs, lr_milestones, checkpoint_every_epochs)
except log_every_steps.
"""
from ml_collections import config_dict


def get_config():
  c = config_dict.ConfigDict()
  c.method = 'bsd'                  # bsd, ce, label_smoothing, pskd, cskd, tfkd_reg, dlb,
                                    # temporal_ensembling (bsd_jax/methods/)
  c.model = config_dict.ConfigDict()
  c.model.name = 'resnet18'         # bsd_jax/models/__init__.py MODELS (docs/configuration.md)
  c.model.cnn_widths = (32, 64, 128)  # channels per stage of name='cnn'
  c.compute_dtype = 'float32'       # or 'bfloat16' (params, BN statistics, losses stay float32)
  c.table_dtype = 'float32'         # storage of the per-sample table (BSD alpha, PS-KD, TE):
                                    # or 'bfloat16' (half the memory; refused where it
                                    # cannot follow the update: BSD, docs/design.md)
  c.seed = 0                        # init, data order and augmentation
  c.init_from = config_dict.placeholder(str)  # weights this run starts from: a bsd_jax run
                                    # directory (its model, not its table) or a torchvision
                                    # ResNet / timm ViT .safetensors or .pth file (a head for
                                    # another class count starts afresh; docs/training.md)

  c.num_epochs = 200
  c.batch_size = 128                # global batch, split over all devices
  c.eval_batch_size = 1000
  c.learning_rate = 0.1             # peak learning rate for the global batch
  c.momentum = 0.9
  c.nesterov = True
  c.weight_decay = 5e-4
  c.lr_schedule = 'cosine'          # 'cosine' (to 0 at the end) or 'multistep'
  c.warmup_epochs = 0.0             # linear warm-up from 0, before either schedule
  c.lr_milestones = (100, 150)      # epochs where 'multistep' multiplies the lr ...
  c.lr_decay_factor = 0.1           # ... by this factor
  c.backbone_lr_multiplier = 1.0    # fine-tuning: the learning rate of every parameter but the
                                    # classifier head (and SupCon's projection) is multiplied by
                                    # this (e.g. 0.1: the new head learns faster than the
                                    # pretrained backbone)

  c.log_every_steps = 100           # a progress line (and its record in metrics.jsonl) ...
  c.log_every_seconds = 30.0       # ... and, on the console only, at least this often
  c.steps_per_call = 1              # train steps per jitted call (> 1: less host work per step
                                    # on a GPU; 1 on CPU, where XLA runs a loop of steps 3-8x
                                    # slower; docs/training.md, "Steps per call")
  c.checkpoint_every_epochs = 1
  c.eval_every_epochs = 1           # test-set evaluation; the last epoch is always evaluated
  c.keep_checkpoints = 3
  c.peer_timeout_s = 60.0           # multi-process: a process whose beat is still this long
                                    # (killed, stopped, its host gone; >= 10) ends the job in
                                    # one line, exit 75 (docs/training.md, "What survives
                                    # which fault")

  # Evaluation suites run during training (bsd_jax/evaluation/), each every `every_epochs`
  # epochs and at the end (0 = off), its numbers in metrics.jsonl under split '<suite>'. The
  # options are the evaluate command's flags (docs/evaluation.md); lists are comma-separated.
  c.evals = config_dict.ConfigDict()
  c.evals.ood = config_dict.ConfigDict()
  c.evals.ood.every_epochs = 0
  c.evals.ood.sets = ''             # --ood: e.g. 'mnist:PATH,folder:PATH,npy:PATH'
  c.evals.ood.max_samples = 10_000  # --ood_max_samples
  c.evals.adversarial = config_dict.ConfigDict()
  c.evals.adversarial.every_epochs = 0
  c.evals.adversarial.eps = '1,2,4,8'     # --adv_eps, L-inf radii in 1/255
  c.evals.adversarial.steps = 10          # --adv_steps (PGD)
  c.evals.adversarial.step_size = 0.25    # --adv_step_size, fraction of eps
  c.evals.adversarial.random_start = True  # --adv_random_start
  c.evals.adversarial.samples = 1000      # --adv_samples: the first N test images
  c.evals.corruptions = config_dict.ConfigDict()
  c.evals.corruptions.every_epochs = 0
  c.evals.corruptions.source = config_dict.placeholder(str)  # --corruptions: tfds[:DIR] or npy:DIR
  c.evals.corruptions.names = ('gaussian_noise,shot_noise,impulse_noise,defocus_blur,glass_blur,'
                               'motion_blur,zoom_blur,snow,frost,fog,brightness,contrast,'
                               'elastic_transform,pixelate,jpeg_compression')
  c.evals.corruptions.severities = '1,2,3,4,5'
  c.evals.corruptions.samples = 0   # --corruption_samples: per corruption and severity (0: all)
  c.evals.human = config_dict.ConfigDict()
  c.evals.human.every_epochs = 0
  c.evals.human.source = config_dict.placeholder(str)  # --human_labels: tfds[:DIR] or npy:PATH
  c.evals.shift = config_dict.ConfigDict()
  c.evals.shift.every_epochs = 0
  c.evals.shift.sets = ''           # --shift_sets: e.g. 'cifar10_1' or 'imagenet_v2,imagenet_a'
  c.evals.shift.data_dir = config_dict.placeholder(str)  # --shift_data_dir
  c.evals.shift.samples = 0         # --shift_samples: per set (0: all)

  c.bsd = config_dict.ConfigDict()
  c.bsd.label_weight_end = 0.5      # w: gamma = w ** (1 / num_epochs) unless bsd.gamma is set
  c.bsd.gamma = config_dict.placeholder(float)  # discount in (0, 1]
  c.bsd.c = config_dict.placeholder(float)      # prior strength; default 1 / (1 - gamma)
  c.bsd.eps = 1e-3                  # prior on the other classes, > 0
  c.bsd.temperature = 1.0           # T of the soft-target cross-entropy
  c.bsd.prediction_source = 'train_pass'  # or 'eval_pass' (clean eval-mode pass per epoch)
  c.bsd.top_k = 0                   # > 0: keep each posterior sparse, its k largest classes and
                                    # the rest's total (docs/training.md, "A sparse posterior")
  c.bsd.rest_spread = 'uniform'     # with top_k: the unkept mass spread evenly, or 'prediction':
                                    # by the model's prediction for the sample, 'class': by its
                                    # label's class profile, or 'blend': half each (advised up
                                    # to 1,000 classes)
  c.bsd.top_k_shadow = False        # with top_k: also keep the dense posterior, to measure the
                                    # sparse targets' distance from it (train records shadow_*)

  # Baselines (docs/method.md, "Baselines"), defaults of each method's paper.
  c.label_smoothing = config_dict.ConfigDict({'eps': 0.1})
  c.pskd = config_dict.ConfigDict({'alpha_T': 0.8})
  c.cskd = config_dict.ConfigDict({'temperature': 4.0, 'weight': 1.0})
  c.tfkd = config_dict.ConfigDict({'alpha': 0.1, 'temperature': 20.0, 'correct_prob': 0.99,
                                   'multiplier': 1.0})
  c.dlb = config_dict.ConfigDict({'temperature': 3.0, 'weight': 1.0})
  c.temporal_ensembling = config_dict.ConfigDict({'alpha': 0.6, 'max_weight': 30.0,
                                                  'rampup_epochs': 80})

  # Supervised contrastive loss (Khosla et al. 2020) on a projection head over two augmented
  # views, added to the method's loss with this weight; 0 = off (docs/training.md, "Label noise").
  c.supcon = config_dict.ConfigDict()
  c.supcon.weight = 0.0
  c.supcon.temperature = 0.07
  c.supcon.base_temperature = 0.07
  c.supcon.head_width = 128         # projection MLP: features -> width -> ReLU -> width
  c.supcon.positives = 'labels'     # or 'target_argmax' (BSD only): argmax of the BSD target

  # Label noise on the training set (docs/training.md, "Label noise"; bsd_jax/data/label_noise.py).
  c.label_noise = config_dict.ConfigDict()
  c.label_noise.kind = 'none'       # 'none', 'symmetric', 'asymmetric' or 'human'
  c.label_noise.rate = 0.0          # probability that a label is replaced (synthetic kinds)
  c.label_noise.seed = 0            # fixed across training seeds unless changed
  c.label_noise.clean_val = False   # True: the validation split (data.val_size) keeps clean
                                    # labels (analysis only; by default it is as noisy as train)
  # Asymmetric noise beyond CIFAR-10 on an image folder: a CSV with columns path (its folder
  # names the class) or class, and coarse_label, e.g. the CIFAR-100 PNG folder's labels.csv.gz.
  # tfds cifar100 brings its own coarse labels.
  c.label_noise.superclass_csv = config_dict.placeholder(str)
  # kind 'human': the crowd workers' labels of CIFAR-N, a feature of the tfds training split
  # (config.data.name cifar10_n: aggre_label, worse_label, random_label1..3; cifar100_n:
  # noise_label); config.data.label_key stays the clean label.
  c.label_noise.human_label = config_dict.placeholder(str)

  c.data = config_dict.ConfigDict()
  c.data.source = 'tfds'            # 'tfds', 'folder', 'synthetic' (whole splits in memory and
                                    # on the devices) or 'tfds_stream' (read per step: ImageNet)
                                    # or 'folder_stream' (read per step: photos of any size)
  c.data.name = 'cifar100'          # tfds dataset name
  c.data.tfds_data_dir = config_dict.placeholder(str)  # default: tfds's own (~/tensorflow_datasets)
  c.data.manual_dir = config_dict.placeholder(str)     # archives for tfds to prepare from
                                    # ('tfds' only: 'tfds_stream' never prepares; docs/data.md)
  c.data.download = True            # let tfds download when the dataset is not prepared
  c.data.train_split = 'train'
  c.data.test_split = 'test'
  c.data.image_key = 'image'         # tfds feature names
  c.data.label_key = 'label'        # e.g. 'coarse_label' for CIFAR-100 superclasses
  c.data.root = config_dict.placeholder(str)  # image folder: <root>/{train,test}/<class>/*.png
  c.data.test_fraction = 0.0        # > 0: an image folder without test/ or val/ holds out this
                                    # share of each class of train/ as its test split
  c.data.train_subset_per_class = 0  # > 0: class-balanced subset of the train split
  c.data.subset_seed = 0
  c.data.val_size = 0               # > 0: a class-balanced validation split of this many images,
                                    # held out of the train split before the subset is drawn
                                    # (never trained on); temperature scaling is fitted on it
  c.data.val_seed = 0
  c.data.cutmix_alpha = 0.0         # > 0: CutMix, box area ~ Beta(alpha, alpha) (1.0 in CutMix)
  c.data.mixup_alpha = 0.0          # > 0: Mixup, lambda ~ Beta(alpha, alpha) (bsd_jax/data/mix.py)
  c.data.mix_prob = 1.0             # the chance that a batch is mixed (CutMix or Mixup on)
  c.data.mix_switch_prob = 0.5      # both on: the chance of CutMix rather than Mixup for a batch
  c.data.augment = True             # random crop (pad 4) + horizontal flip; streamed: random-
                                    # resized crop + flip on the host (False: the eval view)
  # Streamed source only (bsd_jax/data/stream_batches.py): image sizes and grain's host workers.
  c.data.stream = config_dict.ConfigDict()
  c.data.stream.image_size = 224    # train crops and eval center crops are size x size
  c.data.stream.eval_resize = 256   # eval: shorter side resized to this, then the center crop
  c.data.stream.worker_count = 0    # grain worker processes per process (0: threads only)
  c.data.stream.worker_threads = 2  # decoding threads in each worker (or in this process)
  c.data.synthetic = config_dict.ConfigDict()
  c.data.synthetic.num_train = 1024
  c.data.synthetic.num_test = 512
  c.data.synthetic.num_classes = 10
  c.data.synthetic.image_size = 32
  c.data.synthetic.seed = 0
  c.lock()
  return c
