"""Zeroth-order (derivative-free) optimisation with a Rust core and batched evaluation.

>>> import numpy as np
>>> from optcore import zo
>>> res = zo.minimize(zo.functions.sphere, np.full(10, 3.0), method="gaussian", rng=0, f_target=1e-8)
>>> bool(res.success), res.fun <= 1e-8
(True, True)
>>> res = zo.minimize(lambda X: (X ** 2).sum(1), np.ones(4), method="cbo", vectorized=True, rng=0, warn=False)
>>> res.nfev, bool(res.fun < 0.1)      # CBO: a global method, not a precise one
(8000, True)

Methods (``method=``; options in :data:`METHODS`):

``"gaussian"``, ``"sphere"``
    Two-point estimators with ``q`` Gaussian / uniform-sphere directions per step, forward
    (``1 + q`` evaluations) or central (``1 + 2q``) differences, then a gradient step.
``"cge"``
    Coordinate-wise finite differences (all ``d`` coordinates, or DeepZero's random subsets of
    ``n_coords``).
``"signsgd"``, ``"adamm"``
    ZO-signSGD and ZO-AdaMM on the sphere estimator.
``"perturbed"``
    Central two-point sphere estimator plus an isotropic perturbation (saddle escape).
``"cbo"``
    Consensus-based optimisation (isotropic or anisotropic noise, log-sum-exp consensus,
    ``variant="hopping"`` for consensus hopping).
``"rank"``
    ZO-RankSGD from values (:func:`minimize`) or from a ranking oracle (:func:`rank_minimize`).
"""

from __future__ import annotations

from . import functions
from ._ask_tell import Optimizer, gradient
from ._config import METHODS
from ._minimize import ZOResult, minimize
from ._rank import rank_minimize, ranking_oracle

__all__ = [
    "minimize",
    "rank_minimize",
    "gradient",
    "Optimizer",
    "ZOResult",
    "ranking_oracle",
    "functions",
    "METHODS",
]
