"""Each method's loss against a value derived by hand (numpy, from docs/method.md, "Baselines")."""
import jax.numpy as jnp
import numpy as np
import pytest

from bsd_jax import methods
from bsd_jax.data import order
from tests import helpers

Z = np.array([[2.0, 0.5, -1.0]])        # logits of one sample, K = 3
Y = np.array([0])
E = np.array([[0.0, 1.5, 0.2]])         # logits of an extra view


def _log_softmax(z):
  z = np.asarray(z, np.float64)
  return z - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)) - z.max(
      -1, keepdims=True)


def _softmax(z):
  return np.exp(_log_softmax(z))


def _kl(teacher_logits, student_logits, t):
  p = _softmax(np.asarray(teacher_logits) / t)
  return float((p * (np.log(p) - _log_softmax(np.asarray(student_logits) / t))).sum())


CE = float(-_log_softmax(Z)[0, 0])


def _config(method, **sections):
  config = helpers.load_config('smoke.py')
  config.method, config.num_epochs = method, 10
  for section, values in sections.items():
    for k, v in values.items():
      config[section][k] = v
  return config


def _loss(config, rows=None, epoch=0, extra=None, extra_mask=1.0, carry=None, logits=Z):
  method = methods.get_method(config)
  if rows is None:
    rows = method.init_table(jnp.asarray(Y), 3)
  inputs = methods.StepInputs(
      logits=jnp.asarray(logits, jnp.float32), labels=jnp.asarray(Y), mask=jnp.ones(1),
      rows=jnp.asarray(rows, jnp.float32), epoch=jnp.asarray(epoch, jnp.int32),
      extra_logits=None if extra is None else jnp.asarray(extra, jnp.float32),
      extra_labels=jnp.asarray(Y), extra_mask=jnp.full(1, extra_mask),
      carry=None if carry is None else jnp.asarray(carry, jnp.float32))
  return float(method.loss(inputs))


def test_ce():
  assert _loss(_config('ce')) == pytest.approx(CE, rel=1e-6)


def test_label_smoothing():
  assert _loss(_config('label_smoothing', label_smoothing={'eps': 0.0})) == pytest.approx(CE)
  target = np.array([0.7 + 0.1, 0.1, 0.1])  # eps = 0.3 spread over all 3 classes
  expected = float(-(target * _log_softmax(Z)[0]).sum())
  assert _loss(_config('label_smoothing', label_smoothing={'eps': 0.3})) == pytest.approx(expected)


def test_pskd_is_one_hot_in_epoch_0_then_mixes_last_epochs_prediction():
  config = _config('pskd')
  assert _loss(config, epoch=0) == pytest.approx(CE, rel=1e-6)
  prev = np.array([[0.2, 0.5, 0.3]])
  a = 0.8 * 5 / 10  # epoch 4 of 10
  target = (1 - a) * np.array([1.0, 0, 0]) + a * prev[0]
  expected = float(-(target * _log_softmax(Z)[0]).sum())
  assert _loss(config, rows=prev, epoch=4) == pytest.approx(expected, rel=1e-6)
  method = methods.get_method(config)
  np.testing.assert_allclose(method.update_rows(jnp.asarray(prev), jnp.ones((1, 3)) / 3, 4),
                             np.ones((1, 3)) / 3)


def test_cskd():
  config = _config('cskd')
  assert _loss(config, extra=Z) == pytest.approx(CE, rel=1e-6)  # identical partner: no KL
  expected = CE + 1.0 * 16 * _kl(E, Z, 4.0)
  assert _loss(config, extra=E) == pytest.approx(expected, rel=1e-5)


def _authors_tfkd_reg(outputs, labels, reg_alpha, reg_temperature, multiplier,
                      correct_prob=0.99):
  """loss_kd_regularization of yuanli2333/Teacher-free-Knowledge-Distillation
  (my_loss_function.py) as torch computes it: F.cross_entropy averages over the batch,
  nn.KLDivLoss() averages target * (log target - input) over all B x K elements, the student's
  log_softmax(outputs) is not divided by T, and the teacher is softmax(teacher_soft / T)."""
  b, k = outputs.shape
  rows = np.arange(b)
  log_p = _log_softmax(outputs)
  loss_ce = -np.mean(log_p[rows, labels])
  teacher_soft = np.full((b, k), (1 - correct_prob) / (k - 1))
  teacher_soft[rows, labels] = correct_prob
  t = _softmax(teacher_soft / reg_temperature)
  loss_soft_regu = np.mean(t * (np.log(t) - log_p)) * multiplier
  return (1 - reg_alpha) * loss_ce + reg_alpha * loss_soft_regu


def _batch_loss(config, logits, labels, **fields):
  method = methods.get_method(config)
  b = logits.shape[0]
  inputs = methods.StepInputs(
      logits=jnp.asarray(logits, jnp.float32), labels=jnp.asarray(labels), mask=jnp.ones(b),
      rows=jnp.zeros((b, 1)), epoch=jnp.asarray(3, jnp.int32),
      **{k: jnp.asarray(v, jnp.float32 if k != 'extra_labels' else jnp.int32)
         for k, v in fields.items()})
  return float(method.loss(inputs))


@pytest.mark.parametrize('alpha,temperature,m', [(0.1, 20.0, 100.0), (0.1, 40.0, 50.0),
                                                 (0.95, 40.0, 1.0)])
def test_tfkd_reg_is_its_authors_loss_on_random_logits(alpha, temperature, m):
  # Their CIFAR-100 settings (ResNet-18, GoogLeNet, MobileNetV2); ours takes m / K per sample.
  rng = np.random.default_rng(3)
  k = 100
  logits = rng.normal(0, 3, (8, k))
  labels = rng.integers(0, k, 8)
  config = _config('tfkd_reg', tfkd={'alpha': alpha, 'temperature': temperature,
                                      'multiplier': m / k})
  assert _batch_loss(config, logits, labels) == pytest.approx(
      _authors_tfkd_reg(logits, labels, alpha, temperature, m), rel=1e-5)


def test_tfkd_reg_does_not_soften_the_student():
  # By hand for one sample: the teacher softened at T = 20, the student's log-probabilities at 1.
  teacher = _softmax(np.array([[0.99, 0.005, 0.005]]) / 20.0)
  kl = float((teacher * (np.log(teacher) - _log_softmax(Z))).sum())
  assert _loss(_config('tfkd_reg')) == pytest.approx(0.9 * CE + 0.1 * kl, rel=1e-5)


def test_dlb():
  config = _config('dlb')
  assert _loss(config, extra=E, extra_mask=0.0, carry=Z) == pytest.approx(CE, rel=1e-6)
  ce_extra = float(-_log_softmax(E)[0, 0])
  carry = np.array([[1.0, 1.0, 0.0]])
  # CE averaged over both halves, the KL over the repeated half only (their 'batchmean').
  expected = (CE + ce_extra) / 2 + 9 * _kl(carry, E, 3.0)
  assert _loss(config, extra=E, carry=carry) == pytest.approx(expected, rel=1e-5)


def test_dlb_is_its_authors_loss_on_random_logits():
  """Meta-knowledge-Lab/DLB, dlb.py: F.cross_entropy(cat(out_pre, out), cat(pre_label, label))
  + alpha T^2 F.kl_div(log_softmax(out_pre / T), softmax(pre_out / T), 'batchmean')."""
  rng = np.random.default_rng(4)
  b, k, t, a = 6, 10, 3.0, 1.0
  out, out_pre, pre_out = (rng.normal(0, 2, (b, k)) for _ in range(3))
  label, pre_label = rng.integers(0, k, b), rng.integers(0, k, b)
  both = np.concatenate([_log_softmax(out_pre), _log_softmax(out)])
  ce = -np.mean(both[np.arange(2 * b), np.concatenate([pre_label, label])])
  teacher = _softmax(pre_out / t)
  kl = np.sum(teacher * (np.log(teacher) - _log_softmax(out_pre / t))) / b
  expected = ce + a * t * t * kl
  config = _config('dlb', dlb={'temperature': t, 'weight': a})
  got = _batch_loss(config, out, label, extra_logits=out_pre, extra_labels=pre_label,
                    extra_mask=np.ones(b), carry=pre_out)
  assert got == pytest.approx(expected, rel=1e-5)


def test_temporal_ensembling():
  config = _config('temporal_ensembling')
  ema = np.array([[0.3, 0.2, 0.1]])  # after 2 epochs of updates with a = 0.6
  assert _loss(config, rows=ema, epoch=0) == pytest.approx(CE, rel=1e-6)
  target = ema[0] / (1 - 0.6 ** 2)
  w = 30 * np.exp(-5 * (1 - 2 / 80) ** 2)
  expected = CE + w * np.mean((_softmax(Z)[0] - target) ** 2)
  assert _loss(config, rows=ema, epoch=2) == pytest.approx(expected, rel=1e-5)
  method = methods.get_method(config)
  p = np.array([[0.5, 0.25, 0.25]])
  np.testing.assert_allclose(method.update_rows(jnp.asarray(ema), jnp.asarray(p), 2),
                             0.6 * ema + 0.4 * p, rtol=1e-6)


def test_bsd_with_gamma_1_and_a_huge_prior_behaves_as_ce():
  config = _config('bsd', bsd={'gamma': 1.0, 'c': 1e6, 'eps': 1e-6})
  method = methods.get_method(config)
  rows = method.init_table(jnp.asarray(Y), 3)
  for epoch in range(5):
    assert _loss(config, rows=rows, epoch=epoch) == pytest.approx(CE, rel=1e-4)
    rows = method.update_rows(rows, jnp.asarray(_softmax(E), jnp.float32), epoch)


@pytest.mark.parametrize('name', sorted(methods.METHODS))
def test_padding_samples_do_not_change_the_loss(name):
  config = _config(name)
  method = methods.get_method(config)
  labels = jnp.array([0, 2])
  rows = method.init_table(labels, 3)
  garbage = np.array([[50.0, -50.0, 3.0]])

  def loss(logits, mask):
    return float(method.loss(methods.StepInputs(
        logits=jnp.asarray(logits, jnp.float32), labels=labels[:len(logits)], mask=mask,
        rows=rows[:len(logits)], epoch=jnp.asarray(3), extra_logits=jnp.asarray(
            np.concatenate([E, garbage])[:len(logits)], jnp.float32),
        extra_labels=labels[:len(logits)], extra_mask=mask,
        carry=jnp.asarray(np.concatenate([Z, garbage])[:len(logits)], jnp.float32))))

  assert loss(np.concatenate([Z, garbage]), jnp.array([1.0, 0.0])) == pytest.approx(
      loss(Z, jnp.array([1.0])), rel=1e-6)


def test_class_partners_share_the_label_and_differ_from_the_sample():
  labels = np.array([0, 1, 0, 2, 1, 0, 1, 1])
  partners = order.ClassPartners(labels)
  index = np.arange(8)
  for seed in range(5):
    p = partners(index, np.random.default_rng(seed))
    np.testing.assert_array_equal(labels[p], labels)
    assert np.all((p != index) | (index == 3))  # sample 3 is alone in class 2
  np.testing.assert_array_equal(partners(index, np.random.default_rng(9)),
                                partners(index, np.random.default_rng(9)))


def test_previous_batch_view_is_the_batch_of_the_step_before():
  n, b = 50, 16  # 4 steps per epoch
  idx0, mask0 = order.batch_for_step(0, 0, n, b)
  extra, extra_mask = order.extra_view('previous_batch', 0, 0, idx0, mask0, n, b)
  assert extra_mask.sum() == 0
  for step in (1, 4, 5):  # inside an epoch and across the epoch boundary
    idx, mask = order.batch_for_step(0, step, n, b)
    extra, extra_mask = order.extra_view('previous_batch', 0, step, idx, mask, n, b)
    prev_idx, prev_mask = order.batch_for_step(0, step - 1, n, b)
    np.testing.assert_array_equal(extra, prev_idx)
    np.testing.assert_array_equal(extra_mask, prev_mask)
