"""The human suite (people's label distributions, CIFAR-10H), the shift suite (CIFAR-10.1,
ImageNet-V2/-A/-R/-Sketch) and ImageNet-C through the corruptions suite, on tfds datasets
prepared by tfds's own builders from files laid out as their releases are
(tests/tfds_fixtures.py): the measures against a direct computation, the 200-class scoring of
ImageNet-A/-R against the sliced logits, both new suites during training, on an old run
directory, and their errors."""
import io
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from bsd_jax import data, evaluate, inference, metrics, saved_run, train
from bsd_jax.errors import UserError
from bsd_jax.evaluation import common, human, imagenet_classes, shift_sets
from bsd_jax.rundir.run_config import load_run_config
from bsd_jax.studies import report
from tests import helpers, tfds_fixtures

OLD_RUN = os.path.join(helpers.REPO, 'tests', 'fixtures', 'run_9c28292')


def direct_agreement(h, p):
  """The human suite's measures, image by image in plain Python."""
  ce, kl, top1, second = [], [], [], []
  for hi, pi in zip(np.asarray(h, float).tolist(), np.asarray(p, float).tolist()):
    pi = [max(v, float(human.TINY)) for v in pi]
    ce.append(-sum(a * np.log(b) for a, b in zip(hi, pi)))
    kl.append(sum(a * np.log(a / b) for a, b in zip(hi, pi) if a > 0))
    shares = sorted(hi, reverse=True)  # people's shares, repeats kept
    by_p = sorted(range(len(pi)), key=lambda k: (-pi[k], k))
    top1.append(hi[by_p[0]] == shares[0])  # one of people's most chosen classes
    if shares[1] > 0:
      second.append(hi[by_p[1]] == shares[1])
  return {'cross_entropy': np.mean(ce), 'kl': np.mean(kl), 'top1_agreement': np.mean(top1),
          'second_choice_agreement': np.mean(second), 'second_choice_images': len(second)}


def _assert_measures(got, expected):
  for key, value in expected.items():
    assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_agreement_equals_the_direct_computation():
  rng = np.random.default_rng(0)
  votes = rng.integers(0, 5, (200, 10)) * (rng.random((200, 10)) < 0.3)
  votes[np.arange(200), rng.integers(0, 10, 200)] += 3  # ties and zeros among people's choices
  h = votes / votes.sum(1, keepdims=True)
  p = rng.dirichlet(np.full(10, 0.3), 200)
  p[:5] = 0.0
  p[:5, 0] = 1.0  # probabilities of exactly 0 (the log's floor)
  _assert_measures(human.agreement(h, p), direct_agreement(h, p))
  assert human.agreement(h, h)['kl'] == pytest.approx(0.0, abs=1e-12)
  assert human.entropy(np.eye(10)) == 0.0
  # The classes' order changes nothing, ties among people included.
  perm = rng.permutation(10)
  assert human.agreement(h[:, perm], p[:, perm]) == human.agreement(h, p)
  tie = np.array([[0.9, 0.05, 0.05, 0, 0, 0, 0, 0, 0, 0]])
  model = np.array([[0.8, 0.01, 0.19, 0, 0, 0, 0, 0, 0, 0]])
  assert human.agreement(tie, model)['second_choice_agreement'] == 1.0
  assert human.agreement(np.full((1, 10), 0.1), model)['top1_agreement'] == 1.0


def _people(labels, rng):
  """Each image labelled by 10-30 people: mostly its label, some a neighbouring class."""
  out = []
  for label in labels:
    n = int(rng.integers(10, 30))
    other = rng.random(n) < rng.uniform(0, 0.5)
    out.append(np.where(other, (label + rng.integers(1, 3, n)) % 10, label).tolist())
  return out


def _distributions(people):
  return np.stack([np.bincount(c, minlength=10) / len(c) for c in people])


@pytest.fixture(scope='module')
def sets(tmp_path_factory):
  """The smoke run's test split as cifar10_h (people's labels made up) and as cifar10_1, and the
  same people's distributions as a .npy in the test split's order."""
  tmp = tmp_path_factory.mktemp('sets')
  ds = data.load(helpers.load_config('smoke.py'))
  people = _people(ds.test_labels, np.random.default_rng(1))
  npy = str(tmp / 'people.npy')
  np.save(npy, _distributions(people))
  os.makedirs(tmp / 'h')
  os.makedirs(tmp / 'c1')
  return {'human_tfds': tfds_fixtures.cifar10_h(str(tmp / 'h'), ds.test_images, ds.test_labels,
                                               people),
          'human_npy': npy, 'people': _distributions(people),
          'shift': tfds_fixtures.cifar10_1(str(tmp / 'c1'), ds.test_images, ds.test_labels)}


@pytest.fixture(scope='module')
def run(sets, tmp_path_factory):
  """The smoke config with a validation split, 2 epochs, both suites scheduled every epoch."""
  workdir = str(tmp_path_factory.mktemp('run'))
  config = helpers.override(helpers.load_config('smoke.py'), {
      'num_epochs': 2, 'data.val_size': 128,
      'evals.human.every_epochs': 1, 'evals.human.source': f'npy:{sets["human_npy"]}',
      'evals.shift.every_epochs': 1, 'evals.shift.sets': 'cifar10_1',
      'evals.shift.data_dir': sets['shift']})
  train.train_and_evaluate(config, workdir)
  return workdir


def _test_outputs(workdir):
  config, ds, exp, state, _ = saved_run.load_checkpoint(workdir)
  return saved_run.checkpoint_run(config, ds, exp).predictions(state, 'test')


def test_human_suite_from_tfds_and_npy_equals_the_direct_computation(run, sets):
  logits, probs = _test_outputs(run)
  from_npy = evaluate.evaluate(run, 'human', source=f'npy:{sets["human_npy"]}')
  with open(os.path.join(run, 'eval', 'human.json')) as f:
    assert json.load(f) == json.loads(json.dumps(from_npy))
  expected = direct_agreement(sets['people'], probs)
  _assert_measures(from_npy['metrics'], expected)
  assert from_npy['human_entropy'] == pytest.approx(human.entropy(sets['people']), rel=1e-12)
  # Scaled by the temperature the test suite fits on the same validation split.
  t = evaluate.evaluate(run)['temperature']
  assert from_npy['temperature'] == pytest.approx(t, rel=1e-6)
  _assert_measures(from_npy['scaled_metrics'],
                   direct_agreement(sets['people'], metrics.softmax(logits, t)))
  # The report compares the labels' agreement with people (here one label, one seed).
  text = report.build(run)
  assert '## Agreement with people' in text
  assert f'| {from_npy["metrics"]["kl"]:.4f} | {from_npy["scaled_metrics"]["kl"]:.4f} |' in text
  assert os.path.getsize(os.path.join(run, 'report_figures', 'human.png')) > 1000
  # cifar10_h: the same images in tfds's own order, the model run on them by the suite.
  from_tfds = evaluate.evaluate(run, 'human', source=f'tfds:{sets["human_tfds"]}')
  assert from_tfds['num_samples'] == len(sets['people'])
  for key in ('metrics', 'scaled_metrics'):
    for measure, value in from_npy[key].items():
      assert from_tfds[key][measure] == pytest.approx(value, rel=1e-5, abs=1e-6), (key, measure)


def test_shift_suite_on_the_test_images_scores_as_the_test_split(run, sets):
  record = evaluate.evaluate(run, 'shift', sets=['cifar10_1'], data_dir=sets['shift'])
  got, clean = record['results']['cifar10_1'], record['clean']
  assert got['num_samples'] == 512 and got['classes_scored'] == 10
  for key in ('accuracy', 'nll', 'ece'):
    assert got[key] == pytest.approx(clean[key], rel=1e-5, abs=1e-6), key
  assert clean['accuracy'] == pytest.approx(evaluate.evaluate(run)['metrics']['accuracy'])
  part = evaluate.evaluate(run, 'shift', sets=['cifar10_1'], data_dir=sets['shift'], samples=100)
  assert part['results']['cifar10_1']['num_samples'] == 100


def test_both_suites_ran_during_training(run, sets):
  for split, key in (('human', 'kl'), ('shift', 'cifar10_1/accuracy')):
    records = helpers.read_metrics(run, split)
    assert [r['epoch'] for r in records] == [1, 2], split
    assert np.isfinite(records[-1][key])
  # The last epoch's records are the final model's numbers.
  last = helpers.read_metrics(run, 'human')[-1]
  assert last['kl'] == pytest.approx(direct_agreement(sets['people'], _test_outputs(run)[1])['kl'],
                                     rel=1e-5)


@pytest.mark.parametrize('suite, args, name', [
    ('human', ['--human_labels', 'npy:{inputs}/people.npy'], 'human'),
    ('shift', ['--shift_sets', 'cifar10_1', '--shift_data_dir', '{shift}'], 'shift'),
])
def test_an_old_run_directory_answers_the_new_suites(tmp_path, sets, suite, args, name):
  workdir = str(tmp_path / 'run')
  shutil.copytree(OLD_RUN, workdir)
  ds = data.load(load_run_config(workdir))
  people = _people(ds.test_labels, np.random.default_rng(2))
  np.save(tmp_path / 'people.npy', _distributions(people))
  shift_dir = tfds_fixtures.cifar10_1(str(tmp_path), ds.test_images, ds.test_labels)
  proc = helpers.run_cli(['--workdir', workdir, '--suite', suite] + [
      a.format(inputs=tmp_path, shift=shift_dir) for a in args], module='bsd_jax.evaluate')
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out
  with open(os.path.join(workdir, 'eval', f'{name}.json')) as f:
    record = json.load(f)
  assert record['step'] == 8  # the fixture's one checkpoint
  if suite == 'human':
    _assert_measures(record['metrics'], direct_agreement(_distributions(people),
                                                         _test_outputs(workdir)[1]))
  else:
    for key in ('accuracy', 'nll', 'ece'):
      assert record['results']['cifar10_1'][key] == pytest.approx(record['clean'][key], rel=1e-5)


def test_subset_scoring_equals_the_softmax_of_the_sliced_logits():
  rng = np.random.default_rng(0)
  for classes in (imagenet_classes.IMAGENET_A_CLASSES, imagenet_classes.IMAGENET_R_CLASSES):
    assert len(classes) == 200 and list(classes) == sorted(set(classes))
    logits = rng.normal(0, 3, (64, 1000))
    labels = rng.choice(classes, 64)
    probs, positions = shift_sets.on_subset(metrics.softmax(logits), labels, classes)
    sliced = logits[:, list(classes)]
    expected = np.exp(sliced - sliced.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)
    assert [classes[i] for i in positions] == labels.tolist()
  with pytest.raises(UserError, match='a label outside the scored classes: 0'):
    shift_sets.on_subset(np.full((1, 1000), 1e-3), np.array([0]),
                         imagenet_classes.IMAGENET_A_CLASSES)


IMAGENET_LABELS = [6, 11, 13, 22, 23, 6, 11]  # in both ImageNet-A's and ImageNet-R's classes


def _central(image, size):
  """The shorter side resized to `size` (bilinear), then the central size x size crop."""
  w, h = image.size
  image = image.resize((size if w <= h else int(size * w / h),
                        size if h <= w else int(size * h / w)), Image.BILINEAR)
  left, top = round((image.width - size) / 2), round((image.height - size) / 2)
  return np.asarray(image.crop((left, top, left + size, top + size)))


@pytest.fixture(scope='module')
def imagenet_run(tmp_path_factory):
  """A 1000-class smoke run (1 epoch) and the four ImageNet shift sets."""
  workdir = str(tmp_path_factory.mktemp('run1000'))
  config = helpers.override(helpers.load_config('smoke.py'), {
      'num_epochs': 1, 'data.synthetic.num_classes': 1000, 'data.synthetic.num_train': 256,
      'data.synthetic.num_test': 64})
  train.train_and_evaluate(config, workdir)
  data_dir, files = tfds_fixtures.imagenet_shift_sets(str(tmp_path_factory.mktemp('imagenet')),
                                                      IMAGENET_LABELS)
  return workdir, data_dir, files


def test_imagenet_sets_are_scored_as_their_authors_score_them(imagenet_run):
  workdir, data_dir, files = imagenet_run
  record = evaluate.evaluate(workdir, 'shift', data_dir=data_dir, sets=[
      'imagenet_v2', 'imagenet_a', 'imagenet_r', 'imagenet_sketch'])
  classifier = inference.Classifier(workdir)  # no validation split: unscaled probabilities
  for name, subset in (('imagenet_v2', None), ('imagenet_a', imagenet_classes.IMAGENET_A_CLASSES),
                       ('imagenet_r', imagenet_classes.IMAGENET_R_CLASSES),
                       ('imagenet_sketch', None)):
    # The 32 x 32 model's view: the shorter side to 32 (bilinear), then the central crop.
    views = np.stack([_central(Image.open(io.BytesIO(payload)).convert('RGB'), 32)
                      for payload, _ in files[name].values()])
    labels = np.array([label for _, label in files[name].values()])
    logits = classifier.probabilities(views)[0].astype(np.float64)
    if subset is not None:
      logits = logits[:, list(subset)]
      labels = np.searchsorted(subset, labels)
    expected = common.summary(metrics.softmax(logits), labels)
    got = record['results'][name]
    assert got['num_samples'] == len(IMAGENET_LABELS)
    assert got['classes_scored'] == (1000 if subset is None else 200)
    for key in ('accuracy', 'nll', 'ece'):
      assert got[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-6), (name, key)


def test_imagenet_c_through_the_corruptions_suite(imagenet_run, tmp_path):
  """ImageNet-C's 224 x 224 images, resized to this model's 32 x 32, scored per severity."""
  import tensorflow_datasets as tfds
  from PIL import Image
  workdir = imagenet_run[0]
  data_dir = tfds_fixtures.imagenet_c(str(tmp_path), 6, ['gaussian_noise'], [1, 5])
  record = evaluate.evaluate(workdir, 'corruptions', source=f'imagenet_c:{data_dir}',
                             names=['gaussian_noise'], severities=[1, 5])
  assert record['corrupted'] == f'tfds:imagenet2012_corrupted in {data_dir}'
  classifier = inference.Classifier(workdir)
  for severity in (1, 5):
    source = tfds.builder(f'imagenet2012_corrupted/gaussian_noise_{severity}',
                          data_dir=data_dir).as_data_source('validation')
    rows = [source[i] for i in range(len(source))]
    assert rows[0]['image'].shape == (224, 224, 3)
    views = np.stack([np.asarray(Image.fromarray(r['image']).resize((32, 32), Image.BILINEAR))
                      for r in rows])
    probs = classifier.probabilities(views)[1]
    expected = common.summary(probs, np.array([r['label'] for r in rows]))
    got = record['results']['gaussian_noise'][str(severity)]
    for key in ('accuracy', 'nll', 'ece'):
      assert got[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-6), (severity, key)
  with pytest.raises(UserError, match=r'--corruptions imagenet_c:.*: imagenet2012_corrupted/fog_3 '
                     r'is not prepared in .*python -m bsd_jax\.prepare imagenet2012_corrupted/'):
    evaluate.evaluate(workdir, 'corruptions', source=f'imagenet_c:{data_dir}', names=['fog'],
                      severities=[3])


@pytest.mark.parametrize('options, match', [
    ({'sets': []}, r'--suite shift needs --shift_sets'),
    ({'sets': ['imagenet_o']}, r"--shift_sets: unknown set 'imagenet_o' \(known: cifar10_1, "),
    ({'sets': ['cifar10_1'], 'data_dir': 'cifar10_1'},
     r'--shift_sets cifar10_1: labelled with 10 classes, the model has 1000'),
    ({'sets': ['imagenet_v2/bogus']}, r"--shift_sets imagenet_v2/bogus: tfds imagenet_v2 has no "
                                      r"config 'bogus' \(it has matched-frequency, threshold-0\.7, "
                                      r'topimages\)'),
    ({'sets': ['imagenet_v2'], 'samples': -1}, r'--shift_samples must be >= 0 \(0: all\), got -1'),
    ({'sets': ['imagenet_v2/threshold-0.7']},
     r'--shift_sets imagenet_v2/threshold-0.7: imagenet_v2/threshold-0.7 is not prepared in .*'
     r'python -m bsd_jax.prepare imagenet_v2/threshold-0.7 --data_dir D'),
])
def test_bad_shift_sets_are_one_line_errors(imagenet_run, sets, options, match):
  workdir, data_dir, _ = imagenet_run
  options = dict({'data_dir': data_dir}, **options)
  if options['data_dir'] == 'cifar10_1':
    options['data_dir'] = sets['shift']
  before = sorted(os.listdir(os.path.join(workdir, 'eval')))
  with pytest.raises(UserError, match=match) as info:
    evaluate.evaluate(workdir, 'shift', **options)
  assert '\n' not in str(info.value)
  assert sorted(os.listdir(os.path.join(workdir, 'eval'))) == before


@pytest.mark.parametrize('make, match', [
    (None, r'--suite human needs --human_labels tfds\[:DATA_DIR\] or npy:PATH'),
    (lambda p: np.save(p, np.full((7, 10), 0.1)),
     r'people\.npy: expected one distribution over the 10 classes per test image, \[512, 10\], '
     r'got \[7, 10\]'),
    (lambda p: np.save(p, np.full((512, 10), 0.2)),
     r'people\.npy: row 0 is not a distribution \(entries >= 0 summing to 1 within 0\.001; sum 2'),
    (lambda p: np.save(p, np.zeros((512, 10), np.int64)),
     r'people\.npy: expected float \[N, K\] distributions, got int64'),
    (lambda p: np.save(p, np.where(np.arange(10) == 3, np.nan, 0.1)[None].repeat(512, 0)),
     r'people\.npy: row 0 is not a distribution'),
    (lambda p: np.save(p, np.eye(10)[np.arange(512) % 10]),
     r"people\.npy: people's most likely class is the test label on only .*% of the images: are "
     r"the rows in the order of the run's test split\?"),
    ('tfds', r'--human_labels tfds:.*: cifar10_h is not prepared in .*python -m bsd_jax\.prepare '
             r'cifar10_h'),
])
def test_bad_human_labels_are_one_line_errors(run, tmp_path, make, match):
  path = str(tmp_path / 'people.npy')
  if callable(make):
    make(path)
  source = None if make is None else (f'tfds:{tmp_path}' if make == 'tfds' else f'npy:{path}')
  before = sorted(os.listdir(os.path.join(run, 'eval')))
  with pytest.raises(UserError, match=match) as info:
    evaluate.evaluate(run, 'human', source=source)
  assert '\n' not in str(info.value)
  assert sorted(os.listdir(os.path.join(run, 'eval'))) == before
