"""The course notebooks' generated parts, their structure check, and their execution.

    python tools/notebooks.py write            # (re)generate headers, badges, Colab setup cells, navigation
    python tools/notebooks.py check            # fail when anything is stale or missing (tests run this)
    python tools/notebooks.py strip            # remove outputs, execution counts and widget state
    python tools/notebooks.py readme-table     # print the README's notebook table
    python tools/notebooks.py execute --backend teaching --out outputs/notebooks [NOTEBOOK ...]
    python tools/notebooks.py install-hook     # optional git pre-commit hook: refuse commits that fail `check`

Generated cells are found by a cell tag, never by position, so ``write`` is safe to re-run:

* ``lw-header`` (markdown, first cell): H1 title, the "Open in Colab" badge, previous/next navigation;
* ``lw-setup`` (code, under "## Setup"): installs the package in Colab only, from the repository, never
  touching Colab's own torch (the package's requirements are loose);
* ``lw-footer`` (markdown, last cell): previous/next navigation again.

``check`` also wants the course's sections (Learning goals, Setup, Summary, Exercises, and a References section
with links, just before the navigation), a ``parameters`` cell and no outputs.

Each notebook's title and one-line summary live in its metadata (``metadata.latent_walks``). The repository
URL is read from ``pyproject.toml`` (``[project.urls] Repository``), its only home.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
README = ROOT / "README.md"
PYPROJECT = ROOT / "pyproject.toml"

HEADER, SETUP, FOOTER, PARAMETERS = "lw-header", "lw-setup", "lw-footer", "parameters"
NAME_RE = re.compile(r"^(\d{2})_([a-z0-9_]+)\.ipynb$")
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BRANCH = "main"
#: Markdown headings every notebook must have (learning goals first, exercises at the end).
REQUIRED_HEADINGS = ("## Learning goals", "## Setup", "## Summary", "## Exercises", "## References")
#: Code every notebook's Setup section must contain (the device cell).
REQUIRED_CODE = ("choose_backend(",)


# --------------------------------------------------------------------------------------------------
# facts read from the project


def _pyproject(pyproject: Path) -> dict:
    import tomllib  # Python 3.11+, like the project's venv

    with open(pyproject, "rb") as f:
        return tomllib.load(f)


def repository_url(pyproject: Path = PYPROJECT) -> str:
    """``[project.urls] Repository`` from pyproject.toml, without a trailing slash or ``.git``."""
    data = _pyproject(pyproject)
    try:
        url = data["project"]["urls"]["Repository"]
    except KeyError:
        raise SystemExit(f"{pyproject} has no [project.urls] Repository = \"https://github.com/<org>/<repo>\"") from None
    url = url.rstrip("/").removesuffix(".git")
    if not re.match(r"^https://github\.com/[\w.-]+/[\w.-]+$", url):
        raise SystemExit(f"the Repository URL must look like https://github.com/<org>/<repo>, got {url!r}")
    return url


def package_name(pyproject: Path = PYPROJECT) -> str:
    return _pyproject(pyproject)["project"]["name"]


@dataclass(frozen=True)
class Entry:
    number: int
    path: Path
    title: str
    summary: str

    @property
    def file(self) -> str:
        return self.path.name

    @property
    def label(self) -> str:
        return f"{self.number:02d} · {self.title}"


def _read(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def notebook_paths(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def course(folder: Path = NOTEBOOK_DIR) -> list[Entry]:
    """The notebooks in order, with their titles and summaries (from their metadata)."""
    entries = []
    for path in notebook_paths(folder):
        m = NAME_RE.match(path.name)
        meta = _read(path).get("metadata", {}).get("latent_walks", {})
        entries.append(Entry(int(m.group(1)) if m else -1, path, meta.get("title", ""), meta.get("summary", "")))
    return entries


# --------------------------------------------------------------------------------------------------
# generated cells


def colab_url(entry: Entry, repo: str) -> str:
    slug = repo.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{slug}/blob/{BRANCH}/notebooks/{entry.file}"


def _navigation(entries: list[Entry], i: int) -> str:
    parts = []
    if i > 0:
        parts.append(f"← previous: [{entries[i - 1].label}]({entries[i - 1].file})")
    parts.append("[course index](../README.md#notebooks)")
    if i + 1 < len(entries):
        parts.append(f"next: [{entries[i + 1].label}]({entries[i + 1].file}) →")
    return " · ".join(parts)


def header_source(entries: list[Entry], i: int, repo: str) -> str:
    entry = entries[i]
    badge = f"[![Open In Colab]({COLAB_BADGE})]({colab_url(entry, repo)})"
    return f"# {entry.label}\n\n{badge}\n\n{_navigation(entries, i)}"


def setup_source(repo: str, package: str) -> str:
    return (
        "# Colab only: install the `helpers` package from the repository. Colab's own torch is kept\n"
        "# (the package's requirements are loose); locally, `make` has installed everything already.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        f'    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "{package} @ git+{repo}"], check=True)'
    )


def footer_source(entries: list[Entry], i: int) -> str:
    return f"---\n\n{_navigation(entries, i)}"


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _find(cells: list[dict], tag: str) -> list[int]:
    return [i for i, c in enumerate(cells) if tag in _tags(c)]


def _new_cell(kind: str, source: str, tag: str, cell_id: str) -> dict:
    cell = {"cell_type": kind, "id": cell_id, "metadata": {"tags": [tag]}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def expected_cells(entries: list[Entry], i: int, repo: str, package: str) -> dict[str, tuple[str, str]]:
    return {
        HEADER: ("markdown", header_source(entries, i, repo)),
        SETUP: ("code", setup_source(repo, package)),
        FOOTER: ("markdown", footer_source(entries, i)),
    }


def apply_generated(nb: dict, entries: list[Entry], i: int, repo: str, package: str) -> dict:
    """A copy of ``nb`` with its generated cells (re)written in place, or inserted where they belong."""
    nb = copy.deepcopy(nb)
    cells = nb["cells"]
    for tag, (kind, source) in expected_cells(entries, i, repo, package).items():
        found = _find(cells, tag)
        for extra in reversed(found[1:]):
            del cells[extra]
        if found:
            cells[found[0]]["source"] = source
            cells[found[0]]["cell_type"] = kind
            continue
        cell = _new_cell(kind, source, tag, tag)
        if tag == HEADER:
            cells.insert(0, cell)
        elif tag == FOOTER:
            cells.append(cell)
        else:
            setup_heading = [j for j, c in enumerate(cells) if c["cell_type"] == "markdown"
                             and _source(c).lstrip().startswith("## Setup")]
            cells.insert(setup_heading[0] + 1 if setup_heading else 1, cell)
    return nb


def strip_notebook(nb: dict) -> dict:
    """A copy without outputs, execution counts, widget state or execution metadata."""
    nb = copy.deepcopy(nb)
    nb.get("metadata", {}).pop("widgets", None)
    nb.get("metadata", {}).pop("papermill", None)
    for cell in nb["cells"]:
        meta = cell.setdefault("metadata", {})
        for key in ("execution", "papermill", "collapsed", "scrolled"):
            meta.pop(key, None)
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return nb


def _dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _normalise_sources(nb: dict) -> dict:
    for cell in nb["cells"]:
        cell["source"] = _source(cell)
    return nb


def write(folder: Path = NOTEBOOK_DIR, pyproject: Path = PYPROJECT) -> list[Path]:
    """Regenerate every notebook's generated cells (and strip outputs); return the files that changed."""
    entries, repo, package = course(folder), repository_url(pyproject), package_name(pyproject)
    changed = []
    for i, entry in enumerate(entries):
        old_text = entry.path.read_text(encoding="utf-8")
        nb = _normalise_sources(json.loads(old_text))
        new_text = _dumps(strip_notebook(apply_generated(nb, entries, i, repo, package)))
        if new_text != old_text:
            _write_atomic(entry.path, new_text)
            changed.append(entry.path)
    return changed


def strip(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    changed = []
    for path in notebook_paths(folder):
        old_text = path.read_text(encoding="utf-8")
        new_text = _dumps(strip_notebook(_normalise_sources(json.loads(old_text))))
        if new_text != old_text:
            _write_atomic(path, new_text)
            changed.append(path)
    return changed


# --------------------------------------------------------------------------------------------------
# the check


def readme_links(readme: Path = README) -> list[str]:
    """Notebook files linked from the table under the README's "## Notebooks" heading."""
    if not readme.is_file():
        return []
    text = readme.read_text(encoding="utf-8")
    m = re.search(r"^## Notebooks\s*$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    if not m:
        return []
    rows = [line for line in m.group(1).splitlines() if line.lstrip().startswith("|")]
    return [name for row in rows for name in re.findall(r"\(notebooks/(\d{2}_[a-z0-9_]+\.ipynb)\)", row)]


def check(folder: Path = NOTEBOOK_DIR, readme: Path = README, pyproject: Path = PYPROJECT) -> list[str]:
    """Every problem found, as readable lines (empty: all good)."""
    paths = notebook_paths(folder)
    if not paths:
        return [f"no notebooks in {folder}"]
    problems = _check_numbering(paths)
    entries, repo, package = course(folder), repository_url(pyproject), package_name(pyproject)
    for i, entry in enumerate(entries):
        try:
            nb = _normalise_sources(_read(entry.path))
        except (json.JSONDecodeError, OSError) as err:
            problems.append(f"{entry.file}: not readable JSON ({err})")
            continue
        problems += _check_notebook(nb, entry, entries, i, repo, package)
    return problems + _check_readme(entries, folder, readme)


def _check_numbering(paths: list[Path]) -> list[str]:
    problems, numbers = [], []
    for path in paths:
        m = NAME_RE.match(path.name)
        if not m:
            problems.append(f"{path.name}: name must look like NN_lowercase_words.ipynb")
        else:
            numbers.append(int(m.group(1)))
    if numbers and sorted(numbers) != list(range(1, len(numbers) + 1)):
        problems.append(f"numbering must run 01..{len(numbers):02d} without gaps or repeats, got "
                        f"{', '.join(f'{n:02d}' for n in sorted(numbers))}")
    return problems


_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)


def _check_display_math(name: str, cells: list[dict]) -> list[str]:
    """Every ``$$ … $$`` stands as a paragraph of its own. Inside a paragraph, the site's MyST parser pairs the
    dollars differently from Jupyter, and the prose between two equations is typeset as one long formula."""
    problems = []
    for k, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        text = _source(cell)
        for m in _DISPLAY_MATH.finditer(text):
            before, after = text[:m.start()], text[m.end():]
            if (before and not before.endswith("\n\n")) or (after and not after.startswith("\n\n")):
                problems.append(f"{name}: cell {k}: put a blank line before and after $${m.group(1)[:30].strip()}…$$ "
                                "(display math inside a paragraph turns the site's prose into a formula)")
    return problems


def _check_ids(name: str, cells: list[dict]) -> list[str]:
    """Every cell has an id of its own (nbformat 4.5; the site's build fails on a cell without one)."""
    ids = [c.get("id") for c in cells]
    bad = [k for k, c in enumerate(ids) if c is None or ids.count(c) > 1]
    return [f"{name}: every cell needs its own id; cells {bad} have none or a repeated one"] if bad else []


def _check_notebook(nb: dict, entry: Entry, entries: list[Entry], i: int, repo: str, package: str) -> list[str]:
    name, cells, problems = entry.file, nb.get("cells", []), []
    if not entry.title:
        problems.append(f"{name}: metadata.latent_walks.title is missing")
    if not entry.summary:
        problems.append(f"{name}: metadata.latent_walks.summary is missing (the README table uses it)")
    for tag, (kind, source) in expected_cells(entries, i, repo, package).items():
        found = _find(cells, tag)
        if len(found) != 1:
            problems.append(f"{name}: expected one cell tagged {tag!r}, found {len(found)} (run `make badges`)")
        elif _source(cells[found[0]]) != source or cells[found[0]]["cell_type"] != kind:
            problems.append(f"{name}: the {tag!r} cell is stale (run `make badges`)")
    problems += _check_ids(name, cells)
    problems += _check_display_math(name, cells)
    if cells and HEADER not in _tags(cells[0]):
        problems.append(f"{name}: the first cell must be the {HEADER!r} header (title and badge)")
    if cells and FOOTER not in _tags(cells[-1]):
        problems.append(f"{name}: the last cell must be the {FOOTER!r} navigation")
    params = _find(cells, PARAMETERS)
    if len(params) != 1:
        problems.append(f"{name}: expected one code cell tagged 'parameters' (papermill), found {len(params)}")
    elif not re.search(r'^BACKEND\s*=\s*"auto"', _source(cells[params[0]]), flags=re.M):
        problems.append(f'{name}: the parameters cell must set BACKEND = "auto"')
    problems += _check_sections(name, cells)
    if "widgets" in nb.get("metadata", {}):
        problems.append(f"{name}: contains widget state (run `python tools/notebooks.py strip`)")
    for j, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"{name}: cell {j} has outputs (run `python tools/notebooks.py strip`)")
        if cell.get("execution_count") is not None:
            problems.append(f"{name}: cell {j} has an execution count (run `python tools/notebooks.py strip`)")
    return problems


def _check_sections(name: str, cells: list[dict]) -> list[str]:
    problems = []
    markdown = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    for heading in REQUIRED_HEADINGS:
        if not re.search(rf"^{re.escape(heading)}\b", markdown, flags=re.M):
            problems.append(f"{name}: no {heading!r} section")
    refs = [_source(c) for c in cells if c["cell_type"] == "markdown" and _source(c).startswith("## References")]
    if refs and not re.search(r"\]\(https://", refs[0]):
        problems.append(f"{name}: the References section links no paper or source")
    if refs and len(cells) > 1 and _source(cells[-2]) != refs[0]:
        problems.append(f"{name}: the References section must end the notebook (just before the navigation)")
    code = "\n".join(_source(c) for c in cells if c["cell_type"] == "code")
    for needle in REQUIRED_CODE:
        if needle not in code:
            problems.append(f"{name}: the Setup section must call {needle}")
    return problems


def _check_readme(entries: list[Entry], folder: Path, readme: Path) -> list[str]:
    problems = []
    linked = readme_links(readme)
    for entry in entries:
        if entry.file not in linked:
            problems.append(f"README.md: the notebook table (under '## Notebooks') has no row linking "
                            f"notebooks/{entry.file}")
    for name in linked:
        if not (folder / name).is_file():
            problems.append(f"README.md: the notebook table links notebooks/{name}, which does not exist")
    return problems


def readme_table(folder: Path = NOTEBOOK_DIR, pyproject: Path = PYPROJECT) -> str:
    """The README's notebook table, generated from the notebooks' metadata."""
    repo = repository_url(pyproject)
    lines = ["| # | Notebook | What you learn |", "|---|----------|----------------|"]
    for e in course(folder):
        badge = f"[![Open In Colab]({COLAB_BADGE})]({colab_url(e, repo)})"
        lines.append(f"| {e.number:02d} | [{e.title}](notebooks/{e.file}) {badge} | {e.summary} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# execution


KERNEL_NAME = "latent-walks-venv"


@contextlib.contextmanager
def venv_kernel(python: str = sys.executable) -> Iterator[str]:
    """A Jupyter kernel spec for ``python`` (default: this interpreter, i.e. the project's venv), on a
    temporary ``JUPYTER_PATH`` that takes precedence over user-wide kernels; yields its name."""
    old = os.environ.get("JUPYTER_PATH")
    with tempfile.TemporaryDirectory(prefix="lw-kernel-") as tmp:
        spec_dir = Path(tmp) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        spec = {"argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python (latent-walks venv)", "language": "python"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        os.environ["JUPYTER_PATH"] = tmp if not old else os.pathsep.join([tmp, old])
        try:
            yield KERNEL_NAME
        finally:
            if old is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = old


def execute(
    notebook: Path,
    out_dir: Path,
    *,
    backend: str = "teaching",
    parameters: dict | None = None,
    cwd: Path | None = None,
    kernel: str | None = None,
    timeout: int = 600,
) -> tuple[Path, float]:
    """Run ``notebook`` top to bottom on a fresh kernel with papermill; return (executed copy, seconds).

    The executed copy goes to ``out_dir/<name>.ipynb`` (never into notebooks/); the kernel runs in ``cwd``
    (default ``out_dir``), so the notebook's ``outputs/`` folder lands there too. ``kernel=None`` runs this
    interpreter (the venv's python) through :func:`venv_kernel`.
    """
    import papermill

    if kernel is None:
        with venv_kernel() as name:
            return execute(notebook, out_dir, backend=backend, parameters=parameters, cwd=cwd, kernel=name,
                           timeout=timeout)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / notebook.name
    params = {"BACKEND": backend, **(parameters or {})}
    start = time.perf_counter()
    papermill.execute_notebook(
        str(notebook), str(target), parameters=params, kernel_name=kernel, cwd=str(cwd or out_dir),
        progress_bar=False, execution_timeout=timeout, log_output=False,
    )
    seconds = time.perf_counter() - start
    nb = json.loads(target.read_text(encoding="utf-8"))
    if drop_closed_progress_bars(nb):
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return target, seconds


#: The text form of a tqdm bar: "frames:  50%|█████     | 4/8 [...]".
_BAR_TEXT = re.compile(r"^[^\n]*\d+%\|.*\|\s*\d+/\d+")


def drop_closed_progress_bars(nb: dict) -> int:
    """Remove the progress-bar widgets of an executed notebook; return how many.

    The helpers' bars are transient (``leave=False``): in a live session each one vanishes when its work is
    done. An executed copy keeps them as widget outputs without a widget state, which readers show as a
    frozen "0%" bar or an error; removing them leaves what a student sees once a cell has finished.
    """
    removed = 0
    for cell in nb.get("cells", []):
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            text = "".join(data.get("text/plain", ""))
            if "application/vnd.jupyter.widget-view+json" in data and _BAR_TEXT.match(text):
                removed += 1
            else:
                kept.append(out)
        if "outputs" in cell:
            cell["outputs"] = kept
    return removed


HOOK = """#!/bin/sh
# Installed by `python tools/notebooks.py install-hook`: notebooks reach git without outputs or widget state.
if git diff --cached --name-only | grep -q '^notebooks/.*\\.ipynb$'; then
    exec .venv/bin/python tools/notebooks.py check
fi
"""


def install_hook(git_dir: Path = ROOT / ".git") -> int:
    """Write ``.git/hooks/pre-commit`` (never over an existing hook); 0 on success."""
    hook = git_dir / "hooks" / "pre-commit"
    if hook.exists():
        print(f"{hook} exists already; add this line to it instead:\n  .venv/bin/python tools/notebooks.py check",
              file=sys.stderr)
        return 1
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(HOOK)
    hook.chmod(0o755)
    print(f"installed {hook}")
    return 0


# --------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("write", help="(re)generate headers, badges, setup cells and navigation")
    sub.add_parser("check", help="fail when a notebook is stale, incomplete or has outputs")
    sub.add_parser("strip", help="remove outputs, execution counts and widget state")
    sub.add_parser("readme-table", help="print the README's notebook table")
    sub.add_parser("install-hook", help="install a git pre-commit hook that runs `check` (optional)")
    run = sub.add_parser("execute", help="execute notebooks with papermill into a folder")
    run.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook")
    run.add_argument("--backend", default="teaching")
    run.add_argument("--out", type=Path, default=ROOT / "outputs" / "notebooks")
    run.add_argument("--cwd", type=Path, default=None,
                     help="working directory of the kernel, where outputs/ is written (default: the repository root)")
    run.add_argument("--jobs", type=int, default=None,
                     help="notebooks executed at once (default: the cores / each kernel's torch threads)")
    args = parser.parse_args(argv)

    if args.command == "write":
        changed = write()
        print("\n".join(f"updated {p.relative_to(ROOT)}" for p in changed) or "all notebooks up to date")
        return 0
    if args.command == "strip":
        changed = strip()
        print("\n".join(f"stripped {p.relative_to(ROOT)}" for p in changed) or "nothing to strip")
        return 0
    if args.command == "readme-table":
        print(readme_table())
        return 0
    if args.command == "install-hook":
        return install_hook()
    if args.command == "check":
        problems = check()
        for line in problems:
            print(line, file=sys.stderr)
        print(f"{len(problems)} problem(s)" if problems else f"{len(notebook_paths())} notebooks OK")
        return 1 if problems else 0
    notebooks = [p.resolve() for p in args.notebooks] or notebook_paths()
    out = args.out.resolve()
    cwd = (args.cwd or ROOT).resolve()
    return execute_all(notebooks, out, backend=args.backend, cwd=cwd, jobs=args.jobs)


def _execute_one(nb: Path, out: Path, backend: str, cwd: Path) -> str:
    target, seconds = execute(nb, out, backend=backend, cwd=cwd)  # a fresh kernel each
    return f"{nb.name}: {seconds:.1f} s → {target}"


def execute_all(notebooks: list[Path], out: Path, *, backend: str, cwd: Path, jobs: int | None = None) -> int:
    """Execute ``notebooks`` (``jobs`` at once, each on its own kernel); report each; 1 if any failed."""
    from concurrent.futures import ProcessPoolExecutor

    from helpers.devices import cpu_threads

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = max(1, min(len(notebooks), jobs or cores // cpu_threads()))
    failed = 0
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {nb: pool.submit(_execute_one, nb, out, backend, cwd) for nb in notebooks}
        for nb, future in futures.items():
            try:
                print(future.result(), flush=True)
            except Exception as err:  # report every notebook, then fail
                failed += 1
                print(f"FAILED {nb.name} ({backend}): {type(err).__name__}: {str(err).strip()[-2000:]}",
                      file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
