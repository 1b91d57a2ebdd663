"""In a real browser: open the review page of a waiting gate, see the held records, click Approve, and watch
the run complete on the page (the decision panel polls the run with htmx) while a real worker process
(``manage.py qcluster`` on the test database) picks the run up and continues it."""

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from gates.models import GateRequest, GateStatus
from runs.models import Run, RunStatus
from tests.gates.conftest import gate, paused, src

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(django_settings.BASE_DIR) / "var" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                       reason=f"Debian's chromium is not installed ({CHROMIUM}); apt-get install chromium"),
]


def in_browser(scenario, timeout=180):
    """Run ``scenario(browser)`` with a chromium of its own, in a thread of its own: Playwright's sync API
    refuses to start where another Playwright (tests/browser's session-wide one) already runs a loop."""
    outcome: dict = {}

    def body():
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists()
                                            else shutil.which("chromium"), args=LAUNCH_ARGS, headless=True)
                try:
                    scenario(browser)
                finally:
                    browser.close()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=body, name="gate-browser", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"the browser scenario took longer than {timeout} s")
    if "error" in outcome:
        raise outcome["error"]


def _database_url() -> str:
    """The test database as a DATABASE_URL, for the worker process."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    scheme = {"postgresql": "postgres", "mysql": "mysql"}[connection.vendor]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"{scheme}://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(settings, media):
    """A real django-q2 worker process on the test database and media folder, stopped after the test."""
    env = {**os.environ, "DATABASE_URL": _database_url(), "DATAHUB_MEDIA_ROOT": str(settings.MEDIA_ROOT),
           "DATAHUB_WORKERS": "1", "DATAHUB_SYNC_TASKS": "false"}
    env.pop("REDIS_URL", None)
    log = open(Path(str(media)).parent / "qcluster.log", "wb")
    proc = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=django_settings.BASE_DIR, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)  # the cluster and the worker processes it started
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    log.close()


def built_in_pipeline(records):
    """Built-in adapters only: the worker process has no test-only registrations."""
    return {"code": "gated", "name": "Pipeline gated", "steps": [
        src(records=records), gate(previewCount=5),
        {"key": "after", "type": "SINK", "adapterCode": "records", "config": {}}], "edges": []}


def session_cookie(live_server, client, user) -> dict:
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return {"name": name, "value": client.cookies[name].value, "url": live_server.url}


def new_page(browser, cookie):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_cookies([cookie])
    return context.new_page()


def test_it_approves_from_the_review_page_and_a_worker_completes_the_run(live_server, client, approver, worker):
    records = [{"sku": f"SKU-{i:03d}", "price": i * 1.5, "note": "<script>window.pwned=1</script>" if i == 0 else ""}
               for i in range(30)]
    run = paused(built_in_pipeline(records))
    src_started = run.step_runs.get(step_key="src").started_at
    cookie = session_cookie(live_server, client, approver)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def scenario(browser):
        from playwright.sync_api import expect

        page = new_page(browser, cookie)
        page.goto(f"{live_server.url}/gates/")
        expect(page.locator("#pending-gates")).to_contain_text(f"#{run.pk}")
        page.screenshot(path=str(SCREENSHOTS / "gate-list.png"), full_page=True)
        page.get_by_role("link", name="Review", exact=True).click()

        expect(page.locator("h1")).to_contain_text("gate")
        table = page.locator("#held-records")
        expect(table).to_contain_text("SKU-000")
        expect(table).to_contain_text("<script>window.pwned=1</script>")  # shown as text, not run
        assert page.evaluate("window.pwned") is None
        expect(page.locator("#gate-record-count")).to_have_text("30")
        page.get_by_role("link", name="Next →").click()  # paging through the held records with htmx
        expect(table.locator("tbody tr").first).to_contain_text("SKU-025")
        page.screenshot(path=str(SCREENSHOTS / "gate-review.png"), full_page=True)

        page.locator("#approve").click()
        expect(page.locator("#gate-status")).to_contain_text("Approved")
        expect(page.locator("#gate-decided-by")).to_have_text("alice")
        # The worker process picks the run up; the decision panel polls until the run has ended.
        expect(page.locator("#gate-run-status")).to_contain_text("Completed", timeout=60_000)
        expect(page.locator("#gate-steps")).not_to_contain_text("Pending")  # refreshed along with it
        page.screenshot(path=str(SCREENSHOTS / "gate-approved.png"), full_page=True)

    in_browser(scenario)
    run = Run.objects.get(pk=run.pk)
    assert run.status == RunStatus.COMPLETED, run.error
    assert GateRequest.objects.get().status == GateStatus.APPROVED
    steps = {s.step_key: s for s in run.step_runs.all()}
    assert steps["after"].records_in == 30 and steps["src"].started_at == src_started  # src did not run again
    assert run.worker and not run.worker.endswith(f":{os.getpid()}")  # continued by the worker process


def test_it_rejects_from_the_review_page_with_a_reason(live_server, client, approver):
    run = paused(built_in_pipeline([{"sku": "A-1"}]))
    cookie = session_cookie(live_server, client, approver)

    def scenario(browser):
        from playwright.sync_api import expect

        page = new_page(browser, cookie)
        page.goto(f"{live_server.url}/gates/{run.pk}/gate/")
        page.locator("#reject-reason").fill("the prices are from last year")
        page.locator("#reject").click()
        expect(page.locator("#gate-status")).to_contain_text("Rejected")
        expect(page.locator("#gate-reason")).to_have_text("the prices are from last year")
        expect(page.locator("#gate-run-status")).to_contain_text("Cancelled")
        page.screenshot(path=str(SCREENSHOTS / "gate-rejected.png"), full_page=True)

    in_browser(scenario)
    assert "the prices are from last year" in Run.objects.get(pk=run.pk).error
