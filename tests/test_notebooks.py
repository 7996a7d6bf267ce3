"""Every course notebook runs top to bottom on a fresh kernel, on the teaching models and on tiny random
pipelines (the real models' code path), with papermill. Outputs go to a temporary folder, never notebooks/.
After each run, the numbers its prose relies on are checked against what it printed (tests/notebook_claims.py).

Select with ``pytest -m notebooks``; skip with ``-m "not notebooks"``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from notebook_claims import failed_claims
from tooling import load_tool

ROOT = Path(__file__).resolve().parent.parent
nbtools = load_tool("notebooks")
book = load_tool("book")

NOTEBOOKS = nbtools.notebook_paths()
BACKENDS = ("teaching", "tiny-random")
#: Parameters of the tiny-random runs, which test the real models' code path: cells that never touch a pipeline
#: (the 2-D toys of notebooks 01 and 10) run there briefly; claims that depend on their training are checked on
#: the teaching run.
TINY_RUN_PARAMETERS = {"01_diffusion_basics": {"TOY_STEPS": 300, "NUM_POINTS": 400},
                       "10_flow_matching": {"TOY_STEPS": 300, "NUM_POINTS": 400}}

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def kernel():
    """A kernel running this interpreter (the venv's python), whatever kernels the user has installed."""
    with nbtools.venv_kernel() as name:
        yield name


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(notebook: Path, backend: str, kernel: str, tmp_path: Path, monkeypatch) -> None:
    # One torch thread per kernel: with 2 shared cores, intra-op threads thrash (measured 10x slower under load).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = notebook.read_bytes()
    parameters = TINY_RUN_PARAMETERS.get(notebook.stem) if backend == "tiny-random" else None
    executed, _seconds = nbtools.execute(notebook, tmp_path / "executed", backend=backend, cwd=tmp_path,
                                         kernel=kernel, parameters=parameters)
    assert notebook.read_bytes() == before, "executing must never write into notebooks/"
    nb = json.loads(executed.read_text(encoding="utf-8"))
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and f'BACKEND = "{backend}"' in "".join(injected[0]["source"])
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    stderr = ["".join(o["text"]) for o in outputs if o.get("output_type") == "stream" and o["name"] == "stderr"]
    assert not stderr, "no library warnings in what a student reads"
    images = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "every notebook ends with something to look at (plots, contact sheets)"
    saved = [p for p in (tmp_path / "outputs").rglob("*") if p.is_file()]
    assert saved, "the notebook should save its animations and pictures under outputs/"
    assert all(p.stat().st_size > 0 for p in saved)
    printed = "".join("".join(o["text"]) for o in outputs if o.get("output_type") == "stream")
    assert not failed_claims(notebook.stem, backend, printed), "the prose relies on numbers this run did not print"
    book.store(notebook, executed, backend=backend)  # the site's page of it (make book), from this very run


@pytest.mark.parametrize(("model", "pipeline_class"), [("tiny-sdxl", "StableDiffusionXLPipeline"),
                                                      ("tiny-sd3", "StableDiffusion3Pipeline")])
@pytest.mark.parametrize("name", ["04_prompt_walks", "05_circular_noise_walks"])
def test_walk_notebooks_run_unchanged_on_other_families(name: str, model: str, pipeline_class: str, kernel: str,
                                                        tmp_path: Path, monkeypatch) -> None:
    """The same cells on other real classes: a tiny random SDXL (two text encoders, pooled embeddings) and a tiny
    random SD 3 (an MMDiT transformer on a flow-matching schedule, three text encoders)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    executed, _seconds = nbtools.execute(ROOT / "notebooks" / f"{name}.ipynb", tmp_path / "executed",
                                         backend="tiny-random", parameters={"MODEL": model}, cwd=tmp_path,
                                         kernel=kernel)
    nb = json.loads(executed.read_text(encoding="utf-8"))
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any(pipeline_class in "".join(o.get("text", "")) for o in outputs)
    assert not [o for o in outputs if o.get("output_type") == "stream" and o["name"] == "stderr"]
