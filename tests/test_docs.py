"""The docs stay true: docstrings name notebooks that exist, every public helper names where it is taught,
the README's commands and example walk files work."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import helpers
from helpers.walks.spec import MODELS, check_runtime, load_walk_spec

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
NOTEBOOK_REF = re.compile(r"\b(\d{2}_[a-z][a-z0-9_]*[a-z0-9])\b")


def test_notebooks_named_in_the_package_exist():
    named = set()
    for path in (ROOT / "helpers").rglob("*.py"):
        named |= {m for m in NOTEBOOK_REF.findall(path.read_text(encoding="utf-8"))}
    assert named, "the package's docstrings should name the notebooks that introduce its helpers"
    assert named <= NOTEBOOKS, f"docstrings name notebooks that do not exist: {sorted(named - NOTEBOOKS)}"


@pytest.mark.parametrize("name", sorted(n for n in helpers._EXPORTS if not n.startswith("__")))
def test_every_export_has_a_docstring_that_names_its_notebook(name):
    obj = getattr(helpers, name)
    doc = inspect.getdoc(obj) or ""
    module_doc = inspect.getdoc(inspect.getmodule(obj)) or ""
    assert doc, f"helpers.{name} has no docstring"
    assert NOTEBOOK_REF.search(doc) or NOTEBOOK_REF.search(module_doc), (
        f"helpers.{name}: its docstring (or its module's) should say which notebook introduces it")


def test_readme_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))
    used = set(re.findall(r"`make ([a-z-]+)", (ROOT / "README.md").read_text(encoding="utf-8")))
    assert used and used <= targets, f"README names make targets that do not exist: {sorted(used - targets)}"


def test_readme_paths_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = [p for p in re.findall(r"\]\(([^)#]+)\)", readme) if "://" not in p]
    walks = re.findall(r"helpers\.walks (walks/[\w.]+)", readme)
    assert links and walks
    missing = [p for p in links + walks if not (ROOT / p).exists()]
    assert not missing, missing


WALK_FILES = sorted((ROOT / "walks").glob("*.yaml"))


@pytest.mark.parametrize("path", WALK_FILES, ids=[p.name for p in WALK_FILES])
def test_example_walk_files_are_valid(path, tmp_path):
    spec = load_walk_spec(path)
    check_runtime(spec, tmp_path / "out")  # a walk timed to music learns its length from the audio file here
    assert spec.model in MODELS and spec.frames >= 2


@pytest.mark.parametrize("name", ["scenes.yaml", "scene_morph.yaml", "timeline.yaml", "timeline_beat.yaml"])
def test_offline_example_walks_render(name, tmp_path, capsys):
    from helpers.walks import main, read_manifest

    assert main([str(ROOT / "walks" / name), "--out", str(tmp_path), "--no-progress"]) == 0
    spec = load_walk_spec(ROOT / "walks" / name)
    check_runtime(spec, tmp_path)  # the frames of a walk timed to music: its length × fps
    files = [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert {".gif", ".mp4", ".png"} <= {p.suffix for p in files}
    assert all(p.stat().st_size > 0 for p in files)
    assert len(read_manifest(tmp_path)["frames"]) == spec.frames


def _pins(text: str) -> dict[str, str]:
    pins = re.findall(r"^\s*(?:-\s*)?([A-Za-z0-9_.-]+)==([^\s#]+)", text, flags=re.M)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def test_environment_yml_mirrors_the_lock_file():
    env = _pins((ROOT / "environment.yml").read_text(encoding="utf-8"))
    lock = _pins((ROOT / "requirements" / "lock.txt").read_text(encoding="utf-8"))
    torch_pin = _pins(re.search(r"TORCH_SPEC \?= (\S+)", (ROOT / "Makefile").read_text()).group(1))
    assert env and lock and torch_pin
    lock.update(torch_pin)  # torch is installed first by the Makefile, not from the lock file
    wrong = {name: (version, lock.get(name)) for name, version in env.items() if lock.get(name) != version}
    assert not wrong, f"environment.yml pins that differ from requirements/lock.txt: {wrong}"


def test_floors_file_pins_exactly_the_declared_floors():
    """requirements/floors.txt (make test-floors) installs the lowest version pyproject.toml allows, for every
    dependency but torch (whose CPU build stands in, see the file)."""
    import tomllib

    def name(spec: str) -> str:
        return re.split(r"[\[<>=!~ ]", spec, maxsplit=1)[0].lower()

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = {name(d): re.search(r">=([^,\s]+)", d).group(1) for d in declared}
    pinned = {}
    for line in (ROOT / "requirements" / "floors.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            pinned[name(line)] = line.split("==")[1].strip()
    assert set(floors) <= set(pinned)
    from packaging.version import Version

    for dist, low in floors.items():
        if dist != "torch":
            assert Version(pinned[dist]) == Version(low) or (
                Version(pinned[dist]).release[: len(Version(low).release)] == Version(low).release
            ), f"{dist}: pyproject says >= {low}, floors.txt installs {pinned[dist]}"


def test_pre_commit_hooks_call_the_projects_own_tools():
    import shlex

    import yaml

    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = [h for repo in config["repos"] for h in repo["hooks"]]
    assert {h["id"] for h in hooks} == {"ruff", "notebooks-strip", "notebooks-check"}
    tool = (ROOT / "tools" / "notebooks.py").read_text(encoding="utf-8")
    for hook in hooks:
        argv = shlex.split(hook["entry"])
        assert argv[0].startswith(".venv/bin/"), hook["id"]
        if argv[1:2] == ["tools/notebooks.py"]:
            assert (ROOT / argv[1]).is_file() and f'"{argv[2]}"' in tool  # a subcommand the tool has
