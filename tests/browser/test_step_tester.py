"""The step tester as a person uses it: open a TRANSFORM step's card, test it on the sample from the step
before (input, output, dead letters and what changed per record), paste records with a mistake and read the
error, fix them and test again; all on the draft, with nothing written."""

from playwright.sync_api import expect

from pipelines.services import save_definition
from runs.models import Run
from tests.browser.conftest import log_in

PRODUCTS = [{"sku": " a1 ", "price": "10", "legacy": "x"}, {"sku": "b2", "price": "n/a"},
            {"sku": "c3 ", "price": "7.5"}]


def definition():
    return {
        "version": 1, "code": "shop", "name": "Shop products",
        "steps": [
            {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": PRODUCTS}},
            {"key": "clean", "type": "TRANSFORM", "config": {"operators": [
                {"op": "trim", "args": {"path": "sku"}},
                {"op": "toNumber", "args": {"source": "price"}},
                {"op": "remove", "args": {"path": "legacy"}},
                {"op": "script", "args": {"code": "{**record, 'cents': record['price'] * 100}"}},
            ]}},
            {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
        ],
        "edges": [],
        "context": {},
    }


def test_it_tests_a_transform_on_the_sample_and_on_pasted_records(page, shoot, alice):
    save_definition(definition(), message="created")
    log_in(page, "alice")
    page.goto("/pipelines/shop/")
    page.click("#card-clean > summary")
    page.click("#tester-clean > summary")
    page.click("#tester-sample-clean")
    result = page.locator("#tester-result-clean")
    expect(result.locator(".tester-summary")).to_contain_text("3 records in (the sample from the step before), 2 out")
    expect(result.locator(".tester-summary")).to_contain_text("1 dead letter")
    diff = result.locator("table.tester-diff tbody tr")
    expect(diff).to_have_count(3)
    expect(diff.nth(0)).to_contain_text('sku " a1 " → "a1"')
    expect(diff.nth(0)).to_contain_text('price "10" → 10')
    expect(diff.nth(0).locator(".change-removed")).to_contain_text('legacy "x"')
    expect(diff.nth(0).locator(".change-added")).to_contain_text("cents 1000")
    expect(diff.nth(1)).to_contain_text("failed")
    expect(diff.nth(1)).to_contain_text("script (operator 4): '*' needs numbers, got null and number")
    expect(result.locator(".tester-errors")).to_contain_text('"sku": "b2"')  # the dead letter as it came in
    expect(result.locator("details", has_text="Output · 2 records").locator("tbody tr")).to_have_count(2)
    result.locator("summary", has_text="Input · 3 records").click()
    expect(result.locator("details", has_text="Input · 3 records").locator("tbody tr")).to_have_count(3)
    page.locator("#tester-clean").scroll_into_view_if_needed()
    shoot(page, "sample")

    # records pasted with a mistake: the error names the line and column
    page.fill("#tester-records-clean", '[{"sku": " z9", "price": "3"},\n {"sku": "y8" "price": "1"}]')
    page.click("#tester-pasted-clean")
    expect(result.locator(".tester-problem")).to_contain_text(
        "Not tested: line 2, column 15: Expecting ',' delimiter")
    shoot(page, "pasted-error")

    # fixed, and the card edited just before: the draft as the card shows it is what is tested
    page.fill("#step-clean #f-config-operators-3-args-code",
              "{**record, 'cents': record['price'] * 100, 'checked': True}")
    page.fill("#tester-records-clean", '{"sku": " z9", "price": "3"}\n{"sku": "y8", "price": "1", "legacy": 1}')
    page.click("#tester-pasted-clean")
    expect(result.locator(".tester-summary")).to_contain_text("2 records in (pasted), 2 out")
    second = result.locator("table.tester-diff tbody tr").nth(1)
    expect(second).to_contain_text("cents 100")
    expect(second).to_contain_text("checked true")
    expect(second.locator(".change-removed")).to_contain_text("legacy 1")
    shoot(page, "pasted")
    assert Run.objects.count() == 0  # no run was made, nothing written


def test_it_shows_where_a_route_sends_each_record(page, shoot, alice):
    save_definition({
        "version": 1, "code": "routes", "name": "Routes",
        "steps": [{"key": "src", "type": "EXTRACT", "adapterCode": "inMemory",
                   "config": {"data": [{"sku": "a", "price": 5, "currency": "EUR"},
                                       {"sku": "b", "price": 50, "currency": "USD"},
                                       {"sku": "c", "price": 2, "currency": "USD"}]}},
                  {"key": "split", "type": "ROUTE", "config": {"branches": [
                      {"name": "cheap", "when": [{"field": "price", "cmp": "lt", "value": 10}]},
                      {"name": "euro", "when": [{"field": "currency", "cmp": "eq", "value": "EUR"}]}]}},
                  {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}],
        "edges": [{"from": "src", "to": "split"}, {"from": "split", "to": "out", "branch": "cheap"},
                  {"from": "split", "to": "out", "branch": "euro"}, {"from": "split", "to": "out", "branch": "default"}],
        "context": {}}, message="created")
    log_in(page, "alice")
    page.goto("/pipelines/routes/")
    page.click("#card-split > summary")
    page.click("#tester-split > summary")
    page.click("#tester-sample-split")
    result = page.locator("#tester-result-split")
    rows = result.locator("table.tester-diff tbody tr")
    expect(rows.nth(0)).to_contain_text("routed → cheap, euro")
    expect(rows.nth(1)).to_contain_text("routed → default")
    expect(rows.nth(2)).to_contain_text("routed → cheap")
    expect(result.locator("summary", has_text="Branch cheap · 2 records")).to_be_visible()
    expect(result.locator("summary", has_text="Branch euro · 1 record")).to_be_visible()
    expect(result.locator("summary", has_text="Branch default · 1 record")).to_be_visible()
    page.locator("#tester-split").scroll_into_view_if_needed()
    shoot(page, "route")


def test_its_result_stays_when_the_card_is_saved_or_the_workspace_redrawn(page, alice):
    save_definition(definition(), message="created")
    log_in(page, "alice")
    page.goto("/pipelines/shop/")
    page.click("#card-clean > summary")
    page.click("#tester-clean > summary")
    page.fill("#tester-records-clean", '{"sku": " q1 ", "price": "4"}')
    page.click("#tester-pasted-clean")
    result = page.locator("#tester-result-clean")
    expect(result.locator(".tester-summary")).to_contain_text("1 record in (pasted), 1 out")

    # "Save step" redraws the card (its <details>, outerHTML): the tester inside it is kept as it was
    page.fill("#step-clean #f-name", "Clean products")
    page.locator("#step-clean button[value=save]").click()
    expect(page.locator("#card-clean > summary .key")).to_have_text("Clean products")
    expect(result.locator(".tester-summary")).to_contain_text("1 record in (pasted), 1 out")
    expect(page.locator("#tester-records-clean")).to_have_value('{"sku": " q1 ", "price": "4"}')

    # moving a step redraws the whole workspace: still there
    page.locator("#step-clean button[title='Move this step up']").click()
    expect(page.locator("#card-clean .pos")).to_have_text("1")
    expect(page.locator("#tester-result-clean .tester-summary")).to_contain_text("1 record in (pasted), 1 out")
