"""Callbacks and progress lines, shared by every solver.

The Rust core calls a *progress function* every ``check_every`` iterations with a dict of the
current state (``nit``, ``error`` and solver-specific entries). :class:`Progress` turns that
into SciPy's ``callback(intermediate_result)`` protocol (``StopIteration`` stops the run with
status 99) and, when ``disp=True``, prints a header, the first check, then at most one line per
``interval`` seconds, and the last check with the final message: a long run stays readable
however small ``check_every`` is. States that carry the relative primal, dual and gap residuals
(``rel_primal``, ``rel_dual``, ``rel_gap``: the LP) print those three columns as well.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from ._result import OptimizeResult

__all__ = ["Progress"]

# Optional state entries printed as extra columns when the solver reports them.
_EXTRA_COLUMNS = (("rel_primal", "primal"), ("rel_dual", "dual"), ("rel_gap", "gap"))


class Progress:
    """Progress function handed to the core.

    Parameters
    ----------
    callback : callable or None
        ``callback(intermediate_result)``; raising ``StopIteration`` stops the solver.
    disp : bool
        Print ``iteration  error  [primal  dual  gap]  elapsed`` lines, at most one per
        ``interval`` seconds (plus the first and the last).
    build : callable
        ``build(state) -> OptimizeResult``: the intermediate result for the callback.
    title : str
        Printed above the progress lines.
    interval : float
        Least time in seconds between two printed lines (default 1.0).
    """

    def __init__(
        self,
        callback: Callable | None,
        disp: bool,
        build: Callable[[dict], OptimizeResult],
        title: str = "",
        interval: float = 1.0,
    ):
        if callback is not None and not callable(callback):
            raise TypeError(f"`callback` must be callable or None; got {type(callback).__name__}.")
        self.callback = callback
        self.disp = bool(disp)
        self.build = build
        self.title = title
        self.interval = float(interval)
        self.start = time.perf_counter()
        self._header = False
        self._columns: tuple[tuple[str, str], ...] = ()
        self._last_print = -float("inf")
        self._pending: str | None = None

    @property
    def active(self) -> bool:
        return self.callback is not None or self.disp

    def line(self, text: str) -> None:
        print(text, file=sys.stdout, flush=True)

    def _print_header(self, state: dict | None) -> None:
        if state is not None:
            self._columns = tuple(c for c in _EXTRA_COLUMNS if state.get(c[0]) is not None)
        if self.title:
            self.line(self.title)
        extra = "".join(f"  {label:>10}" for _, label in self._columns)
        self.line(f"{'iter':>8}  {'error':>12}{extra}  {'time (s)':>9}")
        self._header = True

    def _format(self, state: dict, now: float) -> str:
        error = state.get("error")
        err = f"{error:>12.4e}" if error is not None else f"{'':>12}"
        extra = "".join(
            f"  {state[key]:>10.3e}" if state.get(key) is not None else f"  {'':>10}" for key, _ in self._columns
        )
        return f"{state['nit']:>8d}  {err}{extra}  {now - self.start:>9.3f}"

    def __call__(self, state: dict) -> bool:
        if self.disp:
            if not self._header:
                self._print_header(state)
            now = time.perf_counter()
            text = self._format(state, now)
            if now - self._last_print >= self.interval:
                self.line(text)
                self._last_print = now
                self._pending = None
            else:
                self._pending = text
        if self.callback is None:
            return True
        try:
            self.callback(self.build(state))
        except StopIteration:
            return False
        return True

    def finish(self, result: OptimizeResult) -> None:
        if self.disp:
            if not self._header:
                self._print_header(None)
            if self._pending is not None:
                self.line(self._pending)
                self._pending = None
            self.line(f"{result.message} ({result.nit} iterations, {time.perf_counter() - self.start:.3f} s)")
