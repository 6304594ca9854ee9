"""Sphinx configuration of the optcore documentation (built by .ci/run with warnings as errors)."""

from __future__ import annotations

import importlib.machinery
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
# A checkout with the extension built in place (maturin develop) documents itself; an installed
# optcore (pip install .) is used otherwise.
_SRC = ROOT / "python" / "optcore"
if any((_SRC / f"_core{suffix}").exists() for suffix in importlib.machinery.EXTENSION_SUFFIXES) or any(
    _SRC.glob("_core.*.so")
):
    sys.path.insert(0, str(ROOT / "python"))

import optcore  # noqa: E402

project = "optcore"
author = "the optcore developers"
copyright = "the optcore developers"  # noqa: A001
release = optcore.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
autodoc_typehints = "none"
autodoc_default_options = {"inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "show_memory": False,
    "reference_url": {"optcore": None},
}

templates_path: list[str] = []
exclude_patterns = ["_build", "README.md", "auto_examples/*.ipynb", "auto_examples/*.py"]
html_theme = "pydata_sphinx_theme"
html_title = f"optcore {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path: list[str] = []
os.environ.setdefault("OPTCORE_DOCS", "1")
