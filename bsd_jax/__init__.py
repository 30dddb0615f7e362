"""bsd_jax: Bayesian Self-Distillation (BSD) and self-distillation baselines in JAX/Flax."""
__version__ = '0.1.0'
