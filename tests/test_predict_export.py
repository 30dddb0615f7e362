"""A trained run used on new images (bsd_jax.predict, bsd_jax/inference.py) and taken elsewhere
(bsd_jax.export, bsd_jax/model_export.py): a test-split image gets the probabilities the evaluation computed for it, with
the temperature the evaluation fitted; the exported file gives the same logits without the
trainer; the PyTorch key layout is the exact inverse of what config.init_from reads."""
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from bsd_jax import inference, model_export, models, saved_run, train
from bsd_jax.data import folder_files
from bsd_jax.pretrained import timm_vit, torch_files, torchvision_resnet
from tests import helpers, photo_folder

CLASSES = ('cat', 'dog', 'fox')
FIXTURES = os.path.join(helpers.REPO, 'tests', 'fixtures', 'pretrained')


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """One epoch on a photo folder of mixed sizes and formats, with a validation split."""
  root = tmp_path_factory.mktemp('photos')
  photo_folder.make(str(root), CLASSES, per_class=10)
  config = helpers.load_config('smoke.py')
  config.data.source, config.data.root, config.data.val_size = 'folder_stream', str(root), 6
  config.data.stream.image_size, config.data.stream.eval_resize = 16, 18
  config.data.stream.worker_count, config.data.stream.worker_threads = 0, 1
  config.batch_size, config.eval_batch_size, config.num_epochs = 8, 8, 1
  workdir = str(tmp_path_factory.mktemp('run'))
  train.train_and_evaluate(config, workdir)
  return root, workdir


def test_a_test_image_gets_the_probabilities_of_the_evaluation(run):
  root, workdir = run
  config, ds, exp, state, _ = saved_run.load_checkpoint(workdir)
  logits, _ = saved_run.checkpoint_run(config, ds, exp).predictions(state, 'test')
  with open(os.path.join(workdir, 'eval', 'metrics.json')) as f:
    t = json.load(f)['temperature']  # what the final evaluation fitted
  classifier = inference.Classifier(workdir)
  assert classifier.temperature == pytest.approx(t, rel=1e-6)
  assert 'fitted on the run' in classifier.describe_temperature()
  files = folder_files.list_files(config.data).paths['test']  # the test split's order
  files = [str(f) for f in files]
  assert inference.image_files([str(root / 'test')]) == sorted(files)
  got_logits, got = classifier.probabilities(np.stack([classifier.view(f) for f in files]))
  np.testing.assert_allclose(got_logits, logits, rtol=1e-5, atol=1e-5)
  want = np.exp(logits / t) / np.exp(logits / t).sum(-1, keepdims=True)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
  assert classifier.class_names == list(CLASSES)


def test_the_command_answers_every_image_and_names_the_bad_one(run, tmp_path):
  root, workdir = run
  (tmp_path / 'new').mkdir()
  photo_folder.bad_image(str(tmp_path / 'new' / 'broken.jpg'), 'truncated')
  (tmp_path / 'new' / 'notes.txt').write_text('not an image')
  proc = helpers.run_cli(['--workdir', workdir, '--top', '2', '--json', str(root / 'test'),
                          str(tmp_path / 'new')], module='bsd_jax.predict')
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 1, out
  records = [json.loads(l) for l in out.splitlines() if l.startswith('{')]
  assert len(records) == 30 and all(len(r['top']) == 2 for r in records)
  assert {c['class'] for r in records for c in r['top']} <= set(CLASSES)
  assert all(r['top'][0]['probability'] >= r['top'][1]['probability'] for r in records)
  assert 'cannot read image' in out and 'broken.jpg' in out and 'Traceback' not in out
  assert 'notes.txt' not in out and "the temperature" in out and 'fitted on the run' in out


@pytest.mark.parametrize('args, message', [
    (['--workdir', 'nowhere', 'x.jpg'], 'x.jpg does not exist'),
    (['x.jpg'], '--workdir is required'),
    (['--workdir', 'nowhere', '--top', '0', 'x.jpg'], '--top must be >= 1')])
def test_bad_input_is_one_line_and_exit_status_2(args, message):
  proc = helpers.run_cli(args, module='bsd_jax.predict')
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 2 and message in out and 'Traceback' not in out


def test_the_exported_model_gives_the_same_logits_without_the_trainer(run, tmp_path):
  from safetensors.numpy import load_file
  root, workdir = run
  out = str(tmp_path / 'exported')
  model_export.export(workdir, out)
  with pytest.raises(Exception, match='exists'):
    model_export.export(workdir, out)
  with open(os.path.join(out, 'model.json')) as f:
    meta = json.load(f)
  flat = load_file(os.path.join(out, 'model.safetensors'))
  tree = {}
  for name, array in flat.items():
    node = tree
    *parents, leaf = name.split('/')
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = jnp.asarray(array)
  model = models.MODELS[meta['model']](meta['num_classes'], jnp.float32,
                                       helpers.load_config('smoke.py').model)
  classifier = inference.Classifier(workdir)
  files = inference.image_files([str(root / 'test')])[:5]
  views = np.stack([classifier.view(f) for f in files])
  assert views.shape[1:] == (meta['input']['height'], meta['input']['width'], 3)
  x = (views / 255.0 - np.asarray(meta['input']['mean'])) / np.asarray(meta['input']['std'])
  logits = model.apply(tree, jnp.asarray(x, jnp.float32), train=False)
  want, _ = classifier.probabilities(views)
  np.testing.assert_allclose(np.asarray(logits), want, rtol=1e-5, atol=1e-5)
  assert meta['class_names'] == list(CLASSES) and meta['temperature'] == classifier.temperature
  assert not os.path.exists(os.path.join(out, 'torch.safetensors'))  # the CNN has no torch twin


@pytest.mark.parametrize('fixture', ['resnet18_narrow', 'resnet50_narrow', 'vit_tiny'])
def test_the_torch_layout_is_the_inverse_of_what_init_from_reads(fixture):
  state = torch_files.read(os.path.join(FIXTURES, f'{fixture}.safetensors'))
  if fixture.startswith('resnet'):
    arrays = torchvision_resnet.to_flax(state, fixture)
    sizes = {'resnet18_narrow': (2, 2, 2, 2), 'resnet50_narrow': (3, 4, 6, 3)}[fixture]
    back = torchvision_resnet.from_flax(arrays, sizes, fixture == 'resnet50_narrow')
  else:
    back = timm_vit.from_flax(timm_vit.to_flax(state, fixture, heads=3))
  assert set(back) == set(state)
  for key in state:
    np.testing.assert_array_equal(back[key], state[key], err_msg=key)


@pytest.mark.torch
@pytest.mark.parametrize('name', ['resnet50_imagenet', 'vit_s16'])
def test_the_exported_torch_layout_loads_strictly_into_torchvision_and_timm(name):
  torch = pytest.importorskip('torch')
  torchvision = pytest.importorskip('torchvision')
  timm = pytest.importorskip('timm')
  from bsd_jax.pretrained import to_torch

  def make():
    if name == 'vit_s16':
      return timm.create_model('vit_small_patch16_224', pretrained=False, num_classes=7)
    return torchvision.models.resnet50(num_classes=7)

  source = make().eval()
  state = {k: v.numpy() for k, v in source.state_dict().items()}
  arrays = (timm_vit.to_flax(state, name, heads=6) if name == 'vit_s16'
            else torchvision_resnet.to_flax(state, name))
  back = make().eval()
  back.load_state_dict({k: torch.from_numpy(v) for k, v in
                        to_torch.convert(name, arrays).items()}, strict=True)
  x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
  with torch.no_grad():
    torch.testing.assert_close(back(x), source(x), rtol=0, atol=0)
