"""CUDA kernel sources and their compilation.

The ``kernels/*.cu`` files are embedded in the extension at build time
(:func:`optcore._core.kernel_source`), so an installed wheel always has them. Setting the
environment variable ``OPTCORE_KERNEL_DIR`` to a folder reads the sources from there instead,
so kernels can be edited on a GPU machine without rebuilding the wheel.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ... import _core

__all__ = ["kernel_names", "kernel_source", "compile_module"]


def kernel_names() -> list[str]:
    """File names of the available kernel sources."""
    override = os.environ.get("OPTCORE_KERNEL_DIR")
    if override:
        return sorted(p.name for p in Path(override).glob("*.cu"))
    return list(_core.kernel_names())


def kernel_source(name: str) -> str:
    """Source of kernel file ``name`` (e.g. ``"ot_sinkhorn.cu"``), with a ``#line`` directive
    so that compiler messages point at the file."""
    override = os.environ.get("OPTCORE_KERNEL_DIR")
    if override:
        path = Path(override) / name
        if not path.is_file():
            raise KeyError(f"OPTCORE_KERNEL_DIR={override!r} has no kernel file {name!r}")
        return f'#line 1 "{path}"\n' + path.read_text()
    return f'#line 1 "kernels/{name}"\n' + _core.kernel_source(name)


@functools.cache
def compile_module(name: str, name_expressions: tuple[str, ...] = ()):
    """``cupy.RawModule`` for kernel file ``name`` with the given template instantiations
    (e.g. ``("sk_finalize<double>",)``); cached per file and instantiation set."""
    import cupy  # noqa: PLC0415  (lazy: CuPy is optional)

    return cupy.RawModule(code=kernel_source(name), options=("-std=c++17",), name_expressions=list(name_expressions))
