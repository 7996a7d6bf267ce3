"""The interactive explorer (notebook 06) in a real client: JupyterLab on localhost in headless Chromium.

Runs ``tools/browser_check.py``: starts JupyterLab from this venv, opens a copy of
``06_interactive_explorer`` in Debian's Chromium (Playwright, ``executable_path=/usr/bin/chromium``, no browser
downloads), runs all cells from the Run menu, moves the λ slider with the keyboard and checks that the picture
the browser shows changes, then drags the live explorer's λ slider with the mouse and checks that the frame
under it is rendered and shown. Screenshots: ``outputs/browser_explorer.png`` and
``outputs/browser_explorer_live.png``. The backend is the teaching models when their weights ship, otherwise
tiny-random (``LW_BROWSER_BACKEND`` overrides).

Select with ``pytest -m browser`` (``make test-browser``); skipped, with the reason, without Chromium or
Playwright.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tooling import load_tool

ROOT = Path(__file__).resolve().parent.parent
browser_check = load_tool("browser_check")

pytestmark = pytest.mark.browser


def test_prepare_root_sets_backend_and_kernel(tmp_path: Path) -> None:
    import json

    copy = browser_check.prepare_root(tmp_path, "tiny-random")
    nb = json.loads(copy.read_text(encoding="utf-8"))
    params = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert 'BACKEND = "tiny-random"' in "".join(params[0]["source"])
    assert nb["metadata"]["kernelspec"]["name"] == browser_check.KERNEL_NAME
    original = json.loads(browser_check.NOTEBOOK.read_text(encoding="utf-8"))
    assert len(nb["cells"]) == len(original["cells"])  # only the parameters cell differs


def test_explorer_slider_changes_the_frame_in_chromium() -> None:
    why = browser_check.missing_requirements()
    if why:
        print(f"browser test skipped: {why}")
        pytest.skip(why)
    backend = os.environ.get("LW_BROWSER_BACKEND") or browser_check.default_backend()
    if backend != "teaching":
        print(f"browser test: the teaching weights are not shipped yet, running on {backend!r}")
    screenshot = ROOT / "outputs" / "browser_explorer.png"
    result = browser_check.run_check(backend, screenshot=screenshot)
    assert result.frame_after != result.frame_before
    assert result.status_after != result.status_before
    assert screenshot.is_file() and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.live_after != result.live_before, "the live explorer's picture follows its slider"
    assert result.live_status_after != result.live_status_before and "ms/frame" in result.live_status_after
    live_shot = screenshot.with_name("browser_explorer_live.png")
    assert live_shot.is_file() and live_shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"browser test on {backend!r}: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items()))
