"""Training methods: the registry (METHODS, `register`, `get_method`) over the `Method` record of
method.py.

A method is a factory `config -> Method` (a loss over the step's logits, and what it keeps per
sample) registered with its config section, the checks of that section and which of its keys act
(`Entry`). The config check, the resume check and the sweep's grid read those from here, so
adding a method is: its module (here, or anywhere that calls `register` before the config is
checked, e.g. the config file), its `register` call, and its section in configs/default.py
(docs/design.md, "Extending bsd_jax")."""
import jax.numpy as jnp

from bsd_jax.methods import baselines, bsd
from bsd_jax.methods.method import (Entry, Method, StepInputs,  # noqa: F401
                                    class_mean_targets)

METHODS = {}


def register(name: str, build, *, section=None, check=None, check_classes=None, acts=None):
  """Make `build` (config -> Method) the method config.method = `name` (see `Entry`)."""
  METHODS[name] = Entry(build, section, check, check_classes, acts)


def section_owners(section: str):
  """{name of every method whose hyperparameters are config.`section`} (empty for a section that
  is no method's)."""
  return {name for name, e in METHODS.items() if e.section == section}


for _build, _section, _check in (
    (baselines.ce, None, None),
    (baselines.label_smoothing, 'label_smoothing', baselines.check_label_smoothing),
    (baselines.pskd, 'pskd', baselines.check_pskd),
    (baselines.cskd, 'cskd', baselines.check_cskd),
    (baselines.tfkd_reg, 'tfkd', baselines.check_tfkd),
    (baselines.dlb, 'dlb', baselines.check_dlb),
    (baselines.temporal_ensembling, 'temporal_ensembling',
     baselines.check_temporal_ensembling)):
  register(_build.__name__, _build, section=_section, check=_check)
register('bsd', bsd.bsd, section='bsd', check=bsd.check, check_classes=bsd.check_classes,
         acts=bsd.acts)


def get_method(config) -> Method:
  """The method named by config.method (a valid name: bsd_jax/config_check.py checks it), with
  the default table and carry filled in."""
  method = METHODS[config.method].build(config)
  if method.init_table is None:
    method = method._replace(init_table=lambda labels, k: jnp.zeros((labels.shape[0], 1)))
  if (method.class_targets is None and method.row_targets is not None
      and not method.targets_need_probs):
    row_targets = method.row_targets
    method = method._replace(class_targets=lambda table, labels, valid, num_classes:
                             class_mean_targets(row_targets(table, num_classes, None), labels,
                                                valid, num_classes))
  if method.init_carry is None:
    method = method._replace(init_carry=lambda b, k: jnp.zeros((), jnp.float32))
  return method
