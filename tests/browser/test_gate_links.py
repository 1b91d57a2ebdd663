"""An email's one-click Approve link in a browser: the confirmation page (nothing decided yet), then the
decision. Offline, with a clean console."""

import re

from django.contrib.auth.models import Permission
from django.core import mail
from playwright.sync_api import expect

from gates.models import GateRequest, GateStatus
from tests.browser.conftest import log_in
from tests.gates.conftest import counting, deliver_notices, linear, paused  # noqa: F401 - counting is a fixture


def test_it_approves_from_the_email_link(offline_page, shoot, alice, counting, settings, live_server):  # noqa: F811
    settings.DATAHUB_BASE_URL = live_server.url
    alice.user_permissions.add(Permission.objects.get(content_type__app_label="gates", codename="approve_gate"))
    paused(linear(notifyEmail=[alice.email]))
    deliver_notices()
    [message] = mail.outbox
    approve = re.search(r"Approve in one click: +(\S+)", message.body).group(1)

    page = offline_page
    log_in(page, "alice")
    page.goto(approve)
    expect(page.locator("h1")).to_have_text("Approve gate gate")
    expect(page.locator("#confirm")).to_have_text("✓ Approve 2 records")
    shoot(page, "confirm")
    assert GateRequest.objects.get().status == GateStatus.PENDING
    page.click("#confirm")
    expect(page.locator("#act-done")).to_contain_text("Approved: run")
    shoot(page, "done")
    assert GateRequest.objects.get().status == GateStatus.APPROVED
    page.goto(approve)
    expect(page.locator("#act-decided")).to_contain_text("alice")
