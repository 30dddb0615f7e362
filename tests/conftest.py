"""Every test runs on the CPU with 8 fake devices, so sharding code paths are real."""
import atexit
import os
import shutil
import sys
import tempfile

import jax

jax.config.update('jax_platforms', 'cpu')
jax.config.update('jax_num_cpu_devices', 8)

# Many tests compile the same smoke-model programs, in this process and in the CLI subprocesses
# they start: one persistent XLA cache for the whole session compiles each program once. The
# process that starts the session makes it; pytest-xdist's workers (setup.cfg) inherit its path
# and share it, and only its maker removes it.
_CACHE = os.environ.get('BSD_JAX_TEST_XLA_CACHE')
if _CACHE is None:
  _CACHE = tempfile.mkdtemp(prefix='bsd_jax_test_xla_cache_')
  os.environ['BSD_JAX_TEST_XLA_CACHE'] = _CACHE
  atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
for key, value in (('jax_compilation_cache_dir', _CACHE),
                   ('jax_persistent_cache_min_compile_time_secs', 0),
                   ('jax_persistent_cache_min_entry_size_bytes', 0)):
  jax.config.update(key, value)
  os.environ[key.upper()] = str(value)

# The programs the tests start (the CLI, bench scripts, grain workers) turn deprecations into
# errors too, like setup.cfg's filterwarnings do here: a DeprecationWarning or FutureWarning
# fails the run that raised it, but for the third-party ones listed (each with why).
os.environ['PYTHONWARNINGS'] = ','.join([
    'error::DeprecationWarning', 'error::FutureWarning',
    # ml_collections loads config files with importlib's load_module() (config_flags)
    'ignore:the load_module() method is deprecated:DeprecationWarning'])

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
