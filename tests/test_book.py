"""The site's build steps (tools/book.py) without Sphinx: the cache of executed notebooks, the pages assembled
from them, and the links. The site itself, built and opened in Chromium, is tests/test_site.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tooling import load_tool

ROOT = Path(__file__).resolve().parent.parent
book = load_tool("book")
NB = ROOT / "notebooks" / "04_prompt_walks.ipynb"
REPO = book.repository_url()


def _copy(tmp_path: Path, edit=None) -> Path:
    """A copy of notebook 04 (same name, in a folder of its own), edited by ``edit``."""
    nb = json.loads(NB.read_text(encoding="utf-8"))
    if edit:
        edit(nb)
    folder = tmp_path / "notebooks"
    folder.mkdir(exist_ok=True)
    path = folder / NB.name
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def _append(cell: dict, text: str) -> None:
    src = cell["source"]
    cell["source"] = ("".join(src) if isinstance(src, list) else src) + text


def _first(nb: dict, kind: str) -> dict:
    return next(c for c in nb["cells"] if c["cell_type"] == kind and "parameters" not in c["metadata"].get("tags", []))


def test_prose_edits_keep_the_cache_key_and_code_edits_change_it(tmp_path: Path) -> None:
    digest = "d" * 64
    base = book.cache_key(_copy(tmp_path), digest=digest)
    prose = book.cache_key(_copy(tmp_path, lambda nb: _append(_first(nb, "markdown"), "\nMore words.")),
                           digest=digest)
    code = book.cache_key(_copy(tmp_path, lambda nb: _append(_first(nb, "code"), "\nx = 1")),
                          digest=digest)
    assert prose == base
    assert code != base
    assert book.cache_key(_copy(tmp_path), digest="e" * 64) != base  # the package (code or weights) changed
    assert book.cache_key(_copy(tmp_path), backend="tiny-random", digest=digest) != base


def test_package_digest_follows_every_file(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "weights").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1")
    (pkg / "weights" / "w.bin").write_bytes(b"\0" * 10)
    first = book.package_digest(pkg)
    (pkg / "weights" / "w.bin").write_bytes(b"\0" * 9 + b"\1")
    assert book.package_digest(pkg) != first
    (pkg / "weights" / "w.bin").write_bytes(b"\0" * 10)
    assert book.package_digest(pkg) == first


def _fake_executed(notebook: Path, out: Path, *, error: bool = False, widget: bool = False) -> Path:
    """What papermill writes: an injected parameters cell after the parameters cell, outputs on code cells."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    cells = []
    code = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    for i, cell in enumerate(nb["cells"]):
        cell = dict(cell)
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": [f"out {i}\n"]}]
            if widget and i == code[2]:
                cell["outputs"].append({"output_type": "display_data", "metadata": {}, "data": {
                    book.WIDGET_MIME: {"model_id": "x"}, "text/plain": "VBox()"}})
            if error and i == code[3]:
                cell["outputs"].append({"output_type": "error", "ename": "E", "evalue": "boom", "traceback": []})
        cells.append(cell)
        if "parameters" in cell["metadata"].get("tags", []):
            cells.append({"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "outputs": [],
                          "execution_count": None, "source": '# Parameters\nBACKEND = "teaching"\n'})
    out.mkdir(parents=True, exist_ok=True)
    path = out / notebook.name
    path.write_text(json.dumps({**nb, "cells": cells}), encoding="utf-8")
    return path


def test_store_keeps_clean_teaching_runs_only(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    good = _fake_executed(NB, tmp_path / "good")
    assert book.store(NB, good, backend="tiny-random", cache=cache) is None
    assert book.store(NB, _fake_executed(NB, tmp_path / "bad", error=True), backend="teaching", cache=cache) is None
    other = _copy(tmp_path, lambda nb: _append(_first(nb, "code"), "\nx = 1"))
    assert book.store(NB, _fake_executed(other, tmp_path / "old"), backend="teaching", cache=cache) is None
    kept = book.store(NB, good, backend="teaching", cache=cache)
    assert kept is not None and kept.read_bytes() == good.read_bytes()
    assert book.cached(NB, cache=cache) == kept
    assert [p.name for p in cache.iterdir()] == [kept.name]  # no temporary left behind


def test_page_has_the_current_prose_the_runs_outputs_and_no_live_widget(tmp_path: Path) -> None:
    executed = _fake_executed(NB, tmp_path / "run", widget=True)
    page = book.page_notebook(NB, executed)
    source = json.loads(NB.read_text(encoding="utf-8"))
    code_in = [c for c in source["cells"] if c["cell_type"] == "code"]
    code_out = [c for c in page["cells"] if c["cell_type"] == "code"
                and "injected-parameters" not in c["metadata"].get("tags", [])]
    assert [c["source"] for c in code_out] == [c["source"] for c in code_in]
    assert all(c["outputs"] for c in code_out)
    shown = [c for c in page["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(shown) == 1 and 'BACKEND = "teaching"' in book.nbtools._source(shown[0])
    texts = json.dumps(page)
    assert book.WIDGET_MIME not in texts and "live when you run the notebook in Jupyter or Colab" in texts
    assert "colab-badge.svg" in texts and book.nbtools.COLAB_BADGE not in texts
    with pytest.raises(ValueError, match="other code"):
        other = _copy(tmp_path, lambda nb: _append(_first(nb, "code"), "\nx = 1"))
        book.page_notebook(NB, _fake_executed(other, tmp_path / "other"))


@pytest.mark.parametrize(("text", "repo_dir", "page_dir", "expected"), [
    ("[next](05_circular_noise_walks.ipynb)", "notebooks", "notebooks", "[next](05_circular_noise_walks.ipynb)"),
    ("[index](../README.md#notebooks)", "notebooks", "notebooks", "[index](../index.md#notebooks)"),
    ("[s](solutions/01_solutions.ipynb)", "notebooks", "notebooks", "[s](solutions/01_solutions.ipynb)"),
    ("[back](../01_diffusion_basics.ipynb)", "notebooks/solutions", "notebooks/solutions",
     "[back](../01_diffusion_basics.ipynb)"),
    ("[code](scenes.py)", "helpers/teaching", "", f"[code]({REPO}/blob/main/helpers/teaching/scenes.py)"),
    ("[tests](../../tests)", "helpers/teaching", "", f"[tests]({REPO}/tree/main/tests)"),
    ("[cards](helpers/teaching/README.md)", "", "", "[cards](model-cards.md)"),
    ("[paper](https://arxiv.org/abs/2010.02502)", "notebooks", "notebooks", "[paper](https://arxiv.org/abs/2010.02502)"),
    ("[here](#setup)", "notebooks", "notebooks", "[here](#setup)"),
])
def test_links_stay_inside_the_site_or_go_to_github(text: str, repo_dir: str, page_dir: str, expected: str) -> None:
    assert book.rewrite_links(text, repo_dir, page_dir) == expected
