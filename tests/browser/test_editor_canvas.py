"""The canvas, as a person uses it: steps dragged from the palette, a ROUTE's branch connected by dragging
from its labelled port to another step, a connection and a step removed, zoom and fit; every action ends
up in the draft's definition, the same JSON the list view, the DSL and the API write."""

from playwright.sync_api import expect

from pipelines.models import Pipeline
from pipelines.services import save_definition
from tests.browser.conftest import log_in
from tests.fixtures import simple_definition
from tests.web.conftest import working


def node(page, key):
    return page.locator(f"#canvas .drawflow-node[data-step='{key}']")


def add_from_palette(page, palette, fill=None):
    # filter the palette down to the entry, and wait until the filtered list has replaced the whole one
    page.fill("input[name=palette_q]", palette.split(":")[1] or palette.split(":")[0])
    expect(page.locator("[data-palette='EXTRACT:csv']")).to_have_count(0)
    page.drag_and_drop(f"[data-palette='{palette}']", "#canvas", target_position={"x": 40, "y": 340})
    expect(page.locator("#canvas-side #new-step-form")).to_be_visible()
    for selector, value in (fill or {}).items():
        page.fill(f"#canvas-side {selector}", value)


def test_it_builds_a_graph_with_a_route_on_the_canvas(page, shoot, alice):
    definition = simple_definition("canvas")
    definition["steps"] = definition["steps"][:1]  # one inMemory extract to start from
    save_definition(definition, message="created")
    log_in(page, "alice")
    page.goto("/pipelines/canvas/")
    expect(node(page, "src")).to_be_visible()

    # a transform and two sinks, dragged from the palette and added from the form beside the canvas
    add_from_palette(page, "TRANSFORM:trim", {"#f-config-operators-0-args-path": "sku"})
    page.click("#canvas-side button:has-text('Add step')")
    expect(node(page, "trim")).to_be_visible()
    add_from_palette(page, "SINK:records")
    page.click("#canvas-side button:has-text('Add step')")
    expect(node(page, "records")).to_be_visible()
    add_from_palette(page, "SINK:records")
    page.click("#canvas-side button:has-text('Add step')")
    expect(node(page, "records-2")).to_be_visible()

    # a ROUTE fed by the transform, every branch to the first sink until its branch is connected
    add_from_palette(page, "ROUTE:ROUTE", {"#f-config-branches-0-name": "big"})
    page.select_option("#canvas-side #connect-from", "trim")
    page.select_option("#canvas-side #connect-to", "records")
    page.click("#canvas-side button:has-text('Add step')")
    expect(node(page, "route")).to_be_visible()
    expect(node(page, "route").locator(".port-label")).to_have_text(["big", "default", "all records"])
    shoot(page, "five-steps")

    # connect the branch "big" to the second sink by dragging between the ports
    page.drag_and_drop("#canvas .drawflow-node[data-step='route'] .output[data-branch='big']",
                       "#canvas .drawflow-node[data-step='records-2'] .input")
    expect(page.locator("#workspace .message.success")).to_contain_text("Connected route → records-2")
    edges = working("canvas")["edges"]
    assert {"from": "route", "to": "records-2", "branch": "big"} in edges
    assert [s["key"] for s in working("canvas")["steps"]] == ["src", "trim", "records", "records-2", "route"]

    # selecting a step opens its card beside the canvas
    node(page, "trim").click()
    expect(page.locator("#canvas-side #card-trim")).to_have_attribute("open", "")
    expect(page.locator("#canvas-side #f-config-operators-0-args-path")).to_have_value("sku")

    # zoom and fit change the view, not the pipeline
    page.click("[data-canvas='zoom-out']")
    page.click("[data-canvas='fit']")
    shoot(page, "connected")
    assert Pipeline.objects.get(code="canvas").revisions.count() == 1  # all of it in the draft
