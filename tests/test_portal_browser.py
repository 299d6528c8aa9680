"""The portal in a real browser: headless Chromium runs axe-core on the four kinds of
page (zero WCAG 2.1 A/AA violations), the 适老化 toggles work and are remembered from
page to page, focus is visible, and no page asks for anything outside the site.

Needs Debian's ``chromium`` and ``chromium-driver`` and axe-core from npm (``.ci/run``
installs all three; locally: ``apt-get install -y chromium chromium-driver`` and
``npm install --prefix build/node axe-core``). Outside CI a missing piece skips the
module; in CI it fails, so a broken install cannot pass silently.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from gongkai.cli_preview import serve
from support.portal_site import (
    RELEASE,
    WITH_TABLE,
    WITHDRAWN,
    build_example_site,
)

ROOT = Path(__file__).resolve().parents[1]
AXE = Path(os.environ.get("GONGKAI_AXE", ROOT / "build/node/node_modules/axe-core/axe.min.js"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if not CHROMIUM or not DRIVER:
        return "chromium or chromedriver missing (apt-get install -y chromium chromium-driver)"
    if not AXE.is_file():
        return f"axe-core missing at {AXE} (npm install --prefix build/node axe-core)"
    return None


if (why := _missing()) is not None:
    if os.environ.get("CI"):
        pytest.fail(f"the browser tests must run in CI: {why}", pytrace=False)
    pytest.skip(why, allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

PAGES = {
    "section home": "index.html",
    "index": "openness/result/index.html",
    "item with a table": f"items/{WITH_TABLE}/index.html",
    "withdrawn item": f"items/{WITHDRAWN}/index.html",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return build_example_site(tmp_path_factory.mktemp("portal"))


@pytest.fixture(scope="module")
def base_url(site):
    server = serve(site.out, 0)
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def new_driver() -> webdriver.Chrome:
    """Headless Chromium at 1280×900 that logs every request its pages make, to prove
    none leaves the site."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(options=options, service=Service(DRIVER))


@pytest.fixture(scope="module")
def browser():
    driver = new_driver()
    yield driver
    driver.quit()


def check_standalone_page(page: Path, widths: tuple[int, ...] = (1280, 400)) -> None:
    """A self-contained page (parity, report): no WCAG 2.1 A/AA violation at any of
    ``widths`` (a wide table scrolls inside its region on a phone), and no request for
    anything beyond the file itself."""
    driver = new_driver()
    try:
        for width in widths:
            driver.set_window_size(width, 900)
            driver.get(page.as_uri())
            violations = _axe(driver)
            assert not violations, [f"{v['id']}: {v['help']}" for v in violations]
        requests = [u for u in _requests(driver) if not u.startswith("file:")]
        assert requests == []
    finally:
        driver.quit()


def _axe(browser) -> list[dict]:
    browser.execute_script(AXE.read_text("utf-8"))
    result = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: "tag",
            values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
          .then(r => done(JSON.stringify(r.violations)))
          .catch(e => done(JSON.stringify([{id: "axe-error", help: String(e), nodes: []}])));
        """
    )
    return json.loads(result)


def _requests(browser) -> list[str]:
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


@pytest.mark.parametrize("kind", list(PAGES))
def test_axe_finds_no_wcag21_aa_violation(browser, base_url, kind):
    browser.get(base_url + PAGES[kind])
    violations = _axe(browser)
    summary = [
        f"{v['id']}: {v['help']} ({[n.get('target') for n in v['nodes']][:3]})" for v in violations
    ]
    assert not violations, summary


@pytest.mark.parametrize("kind", ["section home", "item with a table"])
def test_axe_in_high_contrast_and_largest_font(browser, base_url, kind):
    browser.get(base_url + "index.html")
    browser.execute_script(
        "localStorage.setItem('gongkai-portal', JSON.stringify({font: 'xlarge', contrast: true}))"
    )
    browser.get(base_url + PAGES[kind])
    assert "contrast" in browser.find_element(By.TAG_NAME, "html").get_attribute("class")
    assert not _axe(browser)
    browser.execute_script("localStorage.clear()")


def test_toggles_change_the_page_and_are_remembered_on_the_next(browser, base_url):
    browser.get(base_url + "index.html")
    browser.execute_script("localStorage.clear()")
    browser.get(base_url + "index.html")
    html = browser.find_element(By.TAG_NAME, "html")
    normal = browser.execute_script("return getComputedStyle(document.body).fontSize")
    browser.find_element(By.CSS_SELECTOR, "[data-font=large]").click()
    browser.find_element(By.CSS_SELECTOR, "[data-contrast]").click()
    assert "font-large" in html.get_attribute("class")
    larger = browser.execute_script("return getComputedStyle(document.body).fontSize")
    assert float(larger.removesuffix("px")) > float(normal.removesuffix("px"))
    background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(0, 0, 0)"
    # Another page: the choice is still in force, and the buttons say so.
    browser.get(base_url + f"items/{RELEASE}/index.html")
    html = browser.find_element(By.TAG_NAME, "html")
    assert {"font-large", "contrast"} <= set(html.get_attribute("class").split())
    pressed = browser.find_element(By.CSS_SELECTOR, "[data-font=large]")
    assert pressed.get_attribute("aria-pressed") == "true"
    assert (
        browser.find_element(By.CSS_SELECTOR, "[data-contrast]").get_attribute("aria-pressed")
        == "true"
    )
    size = browser.execute_script("return getComputedStyle(document.body).fontSize")
    assert size == larger
    line = browser.execute_script(
        "const s = getComputedStyle(document.body); "
        "return parseFloat(s.lineHeight) / parseFloat(s.fontSize)"
    )
    assert line >= 1.3
    browser.find_element(By.CSS_SELECTOR, "[data-font=normal]").click()
    browser.find_element(By.CSS_SELECTOR, "[data-contrast]").click()
    assert browser.execute_script("return localStorage.getItem('gongkai-portal')") == (
        '{"font":"normal","contrast":false}'
    )


def test_keyboard_reaches_the_skip_link_first_and_focus_is_visible(browser, base_url):
    browser.get(base_url + f"items/{RELEASE}/index.html")  # links to its interpretation
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    active = browser.switch_to.active_element
    assert active.get_attribute("class") == "skip-link"
    outline = browser.execute_script(
        "const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]"
    )
    assert outline[0] != "none" and outline[1] != "0px"
    top = browser.execute_script("return document.activeElement.getBoundingClientRect().top")
    assert top >= 0  # the skip link comes into view when focused
    active.send_keys(Keys.ENTER)
    assert browser.switch_to.active_element.get_attribute("id") == "main"
    # The next Tab goes on inside the main content, to its first link or control.
    browser.switch_to.active_element.send_keys(Keys.TAB)
    assert browser.execute_script(
        "return document.getElementById('main').contains(document.activeElement)"
    )


def test_search_finds_by_title_and_document_number(browser, base_url):
    browser.get(base_url + "search.html?q=" + "金建发〔2026〕41号")
    results = browser.find_elements(By.CSS_SELECTOR, "#search-results a")
    assert [r.text for r in results] == ["金堂县2027年度农村危房改造实施方案"]
    assert not browser.find_element(By.ID, "search-fallback").is_displayed()
    browser.get(base_url + "search.html?q=危房")
    titles = {r.text for r in browser.find_elements(By.CSS_SELECTOR, "#search-results a")}
    assert len(titles) >= 3
    results = browser.find_elements(By.CSS_SELECTOR, "#search-results a")
    results[0].click()
    assert "/items/" in browser.current_url


def test_no_page_requests_anything_outside_the_site(browser, base_url):
    browser.get_log("performance")  # drop what earlier tests logged
    for path in [*PAGES.values(), "search.html?q=公示", "feeds/all.xml"]:
        browser.get(base_url + path)
    requested = _requests(browser)
    assert requested
    outside = [u for u in requested if not u.startswith(base_url) and not u.startswith("data:")]
    assert not outside
