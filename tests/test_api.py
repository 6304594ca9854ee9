"""Package-level API: result objects, the exception hierarchy, the version, and the CUDA
kernel sources embedded in the extension (compiled with NVRTC when it is installed)."""

from __future__ import annotations

import ctypes
import importlib.metadata
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize

import optcore
from optcore import _core

KERNEL_DIR = Path(__file__).resolve().parents[1] / "kernels"


# ------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------


def test_optimize_result_is_scipy_result_with_dict_and_attribute_access():
    """OptimizeResult subclasses SciPy's: a dict whose keys are also attributes."""
    assert issubclass(optcore.OptimizeResult, scipy.optimize.OptimizeResult)
    assert issubclass(optcore.OTResult, optcore.OptimizeResult)
    res = optcore.OptimizeResult(x=np.arange(3), fun=1.5, success=True, status=0, message="ok", nit=4)
    assert isinstance(res, dict)
    assert res["fun"] == res.fun == 1.5
    res.extra = "set as attribute"
    assert res["extra"] == "set as attribute"
    res["other"] = 7
    assert res.other == 7
    assert sorted(res) == ["extra", "fun", "message", "nit", "other", "status", "success", "x"]
    with pytest.raises(AttributeError):
        _ = res.missing


def test_solver_returns_ot_result():
    """sinkhorn returns an OTResult whose attributes and keys agree."""
    res = optcore.ot.sinkhorn([0.5, 0.5], [0.5, 0.5], [[0.0, 1.0], [1.0, 0.0]], 0.5)
    assert type(res) is optcore.OTResult
    assert isinstance(res, scipy.optimize.OptimizeResult)
    for key in ("x", "fun", "success", "status", "message", "nit", "plan", "f", "g", "cost", "marginal_error"):
        assert res[key] is getattr(res, key)
    assert res.x is res.plan


# ------------------------------------------------------------------------------------------
# Exceptions and warnings
# ------------------------------------------------------------------------------------------


def test_exception_hierarchy():
    """ConvergenceWarning <- OptcoreWarning <- UserWarning; NumericalError <- ArithmeticError."""
    assert issubclass(optcore.ConvergenceWarning, optcore.OptcoreWarning)
    assert issubclass(optcore.OptcoreWarning, UserWarning)
    assert issubclass(optcore.NumericalError, ArithmeticError)
    assert not issubclass(optcore.NumericalError, Warning)
    assert optcore.ConvergenceWarning is optcore.exceptions.ConvergenceWarning
    assert optcore.OptcoreWarning is optcore.exceptions.OptcoreWarning
    assert optcore.NumericalError is optcore.exceptions.NumericalError


def test_convergence_warning_caught_as_user_warning():
    """A UserWarning filter catches optcore's ConvergenceWarning."""
    with pytest.warns(UserWarning):
        optcore.ot.sinkhorn(None, None, np.random.default_rng(0).random((10, 12)), 0.01, maxiter=2)


# ------------------------------------------------------------------------------------------
# Version
# ------------------------------------------------------------------------------------------


def test_version():
    """__version__ is a version string equal to the installed distribution's."""
    assert isinstance(optcore.__version__, str)
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)*", optcore.__version__)
    assert optcore.__version__ == importlib.metadata.version("optcore")


# ------------------------------------------------------------------------------------------
# Embedded CUDA kernels
# ------------------------------------------------------------------------------------------


def kernel_files() -> list[str]:
    return sorted(p.name for p in KERNEL_DIR.glob("*.cu"))


def test_kernel_dir_found():
    """The repository's kernels/ folder exists and holds the Sinkhorn kernels."""
    assert KERNEL_DIR.is_dir()
    assert "ot_sinkhorn.cu" in kernel_files()


def test_kernel_names_match_files():
    """kernel_names() is the sorted list of kernels/*.cu file names."""
    assert list(_core.kernel_names()) == kernel_files()


@pytest.mark.parametrize("name", kernel_files())
def test_kernel_source_is_file_content(name):
    """kernel_source(name) returns exactly the file's content."""
    assert _core.kernel_source(name) == (KERNEL_DIR / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["missing.cu", "ot_sinkhorn", "", "../kernels/ot_sinkhorn.cu"])
def test_kernel_source_unknown_name(name):
    """An unknown kernel name raises KeyError."""
    with pytest.raises(KeyError):
        _core.kernel_source(name)


ANY_KERNEL = re.compile(r"__global__\s+void\s+(\w+)\s*\(")


def test_every_embedded_kernel_is_used():
    """Every __global__ function of every embedded kernel file is instantiated by the GPU
    driver (optcore.ot._gpu.launch.KERNEL_EXPRESSIONS), and every instantiation names a kernel
    of its file: no dead kernels, no launches of kernels that do not exist."""
    from optcore.ot._gpu.launch import KERNEL_EXPRESSIONS

    assert sorted(KERNEL_EXPRESSIONS) == list(_core.kernel_names())
    for name, exprs in KERNEL_EXPRESSIONS.items():
        defined = set(ANY_KERNEL.findall(_core.kernel_source(name)))
        used = {e.split("<")[0] for e in exprs}
        assert defined == used, (name, defined ^ used)


class NVRTC:
    """Minimal ctypes binding of the NVRTC calls needed to compile a program to PTX."""

    def __init__(self, path: Path):
        lib = ctypes.CDLL(str(path))
        self.lib = lib
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        lib.nvrtcGetErrorString.argtypes = [ctypes.c_int]
        lib.nvrtcCreateProgram.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(ctypes.c_char_p),
        ]
        lib.nvrtcAddNameExpression.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nvrtcCompileProgram.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
        lib.nvrtcGetProgramLogSize.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        lib.nvrtcGetProgramLog.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nvrtcGetPTXSize.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        lib.nvrtcGetPTX.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nvrtcGetLoweredName.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
        lib.nvrtcDestroyProgram.argtypes = [ctypes.POINTER(ctypes.c_void_p)]

    def check(self, code: int, what: str) -> None:
        if code != 0:
            raise AssertionError(f"{what} failed: {self.lib.nvrtcGetErrorString(code).decode()}")

    def compile(self, source: str, name: str, name_expressions: list[str], options: list[str]):
        """Returns (result code, log, ptx, {name expression: lowered name})."""
        lib = self.lib
        prog = ctypes.c_void_p()
        self.check(
            lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None),
            "nvrtcCreateProgram",
        )
        try:
            for expr in name_expressions:
                self.check(lib.nvrtcAddNameExpression(prog, expr.encode()), f"nvrtcAddNameExpression({expr})")
            opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
            result = lib.nvrtcCompileProgram(prog, len(options), opts)
            size = ctypes.c_size_t()
            self.check(lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size)), "nvrtcGetProgramLogSize")
            buf = ctypes.create_string_buffer(size.value)
            self.check(lib.nvrtcGetProgramLog(prog, buf), "nvrtcGetProgramLog")
            log = buf.value.decode(errors="replace")
            if result != 0:
                return result, log, "", {}
            self.check(lib.nvrtcGetPTXSize(prog, ctypes.byref(size)), "nvrtcGetPTXSize")
            buf = ctypes.create_string_buffer(size.value)
            self.check(lib.nvrtcGetPTX(prog, buf), "nvrtcGetPTX")
            ptx = buf.value.decode(errors="replace")
            lowered = {}
            for expr in name_expressions:
                out = ctypes.c_char_p()
                code = lib.nvrtcGetLoweredName(prog, expr.encode(), ctypes.byref(out))
                self.check(code, f"nvrtcGetLoweredName({expr})")
                lowered[expr] = out.value.decode()
            return result, log, ptx, lowered
        finally:
            lib.nvrtcDestroyProgram(ctypes.byref(prog))


@pytest.fixture(scope="module")
def nvrtc() -> NVRTC:
    """NVRTC from the nvidia-cuda-nvrtc-cu12 wheel; skips when it is not installed."""
    try:
        import nvidia.cuda_nvrtc  # noqa: PLC0415
    except ImportError:
        pytest.skip("NVRTC is not installed (pip install nvidia-cuda-nvrtc-cu12)")
    candidates = [Path(p) / "lib" / "libnvrtc.so.12" for p in nvidia.cuda_nvrtc.__path__]
    found = [p for p in candidates if p.is_file()]
    if not found:
        pytest.skip(f"nvidia.cuda_nvrtc has no lib/libnvrtc.so.12 (looked in {candidates})")
    try:
        return NVRTC(found[0])
    except OSError as exc:
        pytest.skip(f"libnvrtc could not be loaded: {exc}")


NVRTC_OPTIONS = ["--gpu-architecture=compute_90", "-std=c++17"]


@pytest.mark.parametrize("name", list(_core.kernel_names()))
def test_embedded_kernel_compiles_with_nvrtc(name, nvrtc):
    """Every embedded kernel file compiles to PTX with every instantiation the driver uses,
    and each instantiation is an entry point of the PTX."""
    from optcore.ot._gpu.launch import KERNEL_EXPRESSIONS

    source = _core.kernel_source(name)
    expressions = list(KERNEL_EXPRESSIONS[name])
    result, log, ptx, lowered = nvrtc.compile(source, name, expressions, NVRTC_OPTIONS)
    assert result == 0, f"NVRTC failed to compile {name}:\n{log}"
    assert ptx.strip(), f"empty PTX for {name}:\n{log}"
    assert ".version" in ptx and ".target sm_90" in ptx
    for expr in expressions:
        assert f".entry {lowered[expr]}(" in ptx, (expr, lowered[expr])


def test_nvrtc_reports_errors(nvrtc):
    """The NVRTC harness itself fails on broken code (so a passing compile means something)."""
    result, log, ptx, _ = nvrtc.compile("__global__ void k() { undefined_symbol(); }", "broken.cu", [], NVRTC_OPTIONS)
    assert result != 0
    assert "undefined_symbol" in log
