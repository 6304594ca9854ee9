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

Memory (a per-point ``fun``, without an executor or with ``transport="seeds"``; ``x`` the
iterate in its dtype): the directions come from a counter-based generator keyed by ``(seed,
iteration, direction, index)``, so a point is generated chunk by chunk of coordinates straight
into the array handed to ``fun``, and the step regenerates the ``q`` directions chunk by chunk,
accumulating that chunk of the estimate in float64 and applying it (bit-identical to holding
the whole estimate). No direction and no estimate is held as a d-vector, whatever ``q``:

- ``"gaussian"``, ``"sphere"``, ``"signsgd"``, ``"perturbed"`` (plain, sign steps): the
  iterate, one older iterate (the *anchor*: the center of the batch the best point came from)
  and the point handed to ``fun``: 3 copies of ``x``, with the adaptive step (the default) as
  with a fixed ``lr``. The best point is regenerated from the anchor (its direction and step),
  and the adaptive step's previous iterate (a step that increased ``f`` is taken back) from
  the anchor and the steps since, replayed with the same arithmetic, so every result is the
  same bit for bit. Usually the best point's center is the previous iterate and the step back
  is a copy; replaying longer chains (the best point left behind for many steps, e.g. on a
  rugged or noisy objective) costs one generation pass per step, within a budget of a quarter
  pass per iteration; a run beyond it keeps the best point and the previous iterate as
  vectors (4 copies) until the best point improves again. ``"sphere"`` generates each
  direction once more per iteration (its norm), bounded problems once more per point (the
  inside test).
- ``"cge"``, ``momentum`` and ``"adamm"`` with the adaptive step: 3 copies while the best point
  comes from the last batch, else 4 (the best point and the previous iterate as vectors: their
  steps depend on vectors that change, or their estimates are large, so they are not replayed).
- ``momentum``: plus the velocity (float64, 2 copies of float32 ``x``); ``"adamm"``: plus its
  three moment vectors (float64): state the method carries from step to step.
- ``"cge"`` with ``n_coords`` coordinates holds ``O(n_coords)`` scalars per batch (its
  ``n_coords + 1`` values, differences and signs): ``O(d)`` with the default ``n_coords = d``.
- ``"rank"``: plus its estimate, one direction and the step direction (float64): the step
  ``g / |g|`` needs the norm before it is applied.
- ``"cbo"``: its particles; ``vectorized=True`` and an executor with ``transport="points"``:
  the whole batch (``batch × d``).

:attr:`Optimizer.gradient` regenerates the last estimate from its scalars when asked.
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
