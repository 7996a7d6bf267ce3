"""The interactive explorer in a real client: JupyterLab on localhost, driven in headless Chromium.

    python tools/browser_check.py                      # backend: teaching if its weights ship, else tiny-random
    python tools/browser_check.py --backend teaching --screenshot outputs/browser_explorer.png

What it does, like a student would: starts JupyterLab from this interpreter (the project's venv) on 127.0.0.1
with a token and a temporary root folder holding a copy of ``notebooks/06_interactive_explorer.ipynb`` (its
parameters cell set to the chosen backend), opens the notebook in Debian's Chromium driven by Playwright
(``executable_path=/usr/bin/chromium``; Playwright's own browser downloads are never used), runs every cell
from the *Run* menu, presses → on the prompt explorer's λ slider and checks that the picture the browser shows
changes (the bytes behind the ``<img>``, not only its URL), then drags the live explorer's λ slider with the
mouse and checks that the frame rendered under it arrives, with its time per frame in the status line.
Screenshots of both apps are written at the end (the live one beside the first, ``*_live.png``).

Everything the server and the kernel write (settings, workspaces, runtime files, the notebook's outputs/) goes
to the temporary folder; the user's own Jupyter configuration and kernels are not used. ``tests/test_browser.py``
runs :func:`run_check`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from helpers.backends import TEACHING

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "06_interactive_explorer.ipynb"
TEACHING_WEIGHTS = ROOT / "helpers" / "teaching" / "weights"
#: The models notebook 06 loads on BACKEND="teaching" (text-to-image and unCLIP explorers).
TEACHING_MODELS = tuple(TEACHING.values())
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
#: Headless on a machine with a closed network: no GPU, no sandbox (root), no background connections.
CHROMIUM_ARGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
)
KERNEL_NAME = "latent-walks-browser"


class BrowserCheckError(RuntimeError):
    """The explorer did not behave in the browser (the message says which step failed and what was seen)."""


@dataclass
class Result:
    backend: str
    frame_before: str  # sha256 of the PNG bytes the <img> showed before the key press
    frame_after: str
    status_before: str
    status_after: str
    screenshot: Path | None
    live_before: str = ""  # the live explorer's picture before the drag, and after it
    live_after: str = ""
    live_status_before: str = ""
    live_status_after: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# what is needed, and why it is missing


def find_chromium() -> str | None:
    """Debian's Chromium (``$CHROMIUM`` first), or None."""
    for candidate in (os.environ.get("CHROMIUM"), *CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing_requirements() -> str | None:
    """Why the check cannot run here (a sentence), or None when Chromium and Playwright are both present."""
    if find_chromium() is None:
        return ("Debian's chromium is not installed (/usr/bin/chromium): `apt-get install chromium`, "
                "or let `make test-browser` install it (as root, where apt-get is available)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed in this venv (`make venv` installs the lock file)"
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return "jupyterlab is not installed in this venv (`make venv`)"
    return None


def default_backend() -> str:
    """``teaching`` when both teaching models notebook 06 needs are shipped, else ``tiny-random``."""
    if all((TEACHING_WEIGHTS / name).is_dir() for name in TEACHING_MODELS):
        return "teaching"
    return "tiny-random"


# --------------------------------------------------------------------------------------------------
# the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_root(root: Path, backend: str, notebook: Path = NOTEBOOK) -> Path:
    """Copy ``notebook`` into ``root`` with ``BACKEND = backend`` and this project's kernel; return the copy."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(params) != 1:
        raise BrowserCheckError(f"{notebook.name}: expected one cell tagged 'parameters', found {len(params)}")
    source = "".join(params[0]["source"]) if isinstance(params[0]["source"], list) else params[0]["source"]
    new, n = re.subn(r'^BACKEND\s*=\s*"[^"]*"', f'BACKEND = "{backend}"', source, count=1, flags=re.M)
    if n != 1:
        raise BrowserCheckError(f"{notebook.name}: the parameters cell has no line BACKEND = \"...\"")
    params[0]["source"] = new
    nb.setdefault("metadata", {})["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python (latent-walks venv)",
                                                   "language": "python"}
    target = root / notebook.name
    target.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")
    return target


def _write_lab_settings(settings: Path) -> None:
    """No news or update pop-ups; every cell in the DOM (no virtual scrolling), so the widgets are reachable."""
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                             "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for name, value in files.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@contextlib.contextmanager
def jupyterlab(root: Path, work: Path, *, python: str = sys.executable, timeout: float = 60) -> Iterator[str]:
    """JupyterLab serving ``root`` on 127.0.0.1 (a free port, a random token); yields the base URL with token."""
    port, token = free_port(), secrets.token_hex(16)
    kernel_dir = work / "data" / "kernels" / KERNEL_NAME
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (latent-walks venv)", "language": "python"}))
    _write_lab_settings(work / "settings")
    env = {
        **os.environ,
        "JUPYTER_PATH": str(work / "data"), "JUPYTER_CONFIG_DIR": str(work / "config"),
        "JUPYTER_RUNTIME_DIR": str(work / "runtime"), "IPYTHONDIR": str(work / "ipython"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "PYTHONUNBUFFERED": "1",
    }
    log = open(work / "jupyterlab.log", "wb")  # noqa: SIM115 (closed below)
    cmd = [
        python, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={work / 'settings'}", f"--LabApp.workspaces_dir={work / 'workspaces'}",
        "--LabApp.news_url=", "--ServerApp.terminals_enabled=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI and containers run as root
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise BrowserCheckError(f"JupyterLab exited with {proc.returncode}:\n{_tail(work / 'jupyterlab.log')}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BrowserCheckError(f"JupyterLab did not answer within {timeout:.0f} s:\n"
                                        f"{_tail(work / 'jupyterlab.log')}")
            time.sleep(0.3)
        yield f"{base}/lab/tree/{{path}}?token={token}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------------------------------
# the browser

_ALL_CELLS_RUN = """() => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
  const prompts = cells.map(c => (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '');
  return {total: cells.length, done: prompts.filter(p => /\\[\\d+\\]/.test(p)).length,
          busy: prompts.filter(p => p.includes('*')).length};
}"""

_ERRORS = """() => [...document.querySelectorAll('.jp-OutputArea-output')]
  .map(o => o.textContent).filter(t => /Traceback|Error:/.test(t)).map(t => t.slice(-1500))"""

_IMAGE_BYTES = """async (img) => {
  if (!img.complete || img.naturalWidth === 0) return null;
  const buf = await (await fetch(img.src)).arrayBuffer();
  const hash = await crypto.subtle.digest('SHA-256', buf);
  return [...new Uint8Array(hash)].map(b => b.toString(16).padStart(2, '0')).join('');
}"""


def _wait(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BrowserCheckError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def drive(url: str, chromium: str, *, screenshot: Path | None, run_timeout: float = float(os.environ.get("LW_BROWSER_RUN_TIMEOUT", 150))) -> Result:
    """Open the notebook at ``url``, run all cells, move the λ slider, compare the frames, take the screenshot."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    with sync_playwright() as p:
        # A fresh, temporary profile (Playwright's own --user-data-dir) on every launch.
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(url)
            page.locator(".jp-Notebook .jp-CodeCell").first.wait_for()
            # JupyterLab asks which kernel to start (preselected: the notebook's own, this venv): accept it.
            dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
            with contextlib.suppress(PlaywrightTimeout):
                dialog.wait_for(timeout=10_000)
            if dialog.count():
                dialog.locator("button.jp-mod-accept").click()
            page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"latent-walks venv\) \| Idle")).first \
                .wait_for(timeout=60_000)
            seconds["lab_open"] = time.perf_counter() - t0

            t1 = time.perf_counter()
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

            def finished():
                state = page.evaluate(_ALL_CELLS_RUN)
                errors = page.evaluate(_ERRORS)
                if errors:
                    raise BrowserCheckError("a cell failed in the browser:\n" + "\n---\n".join(errors))
                return state["total"] > 0 and state["done"] == state["total"] and not state["busy"]

            try:
                _wait(finished, run_timeout, "every cell to run (Run ▸ Run All Cells)", interval=0.5)
            except BrowserCheckError as err:
                raise BrowserCheckError(f"{err}; cells: {page.evaluate(_ALL_CELLS_RUN)}") from None
            seconds["run_all"] = time.perf_counter() - t1

            # The prompt explorer: the innermost widget box holding the "prompt A" control, and its λ slider.
            app = page.locator(".widget-vbox", has=page.locator(".widget-label", has_text=re.compile(r"^prompt A$")))
            app = app.last
            app.wait_for()
            frac_slider = app.locator(".widget-hslider", has=page.locator(".widget-label", has_text=re.compile(r"^λ$")))
            img = app.locator("img").first
            status = app.locator(".widget-html").last
            img.scroll_into_view_if_needed()
            first = _wait(lambda: img.evaluate(_IMAGE_BYTES), 30, "the explorer's picture to load")
            # Two different noises at the ends of the walk (type seed B = SEED + 1, then Enter), so neighbouring
            # frames differ even on a backend whose pictures barely depend on the prompt (tiny-random).
            seed_b = app.locator(".widget-inline-hbox", has=page.locator(".widget-label", has_text="seed B"))
            box = seed_b.locator("input").first
            box.fill(str(int(box.input_value()) + 1))
            box.press("Enter")
            before = _wait(lambda: (h := img.evaluate(_IMAGE_BYTES)) and h != first and h, 60,
                           "the picture to change after typing a new seed B")
            status_before = status.inner_text()
            readout_before = frac_slider.first.locator(".widget-readout").inner_text()

            t2 = time.perf_counter()
            frac_slider.first.locator(".noUi-handle").first.focus()
            page.keyboard.press("ArrowRight")
            after = _wait(lambda: (h := img.evaluate(_IMAGE_BYTES)) and h != before and h, 30,
                          "the picture to change after pressing → on the λ slider")
            _wait(lambda: status.inner_text() != status_before, 10, "the status line to follow λ")
            seconds["slider_to_new_frame"] = time.perf_counter() - t2
            readout_after = frac_slider.first.locator(".widget-readout").inner_text()
            if readout_after == readout_before:
                raise BrowserCheckError(f"the λ readout did not move (still {readout_after!r})")
            status_after = status.inner_text()

            if screenshot is not None:
                app.scroll_into_view_if_needed()
                _write_atomic(screenshot, page.screenshot())
            live = _drive_live(page, seconds)
            if screenshot is not None:
                _write_atomic(screenshot.with_name(screenshot.stem + "_live.png"), page.screenshot())
        except Exception:
            if screenshot is not None:  # what the browser showed when it went wrong
                with contextlib.suppress(Exception):
                    _write_atomic(screenshot.with_name(screenshot.stem + "_failed.png"), page.screenshot())
            raise
        finally:
            browser.close()
    return Result(backend="", frame_before=before, frame_after=after, status_before=status_before,
                  status_after=status_after, screenshot=screenshot, seconds=seconds, **live)


def _drive_live(page, seconds: dict[str, float]) -> dict[str, str]:
    """Drag the live explorer's λ slider (the app with a θ slider) across its track with the mouse: every position
    passed is a request, and the frame of the last one must arrive, with its ms/frame in the status line."""
    label = page.locator(".widget-label", has_text=re.compile(r"^θ$"))
    app = page.locator(".widget-vbox", has=label).last
    app.wait_for()
    frac_slider = app.locator(".widget-hslider", has=page.locator(".widget-label", has_text=re.compile(r"^λ$")))
    img = app.locator("img").first
    status = app.locator(".widget-html").last
    frac_slider.first.scroll_into_view_if_needed()
    before = _wait(lambda: img.evaluate(_IMAGE_BYTES), 30, "the live explorer's picture to load")
    status_before = status.inner_text()
    readout_before = frac_slider.first.locator(".widget-readout").inner_text()
    track = frac_slider.first.locator(".noUi-base").bounding_box()
    handle = frac_slider.first.locator(".noUi-handle").first.bounding_box()
    if not track or not handle:
        raise BrowserCheckError("the live explorer's λ slider has no box on the page")
    y = handle["y"] + handle["height"] / 2
    t0 = time.perf_counter()
    page.mouse.move(handle["x"] + handle["width"] / 2, y)
    page.mouse.down()
    target = track["x"] + 0.3 * track["width"]  # the notebook leaves λ at 1: drag it back to about 0.3
    page.mouse.move(target, y, steps=12)
    page.mouse.up()
    after = _wait(lambda: (h := img.evaluate(_IMAGE_BYTES)) and h != before and h, 60,
                  "the live picture to change after dragging its λ slider")
    readout_after = frac_slider.first.locator(".widget-readout").inner_text()
    if readout_after == readout_before:
        raise BrowserCheckError(f"the live λ readout did not move (still {readout_after!r})")
    # The frame shown last is the one under the handle: the status line names the readout's λ.
    _wait(lambda: f"λ = {readout_after}" in status.inner_text(), 60,
          f"the live status line to show the frame of λ = {readout_after}")
    seconds["live_drag_to_frame"] = time.perf_counter() - t0
    status_after = status.inner_text()
    if "ms/frame" not in status_after:
        raise BrowserCheckError(f"the live status line shows no time per frame: {status_after!r}")
    app.scroll_into_view_if_needed()
    return {"live_before": before, "live_after": after, "live_status_before": status_before,
            "live_status_after": status_after}


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def run_check(backend: str | None = None, *, screenshot: Path | None = ROOT / "outputs" / "browser_explorer.png",
              workdir: Path | None = None) -> Result:
    """The whole check (see the module docstring); raises :class:`BrowserCheckError` when a step fails."""
    why = missing_requirements()
    if why:
        raise BrowserCheckError(why)
    backend = backend or default_backend()
    with contextlib.ExitStack() as stack:
        work = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lw-browser-")))
        root = work / "root"
        root.mkdir(parents=True)
        notebook = prepare_root(root, backend)
        t0 = time.perf_counter()
        with jupyterlab(root, work / "jupyter") as url_template:
            started = time.perf_counter() - t0
            result = drive(url_template.format(path=notebook.name), find_chromium(), screenshot=screenshot)
        result.backend = backend
        result.seconds = {"server_start": started, **result.seconds, "total": time.perf_counter() - t0}
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default=None, help="teaching, tiny-random, ... (default: teaching if shipped)")
    parser.add_argument("--screenshot", type=Path, default=ROOT / "outputs" / "browser_explorer.png")
    args = parser.parse_args(argv)
    why = missing_requirements()
    if why:
        print(f"browser check skipped: {why}")
        return 0
    result = run_check(args.backend, screenshot=args.screenshot)
    print(f"backend {result.backend}: λ moved, status {result.status_before!r} -> {result.status_after!r}")
    print(f"live explorer: {result.live_status_before!r} -> {result.live_status_after!r}")
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))
    print(f"screenshot: {result.screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
