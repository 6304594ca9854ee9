"""Every public function and class of every family documents itself: a numpydoc docstring with
Parameters (when it takes any), Returns (functions), Attributes (result classes) and a runnable
Examples section. The examples themselves run in CI (``pytest --doctest-modules --pyargs optcore``);
this test makes sure none is missing, so that a new entry point cannot land undocumented."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

MODULES = [
    "optcore",
    "optcore.ot",
    "optcore.fixed_point",
    "optcore.fixed_point.operators",
    "optcore.monotone",
    "optcore.bilevel",
    "optcore.bilevel.problems",
    "optcore.zo",
    "optcore.zo.functions",
    "optcore.testing",
]


def _public():
    seen = {}
    for name in MODULES:
        mod = importlib.import_module(name)
        for attr in getattr(mod, "__all__", [a for a in dir(mod) if not a.startswith("_")]):
            obj = getattr(mod, attr, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if inspect.isclass(obj) and issubclass(obj, BaseException | Warning):
                continue  # exceptions and warnings are documented by their one-line meaning
            if not getattr(obj, "__module__", "").startswith("optcore"):
                continue
            seen.setdefault(id(obj), (f"{name}.{attr}", obj))
    return sorted(seen.values(), key=lambda t: t[0])


def _sections(doc: str) -> set[str]:
    return set(re.findall(r"^\s*([A-Z][A-Za-z ]+)\n\s*-{3,}\s*$", doc, flags=re.M))


def _takes_parameters(obj) -> bool:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return True
    names = [p for p in sig.parameters if p not in ("self", "cls")]
    return bool(names) and not (inspect.isclass(obj) and target is object.__init__)


def _is_result(obj) -> bool:
    from optcore import OptimizeResult

    return inspect.isclass(obj) and issubclass(obj, OptimizeResult)


PUBLIC = _public()


@pytest.mark.parametrize("name,obj", PUBLIC, ids=[n for n, _ in PUBLIC])
def test_public_docstring_has_numpydoc_sections(name, obj):
    doc = inspect.getdoc(obj) or ""
    have = _sections(doc)
    need = {"Examples"}
    if _is_result(obj):
        need.add("Attributes")
    elif _takes_parameters(obj):
        need.add("Parameters")
    if inspect.isfunction(obj):
        need.add("Returns")
    missing = sorted(need - have)
    assert not missing, f"{name}: docstring lacks {missing}"
    assert ">>>" in doc, f"{name}: the Examples section has no runnable example"
