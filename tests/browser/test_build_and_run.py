"""What a person does: log in, build a three-step pipeline in the editor without touching JSON, switch on
parallel execution, preview it, run it, watch the run page reach COMPLETED, and open a failed step's errors."""

import re
import threading

from django.db import connections
from playwright.sync_api import expect

from pipelines.models import Pipeline
from pipelines.services import definition_of
from runs.tasks import execute_run
from tests.browser.conftest import log_in

RECORDS = '[{"sku": " A-1 ", "price": 10, "qty": 2},\n {"sku": " b-2 ", "price": 5, "qty": 0},\n {"sku": "c-3", "price": 9, "qty": 3}]'


def execute_in_background(run_id: int) -> threading.Thread:
    """The worker's own code path (runs.tasks.execute_run), in a thread as a qcluster worker would."""

    def work():
        try:
            execute_run(run_id)
        finally:
            connections.close_all()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_it_builds_runs_and_watches_a_pipeline(page, shoot, alice):
    log_in(page, "alice")
    expect(page.locator("h1")).to_have_text("Dashboard")
    shoot(page, "dashboard-empty")

    # a new pipeline whose first step reads inline records
    page.click("nav >> text=Pipelines")
    page.click("text=+ New pipeline")
    page.fill("#id_code", "browser-demo")
    page.fill("#id_name", "Browser demo")
    page.select_option("#id_start", "EXTRACT:inMemory")
    page.click("text=Create and open the editor")
    expect(page.locator("h1")).to_have_text("Browser demo")

    # step 1: type the records into the extract step's form
    page.click("#card-inmemory > summary")
    page.fill("#step-inmemory #f-config-data", RECORDS)
    page.click("#step-inmemory button:has-text('Save step')")
    expect(page.locator("#card-inmemory .message.success")).to_have_text("Saved step inmemory to your draft.")

    # step 2: a TRANSFORM from the palette; saving it without its required argument is answered inline
    page.fill("input[name=palette_q]", "trim")
    page.click("[data-palette='TRANSFORM:trim']")
    expect(page.locator("#new-step-form")).to_be_visible()
    page.click("#new-step-form button:has-text('Add step')")
    error = page.locator("#new-step-form .field-errors").first
    expect(error).to_have_text("is required")
    shoot(page, "inline-error")
    page.fill("#new-step-form #f-config-operators-0-args-path", "sku")
    page.select_option("#new-step-form select[name='_add_op:config.operators']", "script")
    page.click("#new-step-form button:has-text('+ Add operator')")
    expect(page.locator("#new-step-form #f-config-operators-1-args-code")).to_be_visible()
    expect(page.locator("#new-step-form #f-config-operators-0-args-path")).to_have_value("sku")
    page.fill("#new-step-form #f-config-operators-1-args-code", '{**record, "unit": price / qty}')
    page.click("#new-step-form button:has-text('Add step')")
    expect(page.locator("#workspace .message.success")).to_have_text("Added step trim.")

    # step 3: a sink that keeps the records
    page.fill("input[name=palette_q]", "keep")
    page.click("[data-palette='SINK:records']")
    page.click("#new-step-form button:has-text('Add step')")
    expect(page.locator("#workspace .message.success")).to_have_text("Added step records.")
    expect(page.locator("svg.graph g.node")).to_have_count(3)

    # parallel execution on, with two steps at a time at most
    page.click("#settings label.switch")
    page.fill("#f-context-parallelExecution-maxConcurrentSteps", "2")
    page.click("#save-settings")
    expect(page.locator("#settings .message.success")).to_have_text("Saved the settings to your draft.")
    shoot(page, "editor")

    # one revision for all of it, with a message
    expect(page.locator("#draft-status")).to_have_attribute("data-dirty", "1")
    page.fill("#publish-message", "first version")
    page.click("#publish")
    expect(page.locator(".message.success", has_text="Published revision 2.")).to_be_visible()
    expect(page.locator("#draft-status")).to_have_attribute("data-dirty", "0")
    expect(page.locator(".badge", has_text="parallel")).to_be_visible()
    assert Pipeline.objects.get(code="browser-demo").current_revision.message == "first version"

    definition = definition_of(Pipeline.objects.get(code="browser-demo"))
    assert [(s["key"], s["type"], s.get("adapterCode")) for s in definition["steps"]] == [
        ("inmemory", "EXTRACT", "inMemory"), ("trim", "TRANSFORM", None), ("records", "SINK", "records")]
    assert definition["steps"][1]["config"]["operators"] == [
        {"op": "trim", "args": {"path": "sku"}}, {"op": "script", "args": {"code": '{**record, "unit": price / qty}'}}]
    assert definition["context"]["parallelExecution"] == {"enabled": True, "maxConcurrentSteps": 2}

    # a preview: each step's output in a table
    page.click("a:has-text('Preview')")
    page.fill("#id_limit", "10")
    page.click("#preview-button")
    expect(page.locator("#preview-trim")).to_contain_text("2 records out")
    expect(page.locator("#preview-trim")).to_contain_text("division by zero")
    shoot(page, "preview")

    # run it: the run page polls itself until the worker is done
    page.click("a:has-text('Back to the editor')")
    page.click("#run-now")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run_id = int(re.search(r"/runs/(\d+)/", page.url).group(1))
    expect(page.locator("#run-progress")).to_have_attribute("data-status", "PENDING")
    worker = execute_in_background(run_id)
    expect(page.locator("#run-progress")).to_have_attribute("data-status", "COMPLETED", timeout=20_000)
    worker.join(10)
    expect(page.locator("#run-status")).to_have_text("Completed")
    expect(page.locator("#run-progress .live")).to_have_count(0)
    # what the run put out appears without a reload: the last record sink's first records
    outputs = page.locator("#run-outputs [data-output='records']")
    expect(outputs).to_contain_text("2 records")
    expect(outputs.locator("tbody tr")).to_have_count(2)
    expect(outputs.locator("tbody")).to_contain_text("A-1")
    shoot(page, "run-completed")

    # the failed record of the transform step, with its error
    page.click("tr[data-step='trim'] a.step-errors-link")
    expect(page.locator("#errors h2")).to_contain_text("trim")
    expect(page.locator("#error-table")).to_contain_text("division by zero")
    expect(page.locator("#error-table")).to_contain_text('"sku": " b-2 "')
    shoot(page, "run-errors")
