"""The course site in a real browser: every page of ``outputs/site/`` opened in headless Chromium.

    python tools/site_check.py                    # checks outputs/site (build it first: make book)
    python tools/site_check.py --site DIR --screenshots outputs/

The site is served from 127.0.0.1 by Python's own HTTP server; Debian's Chromium is driven by Playwright
(``executable_path=/usr/bin/chromium``, as ``tools/browser_check.py`` does) and may not leave the machine:
every request to another host is aborted and reported, so a page that needs the network fails. For every page:

* no console error and no uncaught script error;
* every ``<img>`` has loaded (``naturalWidth > 0``), lazy ones included;
* every internal link resolves to a file of the site, and its ``#anchor`` to an element of that page;
* on every page that shows GIFs, one of them animates (two screenshots of it taken apart differ);
* at a phone's width (375 px) the page does not scroll sideways.

And once: the search page finds "slerp". Screenshots of the landing page and of one notebook page are written
to ``--screenshots``. ``tests/test_site.py`` runs :func:`run_check` after building the site.
"""

from __future__ import annotations

import argparse
import functools
import html
import re
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from toolbox import load_tool  # noqa: E402  (tools/ is not a package)

_bc = load_tool("browser_check")
CHROMIUM_ARGS = _bc.CHROMIUM_ARGS
find_chromium = _bc.find_chromium
missing_requirements = _bc.missing_requirements

SITE = ROOT / "outputs" / "site"
PHONE_WIDTH = 375
#: The page whose screenshot shows a notebook (GIFs, contact sheets, printed numbers).
NOTEBOOK_SHOT = "notebooks/04_prompt_walks.html"


@dataclass
class PageReport:
    path: str
    console_errors: list[str] = field(default_factory=list)
    images: int = 0
    broken_images: list[str] = field(default_factory=list)
    internal_links: int = 0
    broken_links: list[str] = field(default_factory=list)
    gifs: int = 0
    gif_animates: bool | None = None  # None: the page shows no GIF
    phone_overflow_px: int = 0
    external_requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        out = [f"console: {e}" for e in self.console_errors]
        out += [f"image not loaded: {s}" for s in self.broken_images]
        out += [f"broken link: {h}" for h in self.broken_links]
        out += [f"request off the machine: {u}" for u in self.external_requests]
        if self.gif_animates is False:
            out.append(f"none of its {self.gifs} GIF(s) animates")
        if self.phone_overflow_px > 0:
            out.append(f"scrolls sideways by {self.phone_overflow_px} px at {PHONE_WIDTH} px wide")
        return [f"{self.path}: {p}" for p in dict.fromkeys(out)]  # each fault once, seen at either width


@dataclass
class SiteReport:
    pages: list[PageReport]
    search_hits: int
    seconds: float
    screenshots: list[Path]

    def problems(self) -> list[str]:
        out = [p for page in self.pages for p in page.problems()]
        if self.search_hits < 1:
            out.append("search.html: searching for 'slerp' found nothing")
        return out


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # a browser closing a connection early
        pass


def site_pages(site: Path) -> list[str]:
    """Every HTML page of the site a reader can reach (the theme's template fragments under _static aside)."""
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if "_static" not in p.relative_to(site).parts)


def _ids(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return {html.unescape(m) for m in re.findall(r'\sid="([^"]+)"', text)}


def _link_problem(site: Path, href: str, base: str, ids_of: dict[Path, set[str]]) -> str | None:
    """Why an internal link does not resolve, or None when it does."""
    url = urllib.parse.urlsplit(href)
    rel = urllib.parse.unquote(url.path[len(urllib.parse.urlsplit(base).path):])
    target = site / rel
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return f"{href} (no such file)"
    if url.fragment and target.suffix == ".html":
        if target not in ids_of:
            ids_of[target] = _ids(target)
        if urllib.parse.unquote(url.fragment) not in ids_of[target]:
            return f"{href} (no element #{url.fragment})"
    return None


_IMAGES_JS = """async () => {
  for (const img of document.images) img.loading = 'eager';
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline && [...document.images].some(i => !i.complete)) {
    await new Promise(r => setTimeout(r, 50));
  }
  return [...document.images].map(i => [i.currentSrc || i.src, i.complete && i.naturalWidth > 0]);
}"""


def _local_only(base: str, report: PageReport):
    """A route handler that lets requests to the site through and aborts (and records) every other one."""

    def handle(route) -> None:
        url = route.request.url
        if url.startswith(base) or url.startswith("data:"):
            route.continue_()
        else:
            report.external_requests.append(url)
            route.abort()

    return handle


def _gif_animates(page, locator, tries: int = 12, pause_s: float = 0.25) -> bool:
    """Two screenshots of the same GIF element, taken apart, differ (within ``tries`` pauses)."""
    locator.scroll_into_view_if_needed()
    first = locator.screenshot()
    for _ in range(tries):
        time.sleep(pause_s)
        if locator.screenshot() != first:
            return True
    return False


def run_check(site: Path = SITE, *, screenshots: Path | None = ROOT / "outputs") -> SiteReport:
    """Serve ``site``, open every page in headless Chromium and report what a reader would see go wrong."""
    from playwright.sync_api import sync_playwright

    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"no site at {site}: build it first with `make book`")
    start = time.perf_counter()
    server = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    reports: list[PageReport] = []
    shots: list[Path] = []
    ids_of: dict[Path, set[str]] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=find_chromium(), args=list(CHROMIUM_ARGS), headless=True)
            desktop = browser.new_context(viewport={"width": 1280, "height": 900})
            for path in site_pages(site):
                report = PageReport(path)
                reports.append(report)
                page = desktop.new_page()
                page.on("console", lambda m, r=report: m.type == "error" and r.console_errors.append(m.text))
                page.on("pageerror", lambda e, r=report: r.console_errors.append(f"uncaught: {e}"))
                page.route("**/*", _local_only(base, report))
                page.goto(base + path, wait_until="load")
                images = page.evaluate(_IMAGES_JS)
                report.images = len(images)
                report.broken_images = [src for src, ok in images if not ok]
                hrefs = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
                internal = [h for h in hrefs if h.startswith(base)]
                report.internal_links = len(internal)
                for href in sorted(set(internal)):
                    why = _link_problem(site, href, base, ids_of)
                    if why:
                        report.broken_links.append(why)
                gifs = page.locator("img[src$='.gif']")
                report.gifs = gifs.count()
                if report.gifs:
                    report.gif_animates = any(_gif_animates(page, gifs.nth(i)) for i in range(min(report.gifs, 3)))
                if screenshots is not None and path in ("index.html", NOTEBOOK_SHOT):
                    screenshots.mkdir(parents=True, exist_ok=True)
                    name = "site_landing.png" if path == "index.html" else "site_notebook.png"
                    page.evaluate("() => window.scrollTo(0, 0)")
                    page.screenshot(path=str(screenshots / name), full_page=False)
                    shots.append(screenshots / name)
                # the same page on a phone: the layout follows the new width (the theme's breakpoints apply)
                page.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
                page.wait_for_timeout(50)
                report.phone_overflow_px = int(page.evaluate(
                    f"() => document.documentElement.scrollWidth - {PHONE_WIDTH}"))
                page.close()
            page = desktop.new_page()
            page.goto(base + "search.html?q=slerp", wait_until="load")
            try:
                page.wait_for_selector("#search-results ul.search li", timeout=15000)
            except Exception:
                pass
            hits = page.locator("#search-results ul.search li").count()
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return SiteReport(reports, hits, time.perf_counter() - start, shots)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site", type=Path, default=SITE)
    parser.add_argument("--screenshots", type=Path, default=ROOT / "outputs")
    args = parser.parse_args(argv)
    why = missing_requirements()
    if why:
        print(f"site check skipped: {why}", file=sys.stderr)
        return 2
    report = run_check(args.site.resolve(), screenshots=args.screenshots.resolve())
    pages = report.pages
    print(f"{len(pages)} pages in {report.seconds:.1f} s: {sum(p.images for p in pages)} images, "
          f"{sum(p.internal_links for p in pages)} internal links, "
          f"{sum(1 for p in pages if p.gif_animates)} of {sum(1 for p in pages if p.gifs)} pages with GIFs "
          f"animate one, widest phone overflow {max(p.phone_overflow_px for p in pages)} px, "
          f"search 'slerp': {report.search_hits} hit(s)")
    for line in report.problems():
        print(line)
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
