"""Browser tests: Playwright for Python driving Debian's chromium against pytest-django's live server.

One browser for this package's tests; a fresh context (cookies, storage) per test. Screenshots go to
``var/screenshots/`` (kept by CI as artifacts). Without /usr/bin/chromium every test here is skipped and
says why; scripts/test installs it.
"""

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
# Flags for running as root in a container with a closed network (see the machine notes in the README).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOOPBACK = {"127.0.0.1", "localhost"}  # pytest-django's live server answers at localhost
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                " at " + e.sourceFile + ":" + e.lineNumber + " " + (e.sample || ""));
});
"""
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.browser)
            if not os.path.exists(CHROMIUM):
                item.add_marker(pytest.mark.skip(reason=f"{CHROMIUM} is missing: apt-get install chromium"))


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="package")
def browser():
    # Package scope, not session: Playwright's sync API allows one instance per thread at a time, and
    # other test packages (tests/gates) start their own after this one has finished.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, base_url=live_server.url)
    context.set_default_timeout(10_000)
    # Every browser test also proves the pages keep to the Content-Security-Policy: chromium reports a
    # violation as a console error and as a securitypolicyviolation event (logged here with its details).
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.csp_violations = []
    page.on("console", lambda msg: page.csp_violations.append(f"{page.url}: {msg.text}")
            if "Content Security Policy" in msg.text or msg.text.startswith("CSP violation") else None)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not page.csp_violations, "Content-Security-Policy violations:\n" + "\n".join(page.csp_violations)


@pytest.fixture
def offline_page(page):
    """``page`` as if the machine had no network: a request to any host but 127.0.0.1 is refused and
    recorded (the live server is on localhost), and so is every console error; the test fails at the end if there was either."""
    outside: list[str] = []
    console_errors: list[str] = []

    def route(route):
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.context.route("**/*", route)
    page.on("console", lambda msg: console_errors.append(f"{msg.text} ({page.url})") if msg.type == "error" else None)
    yield page
    assert not outside, f"requests left 127.0.0.1: {outside}"
    assert not console_errors, f"console errors: {console_errors}"


@pytest.fixture
def shoot(request):
    """shoot(page, "name"): a full-page screenshot var/screenshots/<test>-<n>-<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name.removeprefix("test_it_"))
    count = [0]

    def take(page, name: str) -> Path:
        count[0] += 1
        path = SCREENSHOTS / f"{test}-{count[0]:02d}-{name}.png"
        page.evaluate("window.scrollTo(0, 0)")  # sticky panels sit where they would at the top
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def log_in(page, username: str):
    from tests.conftest import PASSWORD

    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
