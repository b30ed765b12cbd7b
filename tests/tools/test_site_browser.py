"""The documentation site as a reader sees it: every page of the built site loaded in headless Chromium
(Debian's chromium and chromium-driver, installed by ``make test``), at 1280 and 1920 px. A page fails when a
table or code block runs past its container or hides part of its content behind a scroll bar, when the page
itself scrolls sideways, when an image does not load, or when a link leads to a missing page or anchor."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None, reason="chromium missing (make test installs Debian's chromium)"
    ),
]

WIDTHS = (1280, 1920)

# What a reader would miss on the page, measured by the browser itself: every table and code block must fit
# its container (no part beyond the content column, none behind a scroll bar), the page must not scroll
# sideways, every image must have loaded; and the ids of the page, for the anchors other pages link to.
MEASURE = """
const view = document.documentElement.clientWidth;
const problems = [];
const name = (el) => el.tagName.toLowerCase() + ' "' + el.textContent.trim().slice(0, 60).replace(/\\s+/g, ' ') + '"';
for (const el of document.querySelectorAll('.rst-content table, .rst-content pre')) {
  const box = el.getBoundingClientRect();
  const column = el.closest('.wy-nav-content') || document.body;
  const right = column.getBoundingClientRect().right;
  if (box.right > right + 1) problems.push(name(el) + ' runs ' + Math.round(box.right - right) + ' px past its column');
  if (el.scrollWidth > el.clientWidth + 1) problems.push(name(el) + ' hides ' + (el.scrollWidth - el.clientWidth) + ' px behind a scroll bar');
  let up = el.parentElement;
  while (up && up !== column) {
    if (up.scrollWidth > up.clientWidth + 1 && getComputedStyle(up).overflowX !== 'visible')
      problems.push(name(el) + ' is clipped by its ' + up.className + ' container');
    up = up.parentElement;
  }
}
if (document.documentElement.scrollWidth > view + 1) problems.push('the page scrolls sideways');
for (const img of document.images) {
  if (!img.complete || img.naturalWidth === 0) problems.push('image ' + img.getAttribute('src') + ' did not load');
}
const links = [...document.querySelectorAll('a[href]')].map((a) => a.href);
const ids = [...document.querySelectorAll('[id]')].map((el) => el.id);
const firstScreen = [...document.images].filter((img) => img.getBoundingClientRect().top < window.innerHeight)
  .map((img) => img.getAttribute('src'));
return {problems, links, ids, firstScreen};
"""


def pages() -> list[str]:
    """Every page of the site's navigation, as its path on the site."""
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    paths = []
    for entry in config["nav"]:
        for page in entry.values():
            paths.append("/" if page == "index.md" else "/" + page.removesuffix(".md") + "/")
    return paths


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The site built as ``make docs`` builds it, served over HTTP on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("site") / "site"
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(folder)],
        cwd=REPO, check=True, capture_output=True,
    )  # fmt: skip
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def visit(browser: object, url: str, width: int) -> dict:
    browser.set_window_size(width, 1000)  # type: ignore[attr-defined]
    browser.get(url)  # type: ignore[attr-defined]
    return browser.execute_script(MEASURE)  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_shows_its_tables_and_code_whole_and_loads_its_images(site, browser, width):
    seen = {page: visit(browser, site + page, width) for page in pages()}
    problems = [f"{page} at {width} px: {problem}" for page, found in seen.items() for problem in found["problems"]]
    assert problems == [], "\n".join(problems)
    # the Performance page leads with its growth chart: on the first screen, loaded (no problem above)
    assert any(src.endswith("performance-growth.svg") for src in seen["/performance/"]["firstScreen"])


def test_every_link_of_the_site_leads_to_a_page_and_anchor_that_exist(site, browser):
    seen = {page: visit(browser, site + page, WIDTHS[0]) for page in pages()}
    ids = {page: set(found["ids"]) for page, found in seen.items()}
    broken = []
    for page, found in seen.items():
        for link in sorted(set(found["links"])):
            target = urllib.parse.urlsplit(link)
            if target.scheme == "mailto" or target.netloc != urllib.parse.urlsplit(site).netloc:
                continue  # outside the site: not the site's to keep
            path = target.path if target.path.endswith("/") or "." in Path(target.path).name else target.path + "/"
            if path not in ids:
                try:
                    urllib.request.urlopen(site + path, timeout=10).close()
                except urllib.error.HTTPError as error:
                    broken.append(f"{page}: {link} ({error.code})")
                continue
            if target.fragment and target.fragment not in ids[path]:
                broken.append(f"{page}: {link} (no such anchor on {path})")
    assert broken == [], "\n".join(broken)
