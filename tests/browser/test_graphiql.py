"""/graphql/ in a browser with no network: GraphiQL and React come from static/vendor/, a query runs
through the page (session and CSRF), nothing is fetched from elsewhere and the console stays clean."""

from playwright.sync_api import expect

from pipelines.services import save_definition
from tests.browser.conftest import log_in

DEFINITION = {"version": 1, "code": "graphiql-demo", "name": "GraphiQL demo",
              "steps": [{"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": []}}]}


def test_it_runs_a_query_offline(offline_page, shoot, alice):
    page = offline_page
    save_definition(DEFINITION)
    log_in(page, "alice")
    page.click("nav.tools >> text=GraphQL")
    editor = page.locator(".graphiql-query-editor .CodeMirror")
    expect(editor).to_be_visible()
    page.evaluate("""document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror
                     .setValue('{ pipeline(code: "graphiql-demo") { code name } }')""")
    page.click(".graphiql-execute-button")
    response = page.locator(".graphiql-response")
    expect(response).to_contain_text('"name": "GraphiQL demo"')
    shoot(page, "graphiql")


def test_it_links_the_api_pages_from_the_nav(offline_page, shoot, alice, admin_user):
    page = offline_page
    log_in(page, "alice")
    tools = page.locator("nav.tools a")
    expect(tools).to_have_text(["API docs", "Token", "GraphQL"])  # no Admin: alice is not staff
    page.click("nav.tools >> text=Token")
    expect(page.locator("h1")).to_have_text("API token")
    page.click("text=Create a token")
    expect(page.locator("#new-token")).to_be_visible()
    shoot(page, "tokens")
    page.click("nav.tools >> text=API docs")
    expect(page.locator(".swagger-ui")).to_be_visible()
    page.goto("/")
    page.click("text=Log out")

    page.goto("/accounts/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("button[type=submit]")
    expect(page.locator("nav.tools a")).to_have_text(["API docs", "Token", "GraphQL", "Settings", "Admin"])
