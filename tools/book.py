"""The course as a website: executed notebooks published with Sphinx + myst-nb + sphinx-book-theme, offline.

    python tools/book.py build                 # outputs/site/index.html (make book)
    python tools/book.py build --jobs 1        # notebooks executed one at a time on a cold cache
    python tools/book.py clean-cache           # forget every executed copy

Steps, each in its own function:

1. **Execute** (:func:`execute_missing`): every course notebook and every solutions notebook runs on the
   teaching backend with papermill, as the tests run them. Each executed copy is cached under
   ``outputs/book/cache/`` by a key made of the notebook's *code cells*, the backend and a digest of the
   ``helpers`` package (code and weights): a prose edit keeps the key, so the rebuild reuses the outputs and
   only re-renders the page. ``tests/test_notebooks.py`` and ``tests/test_solutions.py`` store the copies they
   execute on the teaching backend into the same cache, so ``make test`` builds the site without running a
   notebook twice.
2. **Assemble** (:func:`assemble`) a Sphinx source folder, ``outputs/book/src/``: the landing page
   (``book/index.md`` with the notebook table filled in), one page per notebook (the current notebook's cells,
   with the cached code cells' outputs), the solutions, the model cards and an API reference generated from
   the docstrings. Links that leave the site's pages point at the repository on GitHub; widgets become their
   static fallback with one line saying they are live in Jupyter or Colab. Files are only rewritten when their
   text changed, so Sphinx re-reads only what changed.
3. **Build** (:func:`sphinx_build`) the HTML into ``outputs/site/`` with every Sphinx warning an error (a broken
   cross-reference fails the build; a cell error has already failed step 1).

The Sphinx configuration is ``book/conf.py``; ``tests/test_site.py`` opens every page in headless Chromium.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from toolbox import load_tool  # noqa: E402  (tools/ is not a package)

nbtools = load_tool("notebooks")

BOOK = ROOT / "book"
WORK = ROOT / "outputs" / "book"
CACHE = WORK / "cache"
SRC = WORK / "src"
DOCTREES = WORK / "doctrees"
SITE = ROOT / "outputs" / "site"
PACKAGE = ROOT / "helpers"
SOLUTIONS = nbtools.NOTEBOOK_DIR / "solutions"
#: The backend every page is executed on: the one that runs offline, on any laptop.
BACKEND = "teaching"
#: Pages mirror the repository's paths for notebooks; these repository files become other pages.
PAGE_OF = {"README.md": "index.md", "helpers/teaching/README.md": "model-cards.md"}
BADGE_LOCAL = "_static/colab-badge.svg"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
LIVE_NOTE = ("*On this page the sliders and buttons above are a still picture: they are live when you run the "
             "notebook in Jupyter or Colab. Below is their static view.*")
#: Modules of the API reference, in the order of the lesson's data flow (the README's table).
API_MODULES = (
    "helpers.devices", "helpers.backends", "helpers.models", "helpers.pipelines", "helpers.pipeline_info",
    "helpers.embeddings", "helpers.interpolation", "helpers.timeline", "helpers.audio", "helpers.inversion",
    "helpers.unclip", "helpers.morph",
    "helpers.metrics", "helpers.smooth", "helpers.render", "helpers.walks", "helpers.media", "helpers.widgets",
    "helpers.diagrams", "helpers.checks", "helpers.teaching", "helpers.exercises",
)
INTRODUCED = re.compile(r"Introduced\s+in\s+notebooks?\s+(\d\d_[a-z0-9_]+)")


# --------------------------------------------------------------------------------------------------
# 1. execute, with a cache keyed by the code


def book_notebooks() -> list[Path]:
    """The course notebooks, then the solutions notebooks: every page that holds code."""
    return nbtools.notebook_paths() + sorted(SOLUTIONS.glob("[0-9][0-9]_solutions.ipynb"))


def package_digest(package: Path = PACKAGE) -> str:
    """SHA-256 of every file of the ``helpers`` package (code, weights, atlas), by path and content."""
    h = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(path.relative_to(package).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _code_cells(nb: dict) -> list[dict]:
    """The code cells that a reader wrote (not papermill's injected parameters), in order."""
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "injected-parameters" not in nbtools._tags(c)]


def code_sources(nb: dict) -> list[str]:
    """The sources of :func:`_code_cells`."""
    return [nbtools._source(c) for c in _code_cells(nb)]


def cache_key(notebook: Path, backend: str = BACKEND, digest: str | None = None) -> str:
    """What decides a notebook's outputs: its code cells, the backend and the package (not its prose)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    h = hashlib.sha256(json.dumps([code_sources(nb), backend, digest or package_digest()]).encode())
    return h.hexdigest()[:20]


def _entry_name(notebook: Path) -> str:
    rel = notebook.resolve().relative_to(nbtools.NOTEBOOK_DIR.resolve()).with_suffix("")
    return "__".join(rel.parts)


def cached(notebook: Path, *, backend: str = BACKEND, digest: str | None = None, cache: Path = CACHE) -> Path | None:
    """The cached executed copy of ``notebook`` for its current code, or None."""
    path = cache / f"{_entry_name(notebook)}-{cache_key(notebook, backend, digest)}.ipynb"
    return path if path.is_file() else None


def store(notebook: Path, executed: Path, *, backend: str, cache: Path = CACHE,
          digest: str | None = None) -> Path | None:
    """Keep ``executed`` (a papermill copy of ``notebook``) as the cached page outputs; drop older entries.

    Only teaching-backend runs with no error output are kept: they are what the site shows. Returns the
    cache file, or None when the run is not one the site uses.
    """
    if backend != BACKEND:
        return None
    nb = json.loads(executed.read_text(encoding="utf-8"))
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    if any(o.get("output_type") == "error" for o in outputs):
        return None
    source = json.loads(notebook.read_text(encoding="utf-8"))
    if code_sources(nb) != code_sources(source):
        return None  # executed from another version of the notebook
    cache.mkdir(parents=True, exist_ok=True)
    name = _entry_name(notebook)
    target = cache / f"{name}-{cache_key(notebook, backend, digest)}.ipynb"
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{name}-", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(executed.read_bytes())
    os.replace(tmp, target)
    for old in cache.glob(f"{name}-*.ipynb"):
        if old != target:
            old.unlink(missing_ok=True)
    return target


def _execute_into_cache(notebook: Path, digest: str) -> tuple[str, float]:
    with tempfile.TemporaryDirectory(prefix="lw-book-") as tmp:
        executed, seconds = nbtools.execute(notebook, Path(tmp) / "executed", backend=BACKEND, cwd=Path(tmp))
        if store(notebook, executed, backend=BACKEND, digest=digest) is None:
            raise RuntimeError(f"{notebook.name}: the executed copy has an error output")
    return notebook.name, seconds


def execute_missing(notebooks: Iterable[Path], *, jobs: int | None = None) -> dict[str, float]:
    """Execute every notebook whose code has no cached copy (``jobs`` at once); return seconds per notebook.

    A notebook that fails raises with its name and the error: the site is never built from a broken run.
    """
    from helpers.devices import cpu_threads

    digest = package_digest()
    missing = [nb for nb in notebooks if cached(nb, digest=digest) is None]
    if not missing:
        return {}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = max(1, min(len(missing), jobs or cores // cpu_threads()))
    print(f"executing {len(missing)} notebook(s) on the {BACKEND} backend, {jobs} at a time ...", flush=True)
    seconds: dict[str, float] = {}
    failed: list[str] = []
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {nb: pool.submit(_execute_into_cache, nb, digest) for nb in missing}
        for nb, future in futures.items():
            try:
                name, s = future.result()
                seconds[name] = s
                print(f"  {name}: {s:.1f} s", flush=True)
            except Exception as err:  # report every notebook, then fail
                failed.append(f"{nb.name}: {type(err).__name__}: {str(err).strip()[-1500:]}")
    if failed:
        raise RuntimeError("the site is built from notebooks that run; these did not:\n" + "\n".join(failed))
    return seconds


# --------------------------------------------------------------------------------------------------
# 2. assemble the Sphinx source folder


@functools.cache
def repository_url() -> str:
    """The repository's address (``pyproject.toml``), read once."""
    return nbtools.repository_url()


def _site_target(repo_path: str) -> str | None:
    """The site page of a repository file, or None when the site has no page for it."""
    if repo_path in PAGE_OF:
        return PAGE_OF[repo_path]
    if repo_path.startswith("notebooks/") and repo_path.endswith(".ipynb"):
        return repo_path
    return None


_LINK = re.compile(r"(\]\(|src=\")([^)\"\s]+)")


def rewrite_links(text: str, repo_dir: str, page_dir: str) -> str:
    """Rewrite the relative links of a Markdown text that lives at ``repo_dir`` in the repository, for a page
    at ``page_dir`` in the site: links to files that have a page stay internal (relative), any other file of
    the repository becomes its GitHub address, and the Colab badge is the site's own copy."""
    repo = repository_url()

    def one(m: re.Match) -> str:
        opener, target = m.group(1), m.group(2)
        if target == nbtools.COLAB_BADGE:
            return opener + posixpath.relpath(BADGE_LOCAL, page_dir or ".")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            return m.group(0)
        path, _, anchor = target.partition("#")
        repo_path = posixpath.normpath(posixpath.join(repo_dir, path))
        page = _site_target(repo_path)
        if page is not None:
            new = posixpath.relpath(page, page_dir or ".")
        else:
            kind = "tree" if (ROOT / repo_path).is_dir() else "blob"
            new = f"{repo}/{kind}/{nbtools.BRANCH}/{repo_path}"
        return opener + new + (f"#{anchor}" if anchor else "")

    return _LINK.sub(one, text)


def _static_outputs(outputs: list[dict]) -> list[dict]:
    """A cell's outputs as a static page shows them: widgets replaced by one line saying where they are live."""
    kept: list[dict] = []
    noted = False
    for out in outputs:
        data = out.get("data", {})
        if WIDGET_MIME in data:
            if not noted:
                kept.append({"output_type": "display_data", "metadata": {},
                             "data": {"text/markdown": LIVE_NOTE, "text/plain": LIVE_NOTE}})
                noted = True
            continue
        if "text/markdown" in data and "what GitHub and nbviewer show instead" in "".join(data["text/markdown"]):
            continue  # the live note above says it for the site
        kept.append(out)
    return kept


def page_notebook(notebook: Path, executed: Path) -> dict:
    """The page of ``notebook``: its current cells (prose included) with the executed copy's outputs."""
    source = json.loads(notebook.read_text(encoding="utf-8"))
    done = json.loads(executed.read_text(encoding="utf-8"))
    ran = _code_cells(done)
    injected = [c for c in done["cells"] if "injected-parameters" in nbtools._tags(c)]
    if code_sources(done) != code_sources(source):
        raise ValueError(f"{executed} was executed from other code than {notebook}; run `make book` again")
    repo_dir = notebook.resolve().parent.relative_to(ROOT).as_posix()
    cells: list[dict] = []
    code = iter(ran)
    for cell in source["cells"]:
        cell = copy.deepcopy(cell)
        if cell["cell_type"] == "markdown":
            cell["source"] = rewrite_links(nbtools._source(cell), repo_dir, repo_dir)
        elif cell["cell_type"] == "code":
            run = next(code)
            cell["outputs"] = _static_outputs(run.get("outputs", []))
            cell["execution_count"] = run.get("execution_count")
        cells.append(cell)
        if "parameters" in nbtools._tags(cell) and injected:
            shown = copy.deepcopy(injected[0])
            shown["source"] = ("# The parameters this page was executed with (the teaching models, on a CPU)\n"
                               + nbtools._source(shown).replace("# Parameters\n", ""))
            cells.append(shown)
    meta = {k: v for k, v in source.get("metadata", {}).items() if k != "widgets"}
    return {**source, "metadata": meta, "cells": cells}


def _write_if_changed(path: Path, text: str | bytes) -> bool:
    data = text.encode("utf-8") if isinstance(text, str) else text
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def _first_gif(nb: dict) -> bytes | None:
    import base64

    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            gif = out.get("data", {}).get("image/gif")
            if gif:
                return base64.b64decode("".join(gif))
    return None


#: The landing page's animations: (notebook stem, file name, caption), each the notebook's first GIF.
DEMO_GIFS = (
    ("01_diffusion_basics", "reverse_process.gif", "Noise turned into data, step by step (notebook 01)"),
    ("04_prompt_walks", "prompt_walk.gif", "A walk between two prompts (notebook 04)"),
    ("03_unclip_image_interpolation", "unclip_morph.gif", "A morph between two images with unCLIP (notebook 03)"),
)


def landing_page(demos: list[tuple[str, str]]) -> str:
    """``book/index.md`` with the notebook table, the demo animations (file name, caption) and the table of
    contents filled in."""
    entries = nbtools.course()
    rows = ["| # | Notebook | What you learn | Solutions |", "|---|----------|----------------|-----------|"]
    for e in entries:
        sol = SOLUTIONS / f"{e.number:02d}_solutions.ipynb"
        link = f"[solutions](notebooks/solutions/{sol.name})" if sol.is_file() else "—"
        rows.append(f"| {e.number:02d} | [{e.title}](notebooks/{e.file}) | {e.summary} | {link} |")
    gifs = [f"```{{figure}} _static/demo/{name}\n:figclass: lw-demo\n:alt: {caption}\n\n{caption}\n```"
            for name, caption in demos]
    toc = ["```{toctree}", ":caption: Notebooks", ":maxdepth: 1", ":hidden:", ""]
    toc += [f"notebooks/{e.file.removesuffix('.ipynb')}" for e in entries]
    toc += ["```", "", "```{toctree}", ":caption: Solutions", ":maxdepth: 1", ":hidden:", ""]
    toc += [f"notebooks/solutions/{p.stem}" for p in sorted(SOLUTIONS.glob("[0-9][0-9]_solutions.ipynb"))]
    toc += ["```", "", "```{toctree}", ":caption: Reference", ":maxdepth: 1", ":hidden:", "", "model-cards",
            "api/index", "```"]
    text = (BOOK / "index.md").read_text(encoding="utf-8")
    text = text.replace("<!-- notebook-table -->", "\n".join(rows))
    text = text.replace("<!-- demo-gifs -->", "\n\n".join(gifs) if gifs else "")
    return text + "\n" + "\n".join(toc) + "\n"


def _public_functions(module_name: str) -> list[tuple[str, str | None]]:
    """(qualified name, notebook that introduces it) for the public functions and classes of a module."""
    import importlib
    import inspect

    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    found = []
    for name in names:
        obj = getattr(module, name, None)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)) or getattr(obj, "__module__", None) != module_name:
            continue
        m = INTRODUCED.search(inspect.getdoc(obj) or "")
        found.append((f"{module_name}.{name}", m.group(1) if m else None))
    return found


def api_pages() -> dict[str, str]:
    """``api/index.md`` (modules, and the functions each notebook introduces) and one page per module."""
    import importlib

    pages: dict[str, str] = {}
    by_notebook: dict[str, list[str]] = {}
    lines = ["# API reference", "",
             "The `helpers` package, module by module in the order of the lesson's data flow: inputs → "
             "embeddings and latents → an interpolation path → rendered frames → media and widgets. Generated "
             "from the docstrings.", "",
             "| module | what it is for |", "|--------|----------------|"]
    for name in API_MODULES:
        doc = (importlib.import_module(name).__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        lines.append(f"| [`{name}`]({name}.md) | {doc.replace('|', '/')} |")
        pages[f"api/{name}.md"] = (f"# `{name}`\n\n```{{eval-rst}}\n.. automodule:: {name}\n   :members:\n"
                                   f"   :show-inheritance:\n```\n")
        for qualname, nb in _public_functions(name):
            if nb:
                by_notebook.setdefault(nb, []).append(qualname)
    lines += ["", "## Where each function is introduced", ""]
    titles = {e.file.removesuffix(".ipynb"): e.title for e in nbtools.course()}
    for nb in sorted(by_notebook):
        funcs = ", ".join(f"{{py:obj}}`~{q}`" for q in sorted(by_notebook[nb]))
        lines.append(f"- [{nb[:2]} {titles.get(nb, nb)}](../notebooks/{nb}.ipynb): {funcs}")
    lines += ["", "```{toctree}", ":hidden:", ""] + list(API_MODULES) + ["```", ""]
    pages["api/index.md"] = "\n".join(lines)
    return pages


def assemble(src: Path = SRC) -> list[str]:
    """Write the Sphinx source folder from the cache and the repository; return the files that changed."""
    digest = package_digest()
    changed: list[str] = []
    wanted: set[Path] = set()
    pages: dict[str, dict] = {}

    def put(rel: str, text: str | bytes) -> None:
        path = src / rel
        wanted.add(path)
        if _write_if_changed(path, text):
            changed.append(rel)

    for notebook in book_notebooks():
        executed = cached(notebook, digest=digest)
        if executed is None:
            raise RuntimeError(f"{notebook.name} has no executed copy for its current code: run `make book`")
        page = page_notebook(notebook, executed)
        pages[notebook.stem] = page
        rel = notebook.resolve().relative_to(ROOT).as_posix()
        put(rel, json.dumps(page, indent=1, ensure_ascii=False) + "\n")
    for static in sorted(p for p in (BOOK / "_static").rglob("*") if p.is_file()):
        put(static.relative_to(BOOK).as_posix(), static.read_bytes())  # images that pages refer to
    demos = []
    for stem, name, caption in DEMO_GIFS:
        gif = _first_gif(pages[stem]) if stem in pages else None
        if gif is not None:
            put(f"_static/demo/{name}", gif)
            demos.append((name, caption))
    put("index.md", landing_page(demos))
    cards = (PACKAGE / "teaching" / "README.md").read_text(encoding="utf-8")
    put("model-cards.md", rewrite_links(cards, "helpers/teaching", ""))
    for rel, text in api_pages().items():
        put(rel, text)
    for path in (p for p in src.rglob("*") if p.is_file() and p not in wanted):
        path.unlink()  # a page whose notebook is gone
        changed.append(path.relative_to(src).as_posix())
    return changed


# --------------------------------------------------------------------------------------------------
# 3. build


def sphinx_build(src: Path = SRC, out: Path = SITE, doctrees: Path = DOCTREES) -> None:
    """HTML from ``src`` into ``out`` with ``book/conf.py``; any Sphinx warning fails the build."""
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(BOOK), "-d", str(doctrees), "-W",
           "--keep-going", "-q", str(src), str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LW_ROOT": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("sphinx-build failed:\n" + (proc.stderr or proc.stdout).strip()[-6000:])


def build(*, jobs: int | None = None, out: Path = SITE) -> dict[str, float]:
    """Execute what the cache lacks, assemble the pages, build the HTML; return the seconds of each step."""
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    execute_missing(book_notebooks(), jobs=jobs)
    seconds["execute"] = time.perf_counter() - t
    t = time.perf_counter()
    changed = assemble()
    seconds["assemble"] = time.perf_counter() - t
    t = time.perf_counter()
    sphinx_build(out=out)
    seconds["sphinx"] = time.perf_counter() - t
    print(f"{len(changed)} source file(s) changed; site: {out / 'index.html'} "
          f"(execute {seconds['execute']:.1f} s, assemble {seconds['assemble']:.1f} s, "
          f"sphinx {seconds['sphinx']:.1f} s)", flush=True)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="execute (with the cache), assemble and build outputs/site/")
    b.add_argument("--jobs", type=int, default=None, help="notebooks executed at once on a cache miss")
    b.add_argument("--out", type=Path, default=SITE)
    sub.add_parser("clean-cache", help="remove every cached executed notebook")
    args = parser.parse_args(argv)
    if args.command == "clean-cache":
        shutil.rmtree(CACHE, ignore_errors=True)
        print(f"removed {CACHE}")
        return 0
    try:
        build(jobs=args.jobs, out=args.out.resolve())
    except RuntimeError as err:
        print(f"make book failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
