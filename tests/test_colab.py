"""The Colab path: each notebook's setup cells on a simulated fresh Colab runtime.

The runtime: a fresh venv (no system site-packages) with ``torch==2.13.0`` preinstalled, as Colab ships its own
torch, an older ``diffusers`` (0.37, whose unCLIP lives elsewhere) that the install must upgrade, and a fake ``google.colab`` package imported before the cells run, as Colab's kernel does. The cells
are the notebooks' own, byte for byte: the ``lw-setup`` cell, the parameters cell (``BACKEND = "auto"``) and
the device cell that calls ``choose_backend``.

How the repository URL reaches this checkout without editing the cell: the setup cell runs
``pip install "latent-walks-helpers @ git+https://github.com/<org>/<repo>"``; pip hands the URL to git, and a
temporary git config (``GIT_CONFIG_GLOBAL``, with ``url.<file:///this/checkout>.insteadOf = <repository URL>``)
rewrites it to this checkout. pip therefore clones the *committed* state (HEAD) of this checkout, exactly
what Colab would get from GitHub after a push; uncommitted files are not in it.

Asserts: the package installs into the venv (and is imported from there, not from the checkout), torch is
untouched (same version, same ``torch/__init__.py`` mtime, no CUDA packages pulled in), every module of
``helpers`` imports, and with no GPU the backend cell picks the teaching models.

Needs PyPI for the package's dependencies (several hundred MB on a cold pip cache) and about 3.5 minutes on
2 cores, so it runs only with ``LW_COLAB=1``: ``make test-colab``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tooling import load_tool

ROOT = Path(__file__).resolve().parent.parent
nbtools = load_tool("notebooks")

NOTEBOOKS = nbtools.notebook_paths()
TORCH_SPEC = os.environ.get("LW_COLAB_TORCH", "torch==2.13.0")
#: A runtime that already has an older diffusers (0.37 keeps unCLIP in diffusers.pipelines.unclip, not
#: .deprecated.unclip): installing the package must lift it to the declared floor.
OLD_DIFFUSERS = os.environ.get("LW_COLAB_OLD_DIFFUSERS", "diffusers==0.37.0")
#: The teaching model each ``choose_backend`` kind loads (see helpers.backends.TEACHING).
TEACHING_MODEL = {"text2img": "teaching", "unclip": "teaching-unclip"}

pytestmark = pytest.mark.colab


def setup_cells(notebook: Path) -> list[str]:
    """The Setup section's code cells: from the ``lw-setup`` cell to the first cell calling ``choose_backend(``."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    start = [i for i, c in enumerate(cells) if nbtools.SETUP in c.get("metadata", {}).get("tags", [])]
    assert len(start) == 1, f"{notebook.name}: expected one cell tagged {nbtools.SETUP!r}"
    sources = []
    for cell in cells[start[0]:]:
        if cell["cell_type"] != "code":
            continue
        sources.append(nbtools._source(cell))
        if "choose_backend(" in sources[-1]:
            return sources
    raise AssertionError(f"{notebook.name}: no cell calling choose_backend( after the setup cell")


def _committed(path: str) -> bool:
    out = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "-d", "--name-only", "HEAD", path],
                         capture_output=True, text=True)
    return out.returncode == 0 and out.stdout.strip() == path


# What the runtime does before the cells (Colab's kernel imports google.colab at start), then the cells in one
# namespace like a kernel, then a report of what a later check needs.
DRIVER = textwrap.dedent('''
    import json, sys
    import google.colab  # noqa: F401  (the fake one: what makes the setup cell install the package)
    ns = {"__name__": "__main__"}
    for i, src in enumerate(json.load(open(sys.argv[1]))):
        exec(compile(src, f"<setup cell {i}>", "exec"), ns)
    import importlib, pkgutil
    import helpers, torch
    from helpers.backends import Backend
    modules = [m.name for m in pkgutil.walk_packages(helpers.__path__, "helpers.")]
    failed = {}
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as err:  # report them all
            failed[name] = f"{type(err).__name__}: {err}"
    backends = [v for v in ns.values() if isinstance(v, Backend)]
    print("LW-REPORT " + json.dumps({
        "helpers_file": helpers.__file__, "torch": torch.__version__, "cuda": torch.cuda.is_available(),
        "modules": modules, "failed_imports": failed,
        "backends": [{"name": b.name, "model": b.model, "device": str(b.device)} for b in backends],
    }))
''')

TORCH_STATE = ("import json, os, torch; print(json.dumps({'version': torch.__version__, "
               "'mtime': os.stat(torch.__file__).st_mtime_ns, 'file': torch.__file__}))")


def _run(cmd: list[str], env: dict, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd[:4])} ... failed ({out.returncode}):\n{out.stdout[-3000:]}\n"
                             f"{out.stderr[-5000:]}")
    return out


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """A simulated fresh Colab runtime: (python, env, work folder, torch state before the cells)."""
    if os.environ.get("LW_COLAB") != "1":
        reason = ("the Colab simulation builds a fresh venv from PyPI (about 3.5 min): run `make test-colab` "
                  "(or set LW_COLAB=1)")
        print(reason)
        pytest.skip(reason)
    if shutil.which("git") is None:
        pytest.skip("git is needed (pip installs the package from a git URL)")
    work = tmp_path_factory.mktemp("colab")
    venv = work / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_", "GIT_"))}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", OMP_NUM_THREADS="1")
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", str(venv)], env, work)
    python = str(venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "-q", TORCH_SPEC], env, work)  # Colab's own torch, there first
    _run([python, "-m", "pip", "install", "-q", OLD_DIFFUSERS], env, work)  # and an older diffusers

    fake = work / "fake_colab" / "google" / "colab"  # no google/__init__.py: a namespace package, like Colab's
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('"""A stand-in for Colab\'s google.colab package (tests only)."""\n')
    env["PYTHONPATH"] = str(work / "fake_colab")

    gitconfig = work / "gitconfig"
    url = nbtools.repository_url()
    gitconfig.write_text(f'[url "file://{ROOT}"]\n\tinsteadOf = {url}\n')
    env.update(GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")

    before = json.loads(_run([python, "-c", TORCH_STATE], env, work).stdout)
    yield python, env, work, before
    after = json.loads(_run([python, "-c", TORCH_STATE], env, work).stdout)
    assert after == before, f"installing the package touched Colab's torch: {before} -> {after}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_setup_cells_on_a_fresh_colab_runtime(notebook: Path, runtime) -> None:
    python, env, work, torch_before = runtime
    cells = setup_cells(notebook)
    assert cells[0] == nbtools.setup_source(nbtools.repository_url(), nbtools.package_name()), \
        f"{notebook.name}: the setup cell is stale (run `make badges`)"
    kinds = re.findall(r'choose_backend\(BACKEND,\s*"(\w+)"\)', "\n".join(cells))
    assert kinds, f"{notebook.name}: the device cell should call choose_backend(BACKEND, \"<kind>\")"
    missing = [TEACHING_MODEL[k] for k in kinds if not _committed(f"helpers/teaching/weights/{TEACHING_MODEL[k]}")]
    if missing:
        reason = f"{notebook.name}: the teaching weights {missing} are not committed yet (pip clones HEAD)"
        print(reason)
        pytest.skip(reason)

    cells_file = work / f"{notebook.stem}.cells.json"
    cells_file.write_text(json.dumps(cells))
    driver = work / "driver.py"
    driver.write_text(DRIVER)
    out = _run([python, str(driver), str(cells_file)], env, work)
    report = json.loads(out.stdout.split("LW-REPORT ", 1)[1])

    assert Path(report["helpers_file"]).is_relative_to(Path(python).parent.parent), \
        f"helpers was imported from {report['helpers_file']}, not from the package installed in the venv"
    assert report["torch"] == torch_before["version"]
    assert not report["failed_imports"], report["failed_imports"]
    assert {"helpers.backends", "helpers.widgets", "helpers.media"} <= set(report["modules"])
    assert not report["cuda"]
    assert report["backends"], "the device cell should leave a Backend in the namespace"
    for b in report["backends"]:
        assert b["name"] == "teaching" and b["model"] in TEACHING_MODEL.values() and b["device"] == "cpu", b
    assert "No CUDA GPU was found" in out.stdout  # the device cell says why it picked the teaching model

    pip_list = _run([python, "-m", "pip", "list", "--format=json"], env, work).stdout
    names = {d["name"].lower() for d in json.loads(pip_list)}
    from packaging.version import Version

    diffusers = next(d["version"] for d in json.loads(pip_list) if d["name"].lower() == "diffusers")
    assert Version(diffusers) >= Version("0.38"), f"the older diffusers {diffusers} was kept: unCLIP would not import"
    assert "latent-walks-helpers" in names
    assert not {n for n in names if n.startswith("nvidia-")}, "a CUDA build crept in"
    assert "torchvision" not in names
