"""Connections and secrets in a browser: store a secret, create an HTTP connection naming it, test it
against a local server, see where the secret is used. Offline, with a clean console."""

from playwright.sync_api import expect
from pytest_httpserver import HTTPServer

from tests.browser.conftest import log_in
from tests.credentials.conftest import SECRET_VALUE, olga  # noqa: F401 - the persona fixture


def test_it_manages_a_connection_and_its_secret(offline_page, shoot, olga, settings,  # noqa: F811
                                                 httpserver: HTTPServer):
    settings.DATAHUB_HTTP_ALLOW = ["127.0.0.1"]
    httpserver.expect_request("/v1", headers={"Authorization": f"Bearer {SECRET_VALUE}"}).respond_with_json({})
    page = offline_page
    log_in(page, "olga")
    page.click("nav >> text=Connections")
    page.click("nav.tabs >> text=Secrets")
    page.click("text=+ New secret")
    page.fill("#id_code", "shop-token")
    page.fill("#id_description", "the shop API's token")
    page.fill("#id_value", SECRET_VALUE)
    page.click("text=Store secret")
    expect(page.locator(".message.success")).to_contain_text("Its value will not be shown again")
    assert page.input_value("#id_value") == ""

    page.click("nav.tabs >> text=Connections")
    page.click("text=+ New connection")
    page.fill("#id_code", "shop-api")
    page.fill("#id_name", "Shop API")
    page.select_option("#id_type", "HTTP")
    page.fill("#id_config", '{"password": "typed-in"}')
    page.click("text=Create connection")
    expect(page.locator(".field-errors")).to_contain_text("a credential may not be written into a connection")
    shoot(page, "refused")
    page.fill("#id_config", f'{{"baseUrl": "{httpserver.url_for("/v1")}", '
                            '"auth": {"type": "BEARER", "secretCode": "shop-token"}}')
    page.click("text=Create connection")
    expect(page.locator("h1")).to_have_text("shop-api")
    page.click("#test-connection")
    expect(page.locator("#test-result")).to_contain_text("answered HTTP 200")
    shoot(page, "tested")

    page.click("a:has-text('shop-token')")
    expect(page.locator("text=Connections: shop-api")).to_be_visible()
    assert SECRET_VALUE not in page.content()
    page.click("nav.tabs >> text=Secrets")
    expect(page.locator("#secrets tr[data-secret=shop-token]")).to_contain_text("stored encrypted")
    shoot(page, "secrets")
    page.click("nav.tabs >> text=Connections")
    expect(page.locator("#connections tr[data-connection=shop-api]")).to_contain_text("shop-token")
    shoot(page, "connections")
