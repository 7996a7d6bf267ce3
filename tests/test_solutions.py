"""The worked solutions to the course's exercises (notebooks/solutions/NN_solutions.ipynb): stored like the
course notebooks, and run top to bottom on a fresh kernel on the teaching models, with papermill (the machinery
of tests/test_notebooks.py). Outputs go to a temporary folder, never notebooks/.

The runs are marked ``notebooks`` (select with ``pytest -m notebooks``, skip with ``-m "not notebooks"``); the
storage checks are quick and run everywhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tooling import load_tool

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "notebooks" / "solutions"
nbtools = load_tool("notebooks")
book = load_tool("book")

NOTEBOOKS = sorted(SOLUTIONS.glob("*.ipynb"))


@pytest.fixture(scope="module")
def kernel():
    """A kernel running this interpreter (the venv's python), whatever kernels the user has installed."""
    with nbtools.venv_kernel() as name:
        yield name


def test_solutions_match_the_course_notebooks_that_link_them() -> None:
    course = {p.name[:2]: p.read_text(encoding="utf-8") for p in nbtools.notebook_paths()}
    linked = {number for number, text in course.items() if f"solutions/{number}_solutions.ipynb" in text}
    solved = {p.name[:2] for p in NOTEBOOKS}
    assert linked, "no course notebook links its solutions"
    assert linked == solved, f"linked but missing: {sorted(linked - solved)}; not linked: {sorted(solved - linked)}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_solutions_are_stored_like_the_course(notebook: Path) -> None:
    text = notebook.read_text(encoding="utf-8")
    nb = json.loads(text)
    assert text == json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"].startswith(
        f"# {notebook.name[:2]} · Solutions to the exercises of ")
    assert all(isinstance(c["source"], str) and c.get("id") for c in cells)
    assert len({c["id"] for c in cells}) == len(cells)
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), "strip the outputs"
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1 and re.match(r'BACKEND\s*=\s*"auto"', params[0]["source"])
    assert any("choose_backend(BACKEND" in c["source"] for c in code)


@pytest.mark.notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_solutions_run(notebook: Path, kernel: str, tmp_path: Path, monkeypatch) -> None:
    # One torch thread per kernel, as for the course notebooks (tests/test_notebooks.py).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = notebook.read_bytes()
    executed, _seconds = nbtools.execute(notebook, tmp_path / "executed", backend="teaching", cwd=tmp_path,
                                         kernel=kernel)
    assert notebook.read_bytes() == before, "executing must never write into notebooks/"
    nb = json.loads(executed.read_text(encoding="utf-8"))
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors
    stderr = ["".join(o["text"]) for o in outputs if o.get("output_type") == "stream" and o["name"] == "stderr"]
    assert not stderr, "no library warnings in what a student reads"
    printed = "".join("".join(o["text"]) for o in outputs if o.get("output_type") == "stream")
    assert "the answer is" in printed, "each solution states its answer from the numbers it printed"
    book.store(notebook, executed, backend="teaching")  # the site's page of it (make book), from this very run
