"""Small tfds datasets prepared offline by tfds's own builders (cifar10_n, cifar100_n, cifar10_h,
cifar10_1, the ImageNet shift sets), as `bsd_jax.prepare NAME` prepares the real ones: only the
downloads are replaced, by files laid out as the real archives are, holding a few random images
with known labels. Each function returns the data_dir and what the builder was given."""
import io
import os
from unittest import mock

import numpy as np
from PIL import Image

CIFAR10_NAMES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship',
                 'truck')


def _prepare(name, data_dir, downloads, manual_dir=None):
  """tfds.builder(name).download_and_prepare() (array_record) with every download and
  download_and_extract answered by `downloads(url)`, a local path."""
  import tensorflow_datasets as tfds
  dm = tfds.download.DownloadManager

  def fetch(self, urls):
    del self
    return type(urls)(downloads(u) for u in urls) if isinstance(urls, (list, tuple)) else (
        {k: downloads(u) for k, u in urls.items()} if isinstance(urls, dict) else downloads(urls))

  with mock.patch.object(dm, 'download_and_extract', fetch), mock.patch.object(dm, 'download',
                                                                                fetch):
    builder = tfds.builder(name, data_dir=data_dir, file_format='array_record')
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=None if manual_dir is None else str(manual_dir)))
  return builder


def _cifar_binary(path, labels, images):
  """A CIFAR binary batch file: per record its label bytes, then the image as 3 x 32 x 32."""
  with open(path, 'wb') as f:
    for label, image in zip(labels, images):
      f.write(np.asarray(label, np.uint8).tobytes())
      f.write(np.ascontiguousarray(image.transpose(2, 0, 1)).tobytes())


def _cifar10_archive(root, rng, per_batch, num_test):
  """root/cifar-10-batches-bin as the CIFAR-10 binary release lays it out, with per_batch
  images in each of its 5 training batches; (train labels, train images, test labels, test
  images) in record order."""
  folder = os.path.join(root, 'cifar-10-batches-bin')
  os.makedirs(folder)
  n = 5 * per_batch
  train_labels = rng.permutation(np.arange(n) % 10)  # every class, as evenly as n allows
  test_labels = rng.permutation(np.arange(num_test) % 10)
  train_images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
  test_images = rng.integers(0, 256, (num_test, 32, 32, 3), dtype=np.uint8)
  for b in range(5):
    part = slice(b * per_batch, (b + 1) * per_batch)
    _cifar_binary(os.path.join(folder, f'data_batch_{b + 1}.bin'), train_labels[part, None],
                  train_images[part])
  _cifar_binary(os.path.join(folder, 'test_batch.bin'), test_labels[:, None], test_images)
  with open(os.path.join(folder, 'batches.meta.txt'), 'w') as f:
    f.write('\n'.join(CIFAR10_NAMES) + '\n')
  return train_labels, train_images, test_labels, test_images


CIFAR10N_FIELDS = ('aggre_label', 'worse_label', 'random_label1', 'random_label2',
                   'random_label3')


def cifar10_n(tmp, per_batch=6, num_test=10, seed=0):
  """tfds cifar10_n: (data_dir, {'label': clean train labels, each field: its crowd labels},
  test labels). The annotation files hold the crowd labels in a shuffled order, as the
  release's do (image_order_c10.npy maps them back); each field differs from the clean labels
  on a known set of samples."""
  rng = np.random.default_rng(seed)
  download, manual = os.path.join(tmp, 'download'), os.path.join(tmp, 'manual')
  os.makedirs(manual)
  train_labels, _, test_labels, _ = _cifar10_archive(download, rng, per_batch, num_test)
  n = train_labels.size
  labels = {'label': train_labels}
  for i, field in enumerate(CIFAR10N_FIELDS):  # field i flips the samples j with j % 5 <= i
    flip = np.arange(n) % 5 <= i
    labels[field] = np.where(flip, (train_labels + 1 + i) % 10, train_labels)
  order = rng.permutation(n)  # annotation row r is image order[r]
  rows = np.stack([train_labels[order]] + [labels[f][order] for f in CIFAR10N_FIELDS], 1)
  np.savetxt(os.path.join(manual, 'CIFAR-10_human_annotations.csv'), rows, fmt='%d',
             delimiter=',', header='clean_label,' + ','.join(CIFAR10N_FIELDS), comments='')
  np.save(os.path.join(manual, 'image_order_c10.npy'), order)
  side = np.zeros((-(-n // 10), 7))
  np.savetxt(os.path.join(manual, 'side_info_cifar10N.csv'), side, fmt='%g', delimiter=',',
             header='a,b,c,d,e,f,g', comments='')
  data_dir = os.path.join(tmp, 'tfds')
  _prepare('cifar10_n', data_dir, lambda url: download, manual)
  return data_dir, labels, test_labels


def cifar10_h(tmp, test_images, test_labels, people, seed=0):
  """tfds cifar10_h whose test split holds `test_images` (uint8 [n, 32, 32, 3]) and
  `test_labels`, image i labelled by people with the classes people[i] (a list); returns its
  data_dir. The raw annotation file lists one row per (image, person), shuffled, as the release's
  cifar10h-raw.csv does (a few attention-check rows with index -99999 among them)."""
  rng = np.random.default_rng(seed)
  download = os.path.join(tmp, 'download')
  _cifar10_archive(download, rng, 2, 0)  # the training batches: 2 images each
  folder = os.path.join(download, 'cifar-10-batches-bin')
  _cifar_binary(os.path.join(folder, 'test_batch.bin'), np.asarray(test_labels)[:, None],
                test_images)
  rows = [(i, c) for i, chosen in enumerate(people) for c in chosen] + [(-99999, 0)] * 3
  rows = [rows[j] for j in rng.permutation(len(rows))]
  annotations = os.path.join(tmp, 'annotations')
  os.makedirs(annotations)
  with open(os.path.join(annotations, 'cifar10h-raw.csv'), 'w') as f:
    f.write('annotator_id,trial_index,chosen_label,reaction_time,cifar10_test_test_idx\n')
    for trial, (index, chosen) in enumerate(rows):
      f.write(f'{trial % 7},{trial},{chosen},{1000.0 + trial},{index}\n')
  data_dir = os.path.join(tmp, 'tfds')
  _prepare('cifar10_h', data_dir,
           lambda url: annotations if url.endswith('cifar10h-raw.zip') else download)
  return data_dir


def cifar10_1(tmp, images, labels, version='v6'):
  """tfds cifar10_1/<version> holding `images` (uint8 [n, 32, 32, 3]) and `labels`; its
  data_dir."""
  paths = {'data': os.path.join(tmp, 'images.npy'), 'labels': os.path.join(tmp, 'labels.npy')}
  np.save(paths['data'], np.asarray(images, np.uint8))
  np.save(paths['labels'], np.asarray(labels, np.int64))
  data_dir = os.path.join(tmp, 'tfds')
  _prepare(f'cifar10_1/{version}', data_dir,
           lambda url: paths['data'] if '_data.npy' in url else paths['labels'])
  return data_dir


def imagenet_wnids():
  """imagenet2012's 1,000 class folders (wnids) in label order, as tfds names them."""
  from tensorflow_datasets.datasets.imagenet2012 import imagenet_common
  with open(imagenet_common.label_names_file()) as f:
    return f.read().split()


def _jpeg(pixels):
  buf = io.BytesIO()
  Image.fromarray(pixels).save(buf, 'JPEG', quality=95)
  return buf.getvalue()


def imagenet_shift_sets(tmp, labels, seed=0):
  """tfds imagenet_v2 (matched-frequency), imagenet_a, imagenet_r and imagenet_sketch, each
  holding one random JPEG of a random size per entry of `labels` (imagenet2012 class indices),
  written in the folder layout of its release; (data_dir, {set: (sorted file names, the JPEG
  bytes of each, its label)}), the file names as the set's file_name feature holds them."""
  import zipfile
  rng = np.random.default_rng(seed)
  wnids = imagenet_wnids()
  data_dir, made = os.path.join(tmp, 'tfds'), {}
  layouts = {'imagenet_v2/matched-frequency': 'imagenetv2-matched-frequency-format-val',
             'imagenet_a': 'imagenet-a', 'imagenet_r': 'imagenet-r', 'imagenet_sketch': 'sketch'}
  for name, top in layouts.items():
    root = os.path.join(tmp, name.replace('/', '_'))
    files = {}
    for i, label in enumerate(labels):
      h, w = rng.integers(24, 64, 2)
      folder = str(label) if name.startswith('imagenet_v2') else wnids[label]
      prefix = 'sketch_' if name == 'imagenet_sketch' else ''
      files[f'{folder}/{prefix}{i}.JPEG'] = (_jpeg(rng.integers(0, 256, (h, w, 3), np.uint8)),
                                             int(label))
    if name == 'imagenet_sketch':  # one zip, read by tfds's iter_archive
      archive = root + '.zip'
      with zipfile.ZipFile(archive, 'w') as z:
        for path, (payload, _) in files.items():
          z.writestr(f'{top}/{path}', payload)
      _prepare(name, data_dir, lambda url, archive=archive: archive)
    else:
      for path, (payload, _) in files.items():
        os.makedirs(os.path.join(root, top, os.path.dirname(path)), exist_ok=True)
        with open(os.path.join(root, top, path), 'wb') as f:
          f.write(payload)
      _prepare(name, data_dir, lambda url, root=root: root)
    made[name.split('/')[0]] = files
  return data_dir, made


def imagenet_c(tmp, num_images, names, severities, seed=0):
  """tfds imagenet2012_corrupted/<name>_<severity> for each name and severity, made by its
  builder from a validation archive of `num_images` random JPEGs laid out as imagenet2012's
  (labels: the first of the official validation labels); its data_dir. The corruption itself
  (OpenCV, ImageMagick, scikit-image, none installed here) is replaced by a brightness shift of
  10 x severity; the builder's own decoding, central crop and 224 x 224 resize stay."""
  import sys
  import tarfile
  import types

  from tensorflow_datasets.datasets.imagenet2012_corrupted import (
      imagenet2012_corrupted_dataset_builder as corrupted)
  rng = np.random.default_rng(seed)
  manual = os.path.join(tmp, 'manual')
  os.makedirs(manual)
  with tarfile.open(os.path.join(manual, 'ILSVRC2012_img_val.tar'), 'w') as tar:
    for i in range(num_images):
      h, w = rng.integers(40, 300, 2)
      payload = _jpeg(rng.integers(0, 256, (h, w, 3), np.uint8))
      info = tarfile.TarInfo(f'ILSVRC2012_val_{i + 1:08d}.JPEG')
      info.size = len(payload)
      tar.addfile(info, io.BytesIO(payload))

  def shifted(self, x):
    return np.clip(x + 10.0 * self.builder_config.severity, 0, 255).astype(np.uint8)

  data_dir = os.path.join(tmp, 'tfds')
  fake_cv2 = types.SimpleNamespace(setRNGSeed=lambda seed: None)
  with mock.patch.dict(sys.modules, {'cv2': fake_cv2}), mock.patch.object(
      corrupted.Builder, '_get_corrupted_example', shifted):
    for name in names:
      for severity in severities:
        _prepare(f'imagenet2012_corrupted/{name}_{severity}', data_dir, lambda url: url,
                 manual)
  return data_dir
