"""The benchmark figures redraw from the committed JSON without a rerun (issue 24): every entry
of ``benches/plots.py``'s ``PLOTS`` whose JSON is committed writes a PNG, titled with the machine
and the date of its data, from a copy of that JSON."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

BENCHES = Path(__file__).resolve().parent.parent / "benches"


def _plots():
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("bench_plots", BENCHES / "plots.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", ["bilevel", "ot_gpu", "halpern"])
def test_figure_redraws_from_committed_json(name, tmp_path, monkeypatch):
    plots = _plots()
    src = plots.RESULTS / f"{name}.json"
    assert src.exists(), f"benches/results/{name}.json is missing"
    for ext in (".json", ".md"):  # ot_gpu's older JSON names its GPU only in the report beside it
        if src.with_suffix(ext).exists():
            shutil.copy(src.with_suffix(ext), tmp_path / f"{name}{ext}")
    titles = []
    real_stamp = plots._stamp
    monkeypatch.setattr(
        plots,
        "_stamp",
        lambda fig, what, machine, date: titles.append((machine, date)) or real_stamp(fig, what, machine, date),
    )
    out = plots.PLOTS[name](tmp_path / f"{name}.json")
    assert out == tmp_path / f"{name}.png" and out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ((machine, date),) = titles
    assert "unknown" not in machine and "?" not in machine
    raw = json.loads(src.read_text())
    assert date == raw.get("date", raw.get("info", {}).get("date"))
