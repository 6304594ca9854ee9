"""The shared input validation (``optcore._validation``): named errors for huge integers,
strings where numbers belong, byte-swapped arrays and absurd thread counts (issue 17 item 11)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import optcore
from optcore import _validation as v


@pytest.mark.parametrize("fn", [v.positive_scalar, v.nonnegative_scalar])
def test_int_beyond_float_range_is_a_named_value_error(fn):
    with pytest.raises(ValueError, match="`tol`.*too large"):
        fn(10**400, "tol")
    assert fn(2**64, "tol") == float(2**64)


@pytest.mark.parametrize("fn", [v.positive_scalar, v.nonnegative_scalar])
@pytest.mark.parametrize("value", ["1e-6", "abc", b"1", None, [1.0]])
def test_non_numbers_are_a_named_type_error(fn, value):
    with pytest.raises(TypeError, match="`tol`"):
        fn(value, "tol")


@pytest.mark.parametrize("value", [2**63, 2**64, np.uint64(2**64 - 1), 10**400])
def test_int_beyond_the_cores_range_is_named_or_clamped(value):
    with pytest.raises(ValueError, match="`n`"):
        v.positive_int(value, "n")
    assert v.positive_int(value, "batch", clamp=True) == v.INT_MAX
    assert v.positive_int(value, "options['check_every']") == v.INT_MAX
    assert v.positive_int(value, "maxiter", maximum=2**62, clamp=True) == 2**62
    assert v.positive_int(2**63 - 1, "n") == 2**63 - 1
    assert v.positive_int(value, "maxiter") == v.INT_MAX  # "no limit" counts clamp by default
    with pytest.raises(ValueError, match="`maxiter`"):
        v.positive_int(value, "maxiter", clamp=False)


def test_huge_error_messages_stay_short():
    with pytest.raises(ValueError) as info:
        v.positive_int(10**400, "n")
    assert len(str(info.value)) < 200 and "1e400" in str(info.value)


@pytest.mark.parametrize("workers", [2**64, 10**30, 20_000, 10**400])
def test_absurd_workers_are_a_named_value_error(workers):
    with pytest.raises(ValueError, match="`workers`"):
        v.normalize_workers(workers)


def test_workers_cap_leaves_room_above_the_cores():
    cap = max(256, 32 * (os.cpu_count() or 1))
    assert v.normalize_workers(cap) == cap
    assert v.normalize_workers(16) == 16 and v.normalize_workers(np.int64(3)) == 3
    assert v.normalize_workers(None) is None and v.normalize_workers(-1) is None
    with pytest.raises(ValueError, match="`workers`"):
        v.normalize_workers(cap + 1)
    with pytest.raises(TypeError, match="`workers`"):
        v.normalize_workers("2")


def test_byte_swapped_arrays_become_native():
    swapped = np.arange(3.0, dtype=np.float32).astype(">f4" if np.little_endian else "<f4")
    out = v.as_float_array(swapped, "a")
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, [0.0, 1.0, 2.0])
    assert v.working_dtype(out) == np.float32


def test_entry_points_name_huge_integers():
    """The reproducers of the fuzz suite, through the public entry points."""
    a, b = np.full(3, 1 / 3), np.full(3, 1 / 3)
    with pytest.raises(ValueError, match="`workers`"):
        optcore.ot.sinkhorn(a, b, np.eye(3), reg=1.0, workers=20_000, warn=False)
    with pytest.raises(ValueError, match="`workers`"):
        optcore.fixed_point.halpern(lambda x: 0.5 * x, np.ones(3), workers=2**64, warn=False)
    q = optcore.monotone.QuadraticMinMax(np.eye(2), np.ones((2, 2)))
    with pytest.raises(ValueError, match="`tol`"):
        optcore.monotone.solve(q, tol=10**400, warn=False)
    with pytest.raises(ValueError, match="`workers`"):
        optcore.monotone.solve(q, workers=2**64, warn=False)
    # a time limit too large for a float means no limit, as time_limit=inf does
    assert optcore.linprog([1.0], bounds=[(0, 1)], time_limit=10**400).status == 0
    # maxiter means "no limit" when huge: clamped, and the run ends at its tolerance
    res = optcore.fixed_point.halpern(lambda x: 0.5 * x, np.ones(3), tol=1e-3, maxiter=10**400, warn=False)
    assert res.success
