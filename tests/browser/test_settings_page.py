"""The settings page in a browser: an admin changes a retention period; environment settings are
read-only. Offline, with a clean console."""

from playwright.sync_api import expect

from pipelines import hub_settings


def test_it_changes_a_retention_period(offline_page, shoot, admin_user, monkeypatch, settings):
    monkeypatch.setenv("DATAHUB_KEEP_RUNS_DAYS", "45")
    settings.DATAHUB_KEEP_RUNS_DAYS = 45
    page = offline_page
    page.goto("/accounts/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("button[type=submit]")
    page.click("nav.tools >> text=Settings")
    expect(page.locator("h1")).to_have_text("Settings")
    expect(page.locator("#id_keepRunsDays")).to_have_attribute("readonly", "")
    page.fill("#id_keepRunLogsDays", "abc")
    page.click("text=Save settings")
    expect(page.locator("#setting-keepRunLogsDays .field-errors")).to_contain_text("a whole number of days")
    page.fill("#id_keepRunLogsDays", "3")
    page.select_option("#id_runLogLevel", "DEBUG")
    page.click("text=Save settings")
    expect(page.locator(".message.success")).to_have_text("Settings saved.")
    shoot(page, "settings")
    assert hub_settings.value("keepRunLogsDays") == 3 and hub_settings.value("runLogLevel") == "DEBUG"
