"""Sphinx configuration of the course site (``make book``; the pages are assembled by ``tools/book.py``).

Sphinx + myst-nb + sphinx-book-theme, all from PyPI, building offline: the notebooks arrive already executed
(``nb_execution_mode = "off"``), MathJax is served from the site itself, and nothing is fetched at build time or
when a page is read.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

with open(ROOT / "pyproject.toml", "rb") as f:
    _project = tomllib.load(f)["project"]
REPOSITORY = _project["urls"]["Repository"]

project = "Latent Walks"
author = "the Latent Walks authors"
copyright = "the Latent Walks authors, MIT licence"
release = version = _project["version"]

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # the docstrings' Args:/Returns: sections
    "sphinx-mathjax-offline",  # MathJax 3 copied into the site's _static: formulas render offline
]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "_static"]
suppress_warnings = ["mystnb.unknown_mime_type"]

# MyST: $…$ math, ::: fences, heading anchors so that "README.md#notebooks" style links resolve.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# myst-nb: the pages are executed copies; show what a student saw, GIFs animated.
nb_execution_mode = "off"
nb_merge_streams = True
nb_render_markdown_format = "myst"

# autodoc: the API reference, in source order, with signatures' types written out.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}

html_theme = "sphinx_book_theme"
html_title = "Latent Walks"
html_static_path = ["_static"]
html_css_files = ["site.css"]
html_last_updated_fmt = None
html_favicon = "_static/favicon.svg"
# A fixed light theme: the pixel-art outputs are drawn on light backgrounds (and the theme logs an error
# on a first visit when no mode is set).
html_context = {"default_mode": "light"}
html_theme_options = {
    "repository_url": REPOSITORY,
    "repository_branch": "main",
    "path_to_docs": "",
    "use_repository_button": True,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
}

sys.path.insert(0, str(ROOT / "tools"))
from toolbox import load_tool  # noqa: E402  (tools/ is not a package)

_INTRODUCED = load_tool("book").INTRODUCED  # the one pattern of "Introduced in notebook NN_…"


def _link_notebooks(app, what, name, obj, options, lines) -> None:
    """'Introduced in notebook 02_slerp_…' in a docstring becomes a link to that notebook's page."""
    text = "\n".join(lines)
    new = _INTRODUCED.sub(lambda m: f"Introduced in notebook :doc:`/notebooks/{m.group(1)}`", text)
    if new != text:
        lines[:] = new.split("\n")


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _link_notebooks)
