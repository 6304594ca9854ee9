"""The GPU path: CuPy implementations and the CUDA kernel loader.

Nothing here imports CuPy at module import time; CuPy is imported when a kernel is compiled.
"""

from .kernels import compile_module, kernel_names, kernel_source

__all__ = ["compile_module", "kernel_names", "kernel_source"]
