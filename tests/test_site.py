"""The course as a website (``make book``): built offline from the executed notebooks, then opened page by page
in headless Chromium (``tools/site_check.py``).

The build reuses the executed copies that ``tests/test_notebooks.py`` and ``tests/test_solutions.py`` stored in
the book's cache when they ran earlier in the same ``make test``; anything missing is executed here. Select with
``pytest -m site``; the browser part is skipped, with its reason, without Chromium or Playwright.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tooling import load_tool

ROOT = Path(__file__).resolve().parent.parent
book = load_tool("book")
site_check = load_tool("site_check")

pytestmark = pytest.mark.site


@pytest.fixture(scope="module")
def site() -> Path:
    seconds = book.build()
    print("book build: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    return book.SITE


def test_every_notebook_and_solution_has_a_page_with_its_outputs(site: Path) -> None:
    for notebook in book.book_notebooks():
        rel = notebook.relative_to(ROOT / "notebooks").with_suffix(".html")
        page = (site / "notebooks" / rel).read_text(encoding="utf-8")
        source = json.loads(notebook.read_text(encoding="utf-8"))
        title = next(c for c in source["cells"] if c["cell_type"] == "markdown")
        heading = "".join(title["source"]).splitlines()[0].lstrip("# ").strip()
        assert heading.split("·")[-1].strip().split()[0] in page, f"{rel}: its title is missing"
        assert 'class="cell_output' in page, f"{rel}: no outputs were rendered"
        assert "Traceback" not in page and 'class="output traceback' not in page
        # the page was executed on the teaching backend and says so in its parameters cell
        assert "BACKEND" in page and "teaching" in page
    assert (site / "search.html").is_file() and (site / "searchindex.js").is_file()


def test_landing_page_lists_the_course_in_order_with_animations(site: Path) -> None:
    page = (site / "index.html").read_text(encoding="utf-8")
    entries = book.nbtools.course()
    positions = [page.find(f'href="notebooks/{e.file.removesuffix(".ipynb")}.html"') for e in entries]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)
    gifs = re.findall(r'<img[^>]+src="(_images/[^"]+\.gif)"', page)
    assert len(gifs) == len(book.DEMO_GIFS)
    from PIL import Image

    for src in gifs:
        with Image.open(site / src) as im:
            assert getattr(im, "n_frames", 1) > 1, f"{src} is not animated"
    for word in ("Colab", "CPU", "GPU"):
        assert word in page


def test_widgets_are_static_with_a_line_saying_where_they_are_live(site: Path) -> None:
    page = (site / "notebooks" / "06_interactive_explorer.html").read_text(encoding="utf-8")
    assert "live when you run the notebook in Jupyter or Colab" in page
    assert "application/vnd.jupyter.widget-view+json" not in page
    assert re.search(r'<img[^>]+src="[^"]+\.png"', page), "the explorer's static view is a picture"


def test_api_reference_links_functions_to_the_notebook_that_introduces_them(site: Path) -> None:
    page = (site / "api" / "helpers.interpolation.html").read_text(encoding="utf-8")
    assert 'id="helpers.interpolation.slerp"' in page
    assert re.search(r'href="\.\./notebooks/02_slerp_and_latent_geometry\.html"', page), (
        "slerp's docstring names notebook 02; the reference should link it")
    index = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert "helpers.interpolation.slerp" in index


def test_model_cards_page_and_references_that_link_out(site: Path) -> None:
    page = (site / "model-cards.html").read_text(encoding="utf-8")
    assert "Teaching models" in page and "model cards" in page
    for entry in book.nbtools.course():
        html = (site / "notebooks" / entry.file.replace(".ipynb", ".html")).read_text(encoding="utf-8")
        refs = html[html.index('id="references"'):]
        assert re.search(r'<a class="reference external" href="https://', refs), f"{entry.file}: no reference links out"


def test_every_page_works_in_chromium(site: Path) -> None:
    why = site_check.missing_requirements()
    if why:
        print(f"site browser test skipped: {why}")
        pytest.skip(why)
    report = site_check.run_check(site)
    pages = report.pages
    print(f"{len(pages)} pages in {report.seconds:.1f} s; {sum(p.images for p in pages)} images, "
          f"{sum(p.internal_links for p in pages)} internal links, search 'slerp' {report.search_hits} hit(s)")
    assert not report.problems(), "\n".join(report.problems())
    assert len(pages) >= len(book.book_notebooks()) + 3  # the notebooks, the landing page, cards, API
    animated = {p.path for p in pages if p.gif_animates}
    for stem in ("03_unclip_image_interpolation", "04_prompt_walks", "05_circular_noise_walks"):
        assert f"notebooks/{stem}.html" in animated, f"no GIF animates on {stem}"
    assert report.search_hits > 0
    assert all(p.is_file() and p.stat().st_size > 0 for p in report.screenshots) and len(report.screenshots) == 2


def test_the_browser_check_sees_what_a_reader_would_see_go_wrong(tmp_path: Path) -> None:
    """The check itself, on a small site made broken on purpose: each fault is reported, the good page is not."""
    why = site_check.missing_requirements()
    if why:
        pytest.skip(why)
    from PIL import Image

    frames = [Image.new("RGB", (64, 64), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[0].save(tmp_path / "still.gif")
    (tmp_path / "good.html").write_text(
        '<html><head><meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        '<body><img src="moving.gif"><a id="here" href="index.html">home</a><a href="good.html#here">x</a>'
        "</body></html>")
    (tmp_path / "index.html").write_text(
        '<html><head><meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        '<body><img src="missing.png"><img src="still.gif"><a href="nope.html">a</a>'
        '<a href="good.html#nowhere">b</a><img src="https://example.com/x.png">'
        '<div style="width:900px">wide</div><script>console.error("bad thing")</script></body></html>')
    report = site_check.run_check(tmp_path, screenshots=None)
    problems = "\n".join(report.problems())
    for expected in ("index.html: console: bad thing", "index.html: image not loaded: http://127.0.0.1",
                     "missing.png", "broken link: http://127.0.0.1", "nope.html (no such file)",
                     "(no element #nowhere)", "request off the machine: https://example.com/x.png",
                     "none of its 1 GIF(s) animates", "scrolls sideways by", "searching for 'slerp' found nothing"):
        assert expected in problems, f"{expected!r} not reported:\n{problems}"
    assert not [p for p in report.problems() if p.startswith("good.html")]
    assert {p.path: p.gif_animates for p in report.pages}["good.html"] is True
