"""optcore: Rust-accelerated numerical optimization with NumPy/SciPy-style APIs.

Families
--------
optcore.ot
    Entropic optimal transport: :func:`optcore.ot.sinkhorn` (log-domain, ε-scaling, scaling).
optcore.fixed_point
    Fixed points of nonexpansive maps: :func:`optcore.fixed_point.halpern` (Halpern,
    restarted Halpern, Krasnosel'skii–Mann, Picard; infeasibility detection) and native
    operators in :mod:`optcore.fixed_point.operators`.
optcore.bilevel
    Bilevel optimisation: :func:`optcore.bilevel.minimize` (F2SA, penalty, AID, ITD, SOBA,
    BO-REP) on Python oracles or native problems (:mod:`optcore.bilevel.problems`), and
    :func:`optcore.bilevel.hypergradient`.
optcore.monotone
    Finite-sum monotone inclusions (matrix games, quadratic min-max, Python callables) by
    variance-reduced Halpern, Halpern, EAG and EG (:func:`optcore.monotone.solve`).
optcore.linprog
    Linear programs with :func:`scipy.optimize.linprog`'s call, by restarted reflected Halpern
    PDHG.
optcore.zo
    Zeroth-order optimisation: :func:`optcore.zo.minimize` (two-point Gaussian/sphere and
    coordinate estimators, ZO-signSGD, ZO-AdaMM, perturbed ZO, consensus-based optimisation),
    :func:`optcore.zo.rank_minimize` (ZO-RankSGD), ask/tell :class:`optcore.zo.Optimizer`,
    native batched test functions in :mod:`optcore.zo.functions`.

Every solver returns an :class:`OptimizeResult` (SciPy's, with ``x``, ``fun``, ``success``,
``status``, ``message``, ``nit``), warns :class:`ConvergenceWarning` when it stops short of
its tolerance, and raises ``ValueError``/``TypeError`` with a message naming the argument on
bad input. ``python -m optcore`` runs a short tour; :func:`show_versions` prints what a bug
report needs.
"""

from . import _core, bilevel, exceptions, fixed_point, monotone, ot, zo
from ._linprog import linprog
from ._result import OptimizeResult, OTResult
from ._versions import show_versions
from .exceptions import ConvergenceWarning, NumericalError, OptcoreWarning

__version__: str = _core.__version__

__all__ = [
    "ot",
    "fixed_point",
    "monotone",
    "bilevel",
    "linprog",
    "zo",
    "exceptions",
    "OptimizeResult",
    "OTResult",
    "OptcoreWarning",
    "ConvergenceWarning",
    "NumericalError",
    "show_versions",
    "__version__",
]
