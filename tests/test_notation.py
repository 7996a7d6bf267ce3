"""One symbol per meaning across the course (CONTRIBUTING.md, "Notation"): t is the diffusion timestep,
λ (``frac``/``fracs`` in code) the interpolation fraction, θ an angle, ε̂ the network's noise prediction."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = (sorted(ROOT.glob("notebooks/[0-9][0-9]_*.ipynb"))
             + sorted(ROOT.glob("notebooks/solutions/[0-9][0-9]_solutions.ipynb")))
PAPER_THETA = "the paper calls this fraction θ; here it is λ"  # notebook 03, once: DALL-E 2's name for λ
NOTATION_CELL = "**Notation used in every notebook**"  # notebook 01 lists every symbol, θ included


def cells(path: Path, kind: str | None = None) -> list[str]:
    return [c["source"] for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
            if kind in (None, c["cell_type"])]


def find(pattern: str, texts: list[str]) -> list[str]:
    return [m.group(0) for text in texts for m in re.finditer(pattern, text)]


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.stem)
def notebook(request) -> Path:
    return request.param


def test_no_theta_subscript_and_no_omega(notebook: Path) -> None:
    """The network is ε̂(x_t, t), never ε_θ; the slerp angle is θ, never Ω."""
    assert not find(r"\\(?:var)?epsilon_\\theta|ε_θ|\\Omega|Ω", cells(notebook))


def test_theta_is_only_an_angle(notebook: Path) -> None:
    """θ appears where it is an angle (slerp in 02, the circle in 05, the live explorer's noise loop in 06), in
    01's notation list, and in 03's one sentence naming the paper's θ; the explorer's walk slider is λ (``.frac``),
    not θ (``.theta``)."""
    texts = cells(notebook)
    assert not find(r"\.theta\b|\bthetas\b", texts)
    if notebook.name.startswith(("02_", "05_", "06_")):
        return
    if notebook.name.startswith("03_unclip"):
        assert sum(t.count(PAPER_THETA) for t in texts) == 1
    texts = [t.replace(PAPER_THETA, "") for t in texts if not t.startswith(NOTATION_CELL)]
    assert not find(r"θ|\\theta\b", texts)


def test_t_is_never_a_fraction(notebook: Path) -> None:
    """Outside notebook 01 (where ``t = 500`` and ``t=0`` are timesteps) no fraction is called t."""
    if notebook.name.startswith("01_"):
        return
    texts = cells(notebook)
    fraction_t = [
        r"\bt ?= ?[01]?\.\d",  # a fraction's value: "t = 0.3", "t=0.50"
        r"\bt = [01]\b(?![.\d])",  # the ends of a walk: "t = 0", "t = 1"
        r"\"t(?:\"|=| \()",  # labels and axis labels: f"t={x:.2f}", set_xlabel("t"), "t (0 = seed A ...)"
        r"\b(?:uniform|re-timed|evenly spaced) t\b|\bt values\b|\bgaps? in t\b",
        r"^\s*t = (?:helpers\.|np\.linspace)",  # a fraction schedule stored as t
        r"\bt_(?:fine|uniform|beta|walk|cos|mix)\b|\bt_value\b",
    ]
    assert not find("|".join(f"(?m:{p})" for p in fraction_t), texts)
    if not notebook.name.startswith("02_"):  # 02's DDIM-inversion section writes timesteps as $t$
        assert not find(r"\$t\b|\$t_k\b|\(t\)|\(1-t\)", cells(notebook, "markdown"))


def test_the_interpolation_helpers_take_frac() -> None:
    tree = ast.parse((ROOT / "helpers" / "interpolation.py").read_text(encoding="utf-8"))
    args = {f.name: [a.arg for a in f.args.args] for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert args["lerp"][2] == args["slerp"][2] == "frac" and args["text_diff"][3] == "fracs"


def test_notebook_01_lists_the_notation_before_the_first_section() -> None:
    texts = cells(ROOT / "notebooks" / "01_diffusion_basics.ipynb", "markdown")
    where = [i for i, t in enumerate(texts) if t.startswith(NOTATION_CELL)]
    first_section = next(i for i, t in enumerate(texts) if t.startswith("## 1."))
    assert len(where) == 1 and where[0] < first_section
    for symbol in ("$t$", r"$\bar\alpha_t$", "$x_t$", r"$\hat\varepsilon$", r"$\lambda", r"$\theta$"):
        assert symbol in texts[where[0]], symbol
