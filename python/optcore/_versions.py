"""``optcore.show_versions()``: the facts a bug report needs, in one call."""

from __future__ import annotations

import importlib
import os
import platform
import sys

__all__ = ["show_versions"]


def _version(module: str) -> str | None:
    try:
        mod = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - any failure to import means "not available"
        return None
    return str(getattr(mod, "__version__", "installed"))


def _threads() -> str:
    """The threads ``workers=None`` uses: rayon reads RAYON_NUM_THREADS, else all cores."""
    env = os.environ.get("RAYON_NUM_THREADS")
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = cores
    text = f"{usable} usable of {cores} cores"
    if env:
        text += f" (RAYON_NUM_THREADS={env})"
    return text


def _device() -> str:
    """CuPy and its first device when CuPy imports (importing optcore itself never imports it)."""
    try:
        import cupy
    except Exception:  # noqa: BLE001
        return "CuPy not installed"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count == 0:
            return f"CuPy {cupy.__version__}, no CUDA device"
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        return f"CuPy {cupy.__version__}, {count} device(s), device 0: {name}"
    except Exception as exc:  # noqa: BLE001
        return f"CuPy {cupy.__version__}, no usable device ({type(exc).__name__})"


def versions() -> dict[str, str]:
    """The facts :func:`show_versions` prints, as a dict."""
    from . import __version__, _core

    info = {
        "optcore": __version__,
        "python": sys.version.replace("\n", " "),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "simd": _core.simd_level(),
        "threads": _threads(),
    }
    for name in ("numpy", "scipy", "ot", "matplotlib"):
        info["pot" if name == "ot" else name] = _version(name) or "not installed"
    info["gpu"] = _device()
    return info


def show_versions() -> None:
    """Print the versions of optcore and its dependencies, the CPU kernels and threads, and the
    GPU seen through CuPy: paste this into a bug report.

    Returns
    -------
    None
        The report goes to standard output, one ``name: value`` line each.

    Examples
    --------
    >>> import optcore
    >>> optcore.show_versions()  # doctest: +ELLIPSIS
    optcore: ...
    python: ...
    simd: ...
    """
    for key, value in versions().items():
        print(f"{key}: {value}")
