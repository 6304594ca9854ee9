"""The README's Python examples run, and the values they claim are the values they produce.

Every fenced ```python block of README.md is executed, in order, in one namespace (later blocks
use the arrays of earlier ones, as a reader pasting them into one session would); blocks that
need CuPy skip without it. The lines whose trailing comment states a result are checked against
the result: a README edit that changes what the code gives, or a code change that changes what
the README says, fails here.
"""

from __future__ import annotations

import re
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^(?P<indent>[ \t]*)```python\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)


def python_blocks() -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        blocks.append((line, textwrap.dedent(m.group("body"))))
    return blocks


def claim(pattern: str) -> re.Match:
    """The README line matching ``pattern`` (a claim this test checks); fails if it is gone."""
    m = re.search(pattern, README.read_text(encoding="utf-8"), re.M)
    assert m is not None, f"README no longer has the line this test checks: {pattern!r}"
    return m


@pytest.fixture(scope="module")
def namespaces() -> dict[int, dict]:
    """Runs every block once; returns {README line of the block: namespace after it}."""
    ns: dict = {"__name__": "readme"}
    after = {}
    for line, code in python_blocks():
        if re.search(r"^\s*import cupy", code, re.M):
            try:
                import cupy  # noqa: F401

                cupy.cuda.runtime.getDeviceCount()
            except Exception:  # noqa: BLE001 - no CuPy or no device: the GPU block is skipped
                continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(code, f"README.md:{line}", "exec"), ns)  # noqa: S102
        after[line] = dict(ns)
    return after


def test_readme_has_python_examples():
    assert len(python_blocks()) >= 6


def test_every_block_runs(namespaces):
    blocks = python_blocks()
    runnable = [line for line, code in blocks if not re.search(r"^\s*import cupy", code, re.M)]
    assert set(runnable) <= set(namespaces)


def _ns_with(namespaces, name_pattern: str) -> dict:
    for line, code in python_blocks():
        if re.search(name_pattern, code) and line in namespaces:
            return namespaces[line]
    pytest.fail(f"no README block matches {name_pattern!r}")


def test_sns_claim(namespaces):
    """``res.nit, res.n_sinkhorn, res.n_newton, res.marginal_error  # 30 (21 + 9), 2.7e-14``."""
    m = claim(
        r"res\.nit, res\.n_sinkhorn, res\.n_newton, res\.marginal_error\s+#\s*(\d+) \((\d+) \+ (\d+)\), ([0-9.e+-]+)"
    )
    res = _ns_with(namespaces, r'method="sns", tol=1e-10')["res"]
    assert res.success
    assert (res.nit, res.n_sinkhorn, res.n_newton) == tuple(int(g) for g in m.groups()[:3])
    claimed = float(m.group(4))
    assert res.marginal_error <= 1e-10
    assert claimed / 10 <= res.marginal_error <= claimed * 10, (res.marginal_error, claimed)


def test_infeasible_fixed_point_claim(namespaces):
    """``res.status, res.displacement  # 2, the gap vector -2 * ones(d) / sqrt(d)``."""
    m = claim(r"res\.status, res\.displacement\s+#\s*(\d+), the gap vector (-?[0-9.]+) \* ones\(d\) / sqrt\(d\)")
    ns = _ns_with(namespaces, r"DouglasRachford\(ball, far\)")
    res, d = ns["res"], ns["d"]
    assert res.status == int(m.group(1))
    expected = float(m.group(2)) * np.ones(d) / np.sqrt(d)
    assert np.linalg.norm(res.displacement - expected) <= 1e-6 * np.linalg.norm(expected)


def test_ot_first_block_claims(namespaces):
    """The first OT block's plans have the shapes its comments give and meet their tolerances."""
    ns = _ns_with(namespaces, r"warm start from potentials")
    assert ns["res0"].success and ns["res"].success
    claim(r"res\.plan: \(k, n, m\)")
    B = ns["B"]
    assert B.shape == (1000, 5)


def test_bilevel_claim(namespaces):
    """The bilevel block asserts ``np.allclose(res.x, q.optimal_x, atol=1e-6)`` itself (it ran);
    its own-oracle hypergradient has the upper level's shape."""
    ns = _ns_with(namespaces, r"bilevel\.hypergradient\(prob")
    claim(r"assert np\.allclose\(res\.x, q\.optimal_x, atol=1e-6\)")
    assert ns["g"].shape == (2,)
