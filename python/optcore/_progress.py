"""Callbacks and progress lines, shared by every solver.

The Rust core calls a *progress function* every ``check_every`` iterations with a dict of the
current state (``nit``, ``error`` and solver-specific entries). :class:`Progress` turns that
into SciPy's ``callback(intermediate_result)`` protocol (``StopIteration`` stops the run with
status 99) and prints one line per check when ``disp=True``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from ._result import OptimizeResult

__all__ = ["Progress"]


class Progress:
    """Progress function handed to the core.

    Parameters
    ----------
    callback : callable or None
        ``callback(intermediate_result)``; raising ``StopIteration`` stops the solver.
    disp : bool
        Print ``iteration  error  elapsed`` lines.
    build : callable
        ``build(state) -> OptimizeResult``: the intermediate result for the callback.
    title : str
        Printed above the progress lines.
    """

    def __init__(self, callback: Callable | None, disp: bool, build: Callable[[dict], OptimizeResult], title: str = ""):
        if callback is not None and not callable(callback):
            raise TypeError(f"`callback` must be callable or None; got {type(callback).__name__}.")
        self.callback = callback
        self.disp = bool(disp)
        self.build = build
        self.title = title
        self.start = time.perf_counter()
        self._header = False

    @property
    def active(self) -> bool:
        return self.callback is not None or self.disp

    def line(self, text: str) -> None:
        print(text, file=sys.stdout, flush=True)

    def __call__(self, state: dict) -> bool:
        if self.disp:
            if not self._header:
                if self.title:
                    self.line(self.title)
                self.line(f"{'iter':>8}  {'error':>12}  {'time (s)':>9}")
                self._header = True
            self.line(f"{state['nit']:>8d}  {state['error']:>12.4e}  {time.perf_counter() - self.start:>9.3f}")
        if self.callback is None:
            return True
        try:
            self.callback(self.build(state))
        except StopIteration:
            return False
        return True

    def finish(self, result: OptimizeResult) -> None:
        if self.disp:
            self.line(f"{result.message} ({result.nit} iterations, {time.perf_counter() - self.start:.3f} s)")
