"""The built site in a real browser (headless Chromium): pages load without console errors, every
image has a size, formulas are typeset, and the search finds `gradcheck`.  Screenshots go to
test-artifacts/docs-site/."""
from __future__ import annotations

import pytest

from tests.docs_site.support import ROOT, site_build

ARTIFACTS = ROOT / "test-artifacts" / "docs-site"   # screenshots, kept as test artefacts (ignored by git)
WAIT_S = 30

IMAGES = """
const done = arguments[arguments.length - 1];
Promise.all(Array.from(document.images).map(img => img.decode().catch(() => null))).then(() =>
  done(Array.from(document.images).map(img => [img.src.slice(0, 60), img.naturalWidth, img.naturalHeight])));
"""
TYPESET = """
const done = arguments[arguments.length - 1];
if (!window.MathJax || !window.MathJax.startup) { done(null); }
else { MathJax.startup.promise.then(() => done([document.querySelectorAll('mjx-container').length,
                                                 document.querySelectorAll('mjx-merror').length])); }
"""


def _open(browser, url: str, shot: str) -> None:
    """Load a page, wait for its images, check the console and the images' sizes; save a screenshot
    (and one of the first figure of a notebook)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.get_log("browser")  # forget what earlier pages logged
    browser.get(url)
    browser.set_script_timeout(WAIT_S)
    images = browser.execute_async_script(IMAGES)
    browser.save_screenshot(str(ARTIFACTS / f"{shot}.png"))
    if browser.execute_script("const figure = document.querySelector('.jp-OutputArea img');"
                              "if (figure) { figure.scrollIntoView({block: 'center'}); } return Boolean(figure);"):
        browser.save_screenshot(str(ARTIFACTS / f"{shot}-first-figure.png"))
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"{url}: console errors {errors}"
    empty = [src for src, width, height in images if not (width and height)]
    assert not empty, f"{url}: images of no size: {empty}"


def test_home_page(browser, site_url):
    _open(browser, site_url + "index.html", "index")
    assert "minisnn" in browser.title


@pytest.mark.parametrize("path", site_build.notebooks(), ids=lambda p: p.stem)
def test_notebook_page(browser, site_url, path):
    _open(browser, f"{site_url}tutorials/{path.stem}.html", f"tutorial-{path.stem}")
    typeset = browser.execute_async_script(TYPESET)
    if "$" in path.read_text(encoding="utf-8"):
        assert typeset is not None, f"{path.name}: MathJax did not load"
        formulas, errors = typeset
        assert formulas and not errors, f"{path.name}: {formulas} formulas typeset, {errors} MathJax errors"


@pytest.mark.parametrize("module_name", site_build.API_MODULES)
def test_api_page(browser, site_url, module_name):
    _open(browser, f"{site_url}api/{module_name}.html", f"api-{module_name}")


def test_search_finds_gradcheck(browser, site_url):
    from selenium.webdriver.common.by import By  # the docs extra, as the browser fixture checked
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    _open(browser, site_url + "index.html", "search-before")
    search_box = (By.CSS_SELECTOR, "input.md-search__input")
    box = WebDriverWait(browser, WAIT_S).until(ready.element_to_be_clickable(search_box))
    box.click()
    box.send_keys("gradcheck")
    WebDriverWait(browser, WAIT_S).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".md-search-result__item"))
    results = browser.find_elements(By.CSS_SELECTOR, ".md-search-result__item")
    browser.save_screenshot(str(ARTIFACTS / "search-gradcheck.png"))
    assert any("gradcheck" in r.text.lower() for r in results), [r.text[:80] for r in results]
    links = [a.get_attribute("href") for r in results for a in r.find_elements(By.TAG_NAME, "a")]
    assert any("api/minisnn.html" in link for link in links), f"the search does not lead to the API entry: {links}"
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"console errors while searching: {errors}"
