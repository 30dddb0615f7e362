"""The PyTorch equivalent of bsd_jax's train step, for bench/step_time.py --torch.

The same work per step as the JAX step: gather the batch from device-resident uint8 images,
random crop (zero pad 4) + flip on the device, normalise, forward and backward of the same
CIFAR ResNet-18 (or small CNN) under bf16 autocast when compute_dtype is bfloat16, channels_last,
the model under torch.compile; CE on the labels or BSD's soft-target cross-entropy on the rows
of a per-sample [N, K] table, the rows updated at visit (gamma * alpha + p); SGD with Nesterov
momentum and weight decay. Requires torch (not a dependency of bsd_jax).
"""
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
  def __init__(self, cin, planes, stride):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.shortcut = nn.Sequential()
    if stride != 1 or cin != planes:
      self.shortcut = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                    nn.BatchNorm2d(planes))

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class CifarResNet18(nn.Module):
  """bsd_jax.models.resnet.cifar_resnet18: 3x3 stem, no max-pool, 64..512 planes."""

  def __init__(self, num_classes):
    super().__init__()
    self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64),
                              nn.ReLU())
    layers, cin = [], 64
    for stage in range(4):
      for b in range(2):
        planes = 64 * 2 ** stage
        layers.append(BasicBlock(cin, planes, 2 if stage > 0 and b == 0 else 1))
        cin = planes
    self.layers = nn.Sequential(*layers)
    self.fc = nn.Linear(512, num_classes)

  def forward(self, x):
    x = self.layers(self.stem(x))
    return self.fc(x.mean((2, 3)).float())


class SmallCNN(nn.Module):
  """bsd_jax.models.cnn.SmallCNN: conv-BN-ReLU-maxpool stages, average pool, dense."""

  def __init__(self, num_classes, widths):
    super().__init__()
    stages, cin = [], 3
    for w in widths:
      stages += [nn.Conv2d(cin, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                 nn.MaxPool2d(2)]
      cin = w
    self.stages = nn.Sequential(*stages)
    self.fc = nn.Linear(cin, num_classes)

  def forward(self, x):
    return self.fc(self.stages(x).mean((2, 3)).float())


def _crop_and_flip(x, generator, pad=4):
  """Per-image random translation (zero padded) and left-right flip of NCHW x."""
  b, _, h, w = x.shape
  dev = x.device
  oy = torch.randint(0, 2 * pad + 1, (b,), device=dev, generator=generator)
  ox = torch.randint(0, 2 * pad + 1, (b,), device=dev, generator=generator)
  flip = torch.rand(b, device=dev, generator=generator) < 0.5
  padded = F.pad(x, (pad, pad, pad, pad))
  rows = (oy[:, None] + torch.arange(h, device=dev))[:, None, :, None].expand(b, x.shape[1], h,
                                                                              w + 2 * pad)
  x = torch.gather(padded, 2, rows)
  cols = ox[:, None] + torch.arange(w, device=dev)
  cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :].expand(
      b, x.shape[1], h, w)
  return torch.gather(x, 3, cols)


class TorchRunner:
  """Same interface as step_time.JaxRunner: run(n) -> seconds for n train steps."""

  def __init__(self, config, ds):
    from bsd_jax.data import order
    from bsd_jax.methods import bsd
    self.device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    dev = self.device
    k = ds.num_classes
    if config.model.name == 'resnet18':
      model = CifarResNet18(k)
    elif config.model.name == 'cnn':
      model = SmallCNN(k, tuple(config.model.cnn_widths))
    else:
      raise ValueError(f'--torch has resnet18 and cnn, not {config.model.name!r}')
    self.model = model.to(dev).to(memory_format=torch.channels_last)
    self.compiled = torch.compile(self.model)
    self.opt = torch.optim.SGD(self.model.parameters(), lr=config.learning_rate,
                               momentum=config.momentum, nesterov=config.nesterov,
                               weight_decay=config.weight_decay)
    self.autocast = config.compute_dtype == 'bfloat16'
    self.images = torch.from_numpy(np.ascontiguousarray(ds.train_images)).to(dev)
    self.labels = torch.from_numpy(ds.train_labels.astype(np.int64)).to(dev)
    mean, std = ds.channel_stats()
    self.mean = torch.tensor(mean, dtype=torch.float32, device=dev).view(1, 3, 1, 1)
    self.std = torch.tensor(std, dtype=torch.float32, device=dev).view(1, 3, 1, 1)
    self.bsd = config.method == 'bsd'
    if self.bsd:
      hp = bsd.hparams(config)
      self.gamma = hp['gamma']
      table_dtype = torch.bfloat16 if config.table_dtype == 'bfloat16' else torch.float32
      self.alpha = torch.full((ds.num_train, k), hp['eps'], dtype=table_dtype, device=dev)
      self.alpha[torch.arange(ds.num_train, device=dev), self.labels] = hp['c']
    elif config.method != 'ce':
      raise ValueError(f'--torch has ce and bsd, not {config.method!r}')
    index, mask = order.epoch_batches(0, 0, ds.num_train, config.batch_size)
    self.batches = [(torch.from_numpy(index[s].astype(np.int64)).to(dev),
                     torch.from_numpy(mask[s].copy()).to(dev)) for s in range(min(16, len(index)))]
    self.generator = torch.Generator(device=dev).manual_seed(0)
    self.done = 0

  def _step(self, idx, mask):
    x = self.images[idx].permute(0, 3, 1, 2).float() / 255.0
    x = (_crop_and_flip(x, self.generator) - self.mean) / self.std
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
      logits = self.compiled(x)
    logp = F.log_softmax(logits.float(), dim=-1)
    if self.bsd:
      rows = self.alpha[idx].float()
      target = rows / rows.sum(-1, keepdim=True)
      per_sample = -(target * logp).sum(-1)
    else:
      per_sample = F.nll_loss(logp, self.labels[idx], reduction='none')
    loss = (per_sample * mask).sum() / mask.sum().clamp(min=1)
    self.opt.zero_grad(set_to_none=True)
    loss.backward()
    self.opt.step()
    if self.bsd:  # update at visit, valid rows only
      with torch.no_grad():
        keep = mask > 0
        new = self.gamma * rows + logp.detach().exp()
        self.alpha[idx[keep]] = new[keep].to(self.alpha.dtype)
    return loss

  def run(self, n):
    self.model.train()
    start = time.perf_counter()
    for _ in range(n):
      idx, mask = self.batches[self.done % len(self.batches)]
      loss = self._step(idx, mask)
      self.done += 1
    loss.item()  # waits for the device
    return time.perf_counter() - start
