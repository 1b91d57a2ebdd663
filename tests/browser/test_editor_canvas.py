"""The canvas, as a person uses it: steps dragged from the palette, a ROUTE's branch connected by dragging
from its labelled port to another step, a connection and a step removed, zoom and fit, and the minimap to
move around a graph larger than the view; every action ends up in the draft's definition, the same JSON
the list view, the DSL and the API write."""

from playwright.sync_api import expect

from pipelines.models import Pipeline, PipelineDraft
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


VISIBLE_POINT = """p => {
    const m = p.getScreenCTM(), length = p.getTotalLength();
    for (const t of [0.2, 0.35, 0.5, 0.65, 0.8, 0.1, 0.9]) {
        const q = p.getPointAtLength(length * t);
        const x = m.a * q.x + m.c * q.y + m.e, y = m.b * q.x + m.d * q.y + m.f;
        if (document.elementFromPoint(x, y) === p) return [x, y];
    }
    return null;
}"""


def remove_connection(page, source, target, port=1):
    """Select the connection between two steps on the canvas (by its drawn path) and press Delete."""
    out_id = node(page, source).get_attribute("id")
    in_id = node(page, target).get_attribute("id")
    path = page.locator(f"#canvas .connection.node_out_{out_id}.node_in_{in_id}.output_{port} .main-path")
    # Click a point of the drawn path that nothing covers (paths into one port overlap near it, the minimap
    # sits in a corner); the canvas may still be settling after the last redraw, so look again if need be.
    page.wait_for_load_state("networkidle")
    for _ in range(10):
        point = path.evaluate(VISIBLE_POINT)
        if point:
            page.mouse.click(*point)
            page.wait_for_timeout(250)
            if "selected" in (path.get_attribute("class") or ""):
                break
        page.wait_for_timeout(200)
    expect(path).to_have_class("main-path selected")
    page.evaluate("document.getElementById('workspace').dataset.before = '1'")  # the redraw replaces it
    page.keyboard.press("Delete")
    expect(page.locator("#workspace:not([data-before]) .message.success")).to_contain_text("Removed the connection.")
    expect(page.locator(f"#canvas .connection.node_out_{out_id}.node_in_{in_id}.output_{port}")).to_have_count(0)


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
    assert {"from": "route", "to": "records-2", "branch": "big"} in working("canvas")["edges"]
    # and its default branch to the first sink (this takes the place of its all-records connection there)
    page.drag_and_drop("#canvas .drawflow-node[data-step='route'] .output[data-branch='default']",
                       "#canvas .drawflow-node[data-step='records'] .input")
    expect(page.locator("#workspace .message.success")).to_contain_text("Connected route → records")

    # what list order had connected goes: each connection selected on the canvas, then Delete
    remove_connection(page, "records", "records-2")
    remove_connection(page, "trim", "records")
    assert sorted(working("canvas")["edges"], key=lambda e: (e["from"], e["to"])) == [
        {"from": "route", "to": "records", "branch": "default"},
        {"from": "route", "to": "records-2", "branch": "big"},
        {"from": "src", "to": "trim"},
        {"from": "trim", "to": "route"},
    ]
    assert [s["key"] for s in working("canvas")["steps"]] == ["src", "trim", "records", "records-2", "route"]
    expect(page.locator("#canvas .connection")).to_have_count(4)

    # selecting a step opens its card beside the canvas
    node(page, "trim").click()
    expect(page.locator("#canvas-side #card-trim")).to_have_attribute("open", "")
    expect(page.locator("#canvas-side #f-config-operators-0-args-path")).to_have_value("sku")

    # zoom and fit change the view, not the pipeline
    page.click("[data-canvas='zoom-out']")
    page.click("[data-canvas='fit']")
    shoot(page, "connected")
    assert Pipeline.objects.get(code="canvas").revisions.count() == 1  # all of it in the draft


def minimap_box(page, selector):
    """The on-screen box of an element of the minimap."""
    return page.locator(f"#canvas .canvas-minimap {selector}").bounding_box()


def centre(box):
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def test_it_shows_the_whole_graph_in_a_minimap_that_moves_the_view(page, shoot, alice):
    d = simple_definition("wide")
    # a long chain, wider than the canvas at a readable zoom: the minimap is how one gets around it
    d["steps"] += [{"key": f"more-{n}", "type": "SINK", "adapterCode": "records", "config": {}} for n in range(5)]
    d["edges"] = [{"from": a["key"], "to": b["key"]} for a, b in zip(d["steps"], d["steps"][1:], strict=False)]
    save_definition(d, message="created")
    log_in(page, "alice")
    page.goto("/pipelines/wide/")
    expect(node(page, "more-4")).to_be_visible()

    # every step is in the minimap, in its colour, with each connection; the view is framed
    minimap = page.locator("#canvas .canvas-minimap")
    expect(minimap).to_be_visible()
    expect(minimap.locator("rect.minimap-node")).to_have_count(8)
    assert minimap.locator("rect.minimap-node").evaluate_all("rs => rs.map(r => r.dataset.step)") == [
        "src", "clean", "out", "more-0", "more-1", "more-2", "more-3", "more-4"]
    expect(minimap.locator("line.minimap-edge")).to_have_count(7)
    expect(minimap.locator("rect.minimap-view")).to_have_count(1)

    # zoomed in, the frame is smaller: only part of the graph is in view
    before = minimap_box(page, "rect.minimap-view")
    for _ in range(4):
        page.click("[data-canvas='zoom-in']")
    zoomed = minimap_box(page, "rect.minimap-view")
    assert zoomed["width"] < before["width"] * 0.8

    # a click on a step in the minimap brings it to the middle of the canvas
    canvas_box = page.locator("#canvas").bounding_box()
    target = minimap_box(page, "rect.minimap-node[data-step='more-4']")
    page.mouse.click(*centre(target))
    x, y = centre(node(page, "more-4").bounding_box())
    cx, cy = centre(canvas_box)
    assert abs(x - cx) < 15 and abs(y - cy) < 15, (x, y, cx, cy)
    # the map takes in the new view (it is scaled to show the graph and the view): the frame is on the step
    frame, step = minimap_box(page, "rect.minimap-view"), minimap_box(page, "rect.minimap-node[data-step='more-4']")
    assert abs(centre(frame)[0] - centre(step)[0]) < 3 and abs(centre(frame)[1] - centre(step)[1]) < 3
    shoot(page, "minimap-at-the-end")

    # dragging along the minimap moves the view with the pointer, back to the first step
    start = minimap_box(page, "rect.minimap-node[data-step='src']")
    page.mouse.move(*centre(step))
    page.mouse.down()
    page.mouse.move(*centre(start), steps=8)
    page.mouse.up()
    x, y = centre(node(page, "src").bounding_box())
    assert abs(x - cx) < 15 and abs(y - cy) < 15, (x, y, cx, cy)
    assert not page.locator("#canvas .drawflow-node.selected").count()  # moving the view selects nothing
    shoot(page, "minimap-back-to-the-start")
    # moving the view changes nothing in the pipeline: no revision, no draft
    assert Pipeline.objects.get(code="wide").revisions.count() == 1 and not PipelineDraft.objects.exists()
