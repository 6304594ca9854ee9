"""disp=True paces its lines: a header, the first check, at most one line per second, the last
check and the final message, whatever check_every is; the LP's lines add its primal, dual and
gap residuals. show_versions reports what a bug report needs."""

from __future__ import annotations

import numpy as np

import optcore
from optcore import _progress
from optcore._progress import Progress


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_one_line_per_interval_plus_first_and_last(monkeypatch, capsys):
    clock = Clock()
    monkeypatch.setattr(_progress.time, "perf_counter", clock)
    p = Progress(None, True, lambda s: s, title="title")
    for nit in range(1, 1001):  # 1000 checks over 10 s: 1 ms apart
        clock.t = nit * 0.01
        p({"nit": nit, "error": 1.0 / nit})
    p.finish(optcore.OptimizeResult(message="done", nit=1000))
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == "title" and out[1].split() == ["iter", "error", "time", "(s)"]
    body = out[2:-1]
    assert 10 <= len(body) <= 12  # the first, one per second, the last
    assert body[0].split()[0] == "1" and body[-1].split()[0] == "1000"
    assert out[-1].startswith("done (1000 iterations")


def test_lp_lines_show_primal_dual_gap(capsys):
    res = optcore.linprog([-1, -1], A_ub=[[1, 2], [3, 1]], b_ub=[4, 6], disp=True)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[1].split() == ["iter", "error", "primal", "dual", "gap", "time", "(s)"]
    last = out[-2].split()
    assert len(last) == 6 and int(last[0]) <= res.nit
    assert all(np.isfinite(float(v)) for v in last[1:])
    assert out[-1].startswith(res.message)


def test_disp_without_checks_still_prints_header_and_message(capsys):
    p = Progress(None, True, lambda s: s, title="t")
    p.finish(optcore.OptimizeResult(message="stopped", nit=0))
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["t", out[1], "stopped (0 iterations, " + out[2].split("(0 iterations, ")[1]]


def test_show_versions(capsys):
    optcore.show_versions()
    out = capsys.readouterr().out
    for key in ("optcore", "python", "numpy", "scipy", "simd", "threads", "gpu"):
        assert f"\n{key}: " in "\n" + out
    assert optcore._core.simd_level() in out
