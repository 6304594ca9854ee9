"""Shared pytest configuration: Hypothesis profiles, the ``gpu`` marker, dtype fixtures.

Hypothesis profile: ``OPTCORE_HYPOTHESIS_PROFILE`` selects ``deterministic`` (the default, for
CI: derandomized, no example database, no deadline) or ``nondeterministic`` (random search,
more examples; use it locally to hunt for new counterexamples) or ``fuzz`` (random search with
2,000 examples per test: ``tests/test_fuzz.py`` over many more bad and extreme inputs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# --- Hypothesis profiles -------------------------------------------------------------------

settings.register_profile(
    "deterministic",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=100,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "nondeterministic",
    derandomize=False,
    deadline=None,
    max_examples=300,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz",
    derandomize=False,
    deadline=None,
    max_examples=2000,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("OPTCORE_HYPOTHESIS_PROFILE", "deterministic"))


# --- the `gpu` marker -----------------------------------------------------------------------


def _gpu_unavailable_reason() -> str | None:
    """``None`` when CuPy imports and sees at least one CUDA device, else why not."""
    try:
        import cupy  # noqa: PLC0415
    except Exception as exc:  # ImportError, or a broken CUDA install raising at import
        return f"CuPy is not available ({type(exc).__name__}: {exc})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"no CUDA device ({type(exc).__name__}: {exc})"
    if count <= 0:
        return "no CUDA device (getDeviceCount() == 0)"
    return None


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CuPy and a CUDA device (skipped otherwise)")
    config.addinivalue_line("markers", "slow: long-running property tests")


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    reason = _gpu_unavailable_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in gpu_items:
        item.add_marker(skip)


# --- dtypes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerances:
    """Tolerances scaled to a floating dtype.

    solve_tol : the ``tol`` passed to the solver (bound on the L1 marginal error).
    rtol, atol : comparison tolerances for values computed in this dtype.
    eps : machine epsilon of the dtype.
    """

    dtype: np.dtype
    solve_tol: float
    rtol: float
    atol: float
    eps: float


TOLERANCES = {
    np.dtype(np.float64): Tolerances(
        np.dtype(np.float64), solve_tol=1e-8, rtol=1e-9, atol=1e-12, eps=float(np.finfo(np.float64).eps)
    ),
    np.dtype(np.float32): Tolerances(
        np.dtype(np.float32), solve_tol=1e-4, rtol=1e-4, atol=1e-6, eps=float(np.finfo(np.float32).eps)
    ),
}


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request) -> np.dtype:
    """The floating dtype under test (float32 and float64)."""
    return np.dtype(request.param)


@pytest.fixture
def tols(dtype) -> Tolerances:
    """Tolerances for the ``dtype`` fixture's dtype."""
    return TOLERANCES[dtype]
