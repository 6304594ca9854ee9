"""The NumPy/CuPy dispatch point.

A solver asks :func:`array_backend` which library its inputs belong to and picks its
implementation: ``"numpy"`` goes to the Rust core, ``"cupy"`` to :mod:`optcore.ot._gpu`.
CuPy is never imported here, and data never moves between host and device silently.
"""

from __future__ import annotations

__all__ = ["array_backend", "is_cupy_array"]


def is_cupy_array(x) -> bool:
    """True for CuPy arrays, without importing CuPy."""
    mod = type(x).__module__
    return mod == "cupy" or mod.startswith("cupy.") or mod.startswith("cupy._")


def array_backend(*arrays, names: tuple[str, ...] | None = None) -> str:
    """``"numpy"`` or ``"cupy"`` for the given inputs (``None`` entries ignored).

    Raises ``TypeError`` when CuPy and non-CuPy arrays are mixed.
    """
    kinds = {}
    for i, x in enumerate(arrays):
        if x is None:
            continue
        kinds[names[i] if names else f"argument {i}"] = "cupy" if is_cupy_array(x) else "numpy"
    found = set(kinds.values())
    if len(found) > 1:
        detail = ", ".join(f"{k}: {v}" for k, v in kinds.items())
        raise TypeError(
            f"inputs mix CuPy and NumPy arrays ({detail}); move them to one device first "
            "(cupy.asarray(...) or cupy.asnumpy(...))."
        )
    return found.pop() if found else "numpy"
