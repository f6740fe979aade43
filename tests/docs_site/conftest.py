"""The documentation site, built once per test session, served on 127.0.0.1, and a headless Chromium.

The build takes the notebooks executed in fast mode by this session (tests/docs_site/support.py, the
same runs that tests/test_notebooks.py checks), so CI executes each notebook once.  The docs extra
(mkdocs & co, selenium) is required: without it these tests fail and say what to install.  Chromium and
its driver are Debian packages (`apt-get install chromium chromium-driver`); without them the browser
tests are skipped, with that command as the reason.
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import nbclient
import pytest

from tests.docs_site.support import executed, require, site_build

BROWSER_HINT = "apt-get install -y chromium chromium-driver"


@pytest.fixture(scope="session")
def site() -> Path:
    """build/site, built from this session's fast-mode notebook runs with mkdocs --strict."""
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocs_jupyter", "mathjax"):
        require(module)
    try:
        return site_build.build(executed)
    except site_build.SiteBuildError as exc:
        pytest.fail(str(exc), pytrace=False)
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"the site shows every notebook executed, and one does not run (tests/test_notebooks.py "
                    f"names it): {str(exc).strip().splitlines()[-1]}", pytrace=False)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def site_url(site):
    """The built site served by a thread of this process on a free port of 127.0.0.1."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium through Debian's chromedriver, recording the console."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip(f"Chromium and its driver are not installed ({BROWSER_HINT})")
    require("selenium")
    from selenium import webdriver  # the docs extra, checked just above
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium look for a driver on the network
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
