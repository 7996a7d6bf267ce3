"""The notebooks' conventions: generated headers/badges/setup cells up to date, no outputs, the parameters
cell, required sections, contiguous numbering, and a README row for each (``tools/notebooks.py check``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tooling import load_tool

ROOT = Path(__file__).resolve().parent.parent
nbtools = load_tool("notebooks")


def _readme_problem(line: str) -> bool:
    return line.startswith("README.md:")


def test_repository_url_comes_from_pyproject() -> None:
    import tomllib

    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    assert nbtools.repository_url() == url.rstrip("/").removesuffix(".git")
    # ... and appears nowhere else in the tooling: the generator reads it, never hard-codes it.
    assert url not in (ROOT / "tools" / "notebooks.py").read_text()


def test_committed_notebooks_follow_the_conventions() -> None:
    problems = [p for p in nbtools.check() if not _readme_problem(p)]
    assert not problems, "\n".join(problems)


def test_readme_table_lists_every_notebook() -> None:
    assert nbtools.readme_links(), "README.md has no notebook table"
    problems = [p for p in nbtools.check() if _readme_problem(p)]
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------------
# the checker and the generator themselves, on a scratch copy


@pytest.fixture
def scratch(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for path in nbtools.notebook_paths()[:3]:
        shutil.copy(path, folder / path.name)
    if len(list(folder.glob("*.ipynb"))) < 2:  # renumber a copy so the scratch course has two notebooks
        src = next(folder.glob("*.ipynb"))
        shutil.copy(src, folder / "02_copy_of_first.ipynb")
    names = sorted(p.name for p in folder.glob("*.ipynb"))
    for i, name in enumerate(names, start=1):
        (folder / name).rename(folder / f"{i:02d}_{name[3:]}")
    readme = tmp_path / "README.md"
    pyproject = tmp_path / "pyproject.toml"
    shutil.copy(ROOT / "pyproject.toml", pyproject)
    nbtools.write(folder, pyproject)
    readme.write_text("# x\n\n## Notebooks\n\n" + nbtools.readme_table(folder, pyproject) + "\n\n## Next\n")
    return {"folder": folder, "readme": readme, "pyproject": pyproject}


def _check(s: dict[str, Path]) -> list[str]:
    return nbtools.check(s["folder"], s["readme"], s["pyproject"])


def _first(s: dict[str, Path]) -> Path:
    return sorted(s["folder"].glob("*.ipynb"))[0]


def _edit(path: Path, change) -> None:
    nb = json.loads(path.read_text())
    change(nb)
    path.write_text(json.dumps(nb, indent=1))


def test_scratch_course_is_clean_and_write_is_idempotent(scratch) -> None:
    assert _check(scratch) == []
    assert nbtools.write(scratch["folder"], scratch["pyproject"]) == []


def test_header_has_title_badge_and_navigation(scratch) -> None:
    first, second = sorted(scratch["folder"].glob("*.ipynb"))[:2]
    nb = json.loads(first.read_text())
    header = nb["cells"][0]
    assert "lw-header" in header["metadata"]["tags"]
    text = header["source"]
    assert text.startswith("# 01 · ")
    assert f"colab.research.google.com/github/latent-walks/latent-walks/blob/main/notebooks/{first.name}" in text
    assert f"]({second.name})" in text  # "next" link
    setup = [c for c in nb["cells"] if "lw-setup" in c["metadata"].get("tags", [])]
    assert len(setup) == 1
    src = setup[0]["source"]
    assert '"google.colab" in sys.modules' in src and "git+https://github.com/latent-walks/latent-walks" in src
    assert "torch" not in src.split("import subprocess")[1]  # never (re)installs torch


def test_changing_the_url_makes_headers_stale_until_rewritten(scratch) -> None:
    py = scratch["pyproject"]
    py.write_text(py.read_text().replace("latent-walks/latent-walks", "someone-else/fork"))
    problems = _check(scratch)
    assert any("'lw-header' cell is stale" in p for p in problems)
    assert any("'lw-setup' cell is stale" in p for p in problems)
    changed = nbtools.write(scratch["folder"], py)
    assert len(changed) == len(list(scratch["folder"].glob("*.ipynb")))
    assert _check(scratch) == []
    assert "someone-else/fork" in _first(scratch).read_text()


def test_outputs_counts_and_widget_state_are_refused_then_stripped(scratch) -> None:
    def dirty(nb):
        code = next(c for c in nb["cells"] if c["cell_type"] == "code")
        code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi\n"}]
        code["execution_count"] = 3
        nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}

    _edit(_first(scratch), dirty)
    problems = _check(scratch)
    assert any("has outputs" in p for p in problems)
    assert any("execution count" in p for p in problems)
    assert any("widget state" in p for p in problems)
    nbtools.strip(scratch["folder"])
    assert _check(scratch) == []


def test_missing_parts_are_reported(scratch) -> None:
    def damage(nb):
        nb["cells"] = [c for c in nb["cells"] if "parameters" not in c["metadata"].get("tags", [])
                       and "lw-header" not in c["metadata"].get("tags", [])]
        for c in nb["cells"]:
            c["source"] = c["source"].replace("## Exercises", "## Things to try")

    _edit(_first(scratch), damage)
    problems = "\n".join(_check(scratch))
    assert "expected one cell tagged 'lw-header'" in problems
    assert "'parameters'" in problems
    assert "'## Exercises'" in problems
    nbtools.write(scratch["folder"], scratch["pyproject"])  # the header comes back; the rest is authored
    assert "lw-header" not in "\n".join(_check(scratch))


def test_numbering_gap_and_readme_are_checked(scratch) -> None:
    last = sorted(scratch["folder"].glob("*.ipynb"))[-1]
    last.rename(last.with_name("09" + last.name[2:]))
    problems = "\n".join(_check(scratch))
    assert "numbering must run" in problems
    assert "has no row linking notebooks/09_" in problems
    assert f"links notebooks/{last.name}, which does not exist" in problems


def test_install_hook_writes_an_executable_hook_once(tmp_path: Path) -> None:
    git_dir = tmp_path / ".git"
    assert nbtools.install_hook(git_dir) == 0
    hook = git_dir / "hooks" / "pre-commit"
    assert hook.stat().st_mode & 0o111 and "tools/notebooks.py check" in hook.read_text()
    hook.write_text("#!/bin/sh\n# the user's own hook\n")
    assert nbtools.install_hook(git_dir) == 1
    assert "the user's own hook" in hook.read_text()  # never overwritten


def test_executed_copies_lose_finished_progress_bars_but_keep_explorers() -> None:
    def widget(text: str) -> dict:
        return {"output_type": "display_data", "metadata": {},
                "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": text}}

    bar = widget("frames:   0%|          | 0/8 [00:00<?, ?frame/s]")
    explorer = widget("VBox(children=(SelectionSlider(description='t', options=(('0', 0),)),))")
    picture = {"output_type": "display_data", "metadata": {}, "data": {"text/plain": "<Figure 50%|x| 1/2>"}}
    nb = {"cells": [{"cell_type": "code", "outputs": [bar, explorer, picture, bar]}, {"cell_type": "markdown"}]}
    assert nbtools.drop_closed_progress_bars(nb) == 2
    assert nb["cells"][0]["outputs"] == [explorer, picture]


def test_the_helpers_progress_bars_vanish_when_done(capsys) -> None:
    """A finished render leaves no bar behind (``leave=False``): the last thing tqdm wrote clears its line."""
    import torch

    from helpers.embeddings import encode_prompts
    from helpers.pipelines import tiny_pipeline
    from helpers.render import render_frames

    pipe = tiny_pipeline("text2img")
    embeds, negative = encode_prompts(pipe, ["a cat", "a dog"])
    torch.set_num_threads(1)
    render_frames(pipe, prompt_embeds=embeds, negative_prompt_embeds=negative[:1], num_inference_steps=2,
                  progress=True)
    err = capsys.readouterr().err
    assert "frames" in err  # a bar was shown while rendering
    assert "frames" not in err.rsplit("\r", 1)[-1]  # and its line was cleared at the end


def test_references_must_link_sources_and_end_the_notebook(scratch) -> None:
    def unlink(nb):
        for c in nb["cells"]:
            if c["source"].startswith("## References"):
                c["source"] = "## References\n\n- a paper I once read"

    _edit(_first(scratch), unlink)
    assert any("links no paper or source" in p for p in _check(scratch))

    def move(nb):
        refs = next(c for c in nb["cells"] if c["source"].startswith("## References"))
        refs["source"] = "## References\n\n- [DDPM](https://arxiv.org/abs/2006.11239)"
        nb["cells"].remove(refs)
        nb["cells"].insert(3, refs)

    _edit(_first(scratch), move)
    assert any("must end the notebook" in p for p in _check(scratch))


def test_claims_flag_a_false_number_and_a_missing_line() -> None:
    """The claims check reads the printed text: a number that contradicts the prose, or a line that is no longer
    printed, is reported; on the tiny random pipelines only the code's own facts are checked."""
    from notebook_claims import CLAIMS, failed_claims

    good = "slerp midpoint: |x|/√d = 1.020\n"
    bad = "slerp midpoint: |x|/√d = 0.700\n"
    flagged = [p for p in failed_claims("02_slerp_and_latent_geometry", "teaching", bad) if "stays on the shell" in p]
    assert flagged and "is false on teaching" in flagged[0]
    assert not [p for p in failed_claims("02_slerp_and_latent_geometry", "teaching", good) if "on the shell" in p]
    missing = failed_claims("05_circular_noise_walks", "teaching", "")
    assert len(missing) == len(CLAIMS["05_circular_noise_walks"]) and all("no printed line" in p for p in missing)
    code_only = failed_claims("05_circular_noise_walks", "tiny-random", "")
    assert len(code_only) == sum(c.everywhere for c in CLAIMS["05_circular_noise_walks"]) == 1


def test_a_cell_without_an_id_or_with_a_repeated_one_is_reported(scratch) -> None:
    """Sphinx (myst-nb) fails the site's build on a cell without an id; ``check`` says so first."""
    def lose_ids(nb):
        del nb["cells"][1]["id"]
        nb["cells"][3]["id"] = nb["cells"][2]["id"]

    _edit(_first(scratch), lose_ids)
    problem = next(p for p in _check(scratch) if "own id" in p)
    assert "[1, 2, 3]" in problem


def test_display_math_inside_a_paragraph_is_reported(scratch) -> None:
    """On the site, $$ … $$ inside a paragraph typesets the prose between two equations as one formula."""
    def inline_display(nb):
        cell = next(c for c in nb["cells"] if c["cell_type"] == "markdown" and "lw-header" not in c["metadata"].get("tags", []))
        cell["source"] += "\n\nThe norm is\n$$\\lVert a \\rVert = 1$$\nfor a unit vector."

    _edit(_first(scratch), inline_display)
    assert any("blank line before and after $$\\lVert a" in p for p in _check(scratch))

    def own_paragraph(nb):
        for c in nb["cells"]:
            c["source"] = c["source"].replace("is\n$$", "is\n\n$$").replace("$$\nfor", "$$\n\nfor")

    _edit(_first(scratch), own_paragraph)
    assert _check(scratch) == []
