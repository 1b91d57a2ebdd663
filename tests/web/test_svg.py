"""pipelines.svg: the step graph and the dashboard chart (pure)."""

from datetime import date, timedelta

from pipelines import svg
from tests.fixtures import simple_definition


def test_it_lays_steps_out_in_columns_by_depth():
    steps = [{"key": k} for k in ("a", "b", "c", "d")]
    place = svg.layout(steps, {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]})
    assert place == {"a": (0, 0), "b": (1, 0), "c": (1, 1), "d": (2, 0)}


def test_it_survives_a_cycle():
    place = svg.layout([{"key": "a"}, {"key": "b"}], {"a": ["b"], "b": ["a"]})
    assert set(place) == {"a", "b"}


def test_it_draws_list_order_as_a_chain_and_colours_statuses():
    picture = svg.definition_graph(simple_definition(), statuses={"src": "COMPLETED", "clean": "FAILED"})
    assert picture.count('class="edge edge-implicit"') == 2
    assert "node-completed" in picture and "node-failed" in picture and "#fee2e2" in picture


def test_it_escapes_names_and_links():
    d = simple_definition()
    d["steps"][0]["name"] = '<script>alert("x")</script>'
    picture = svg.definition_graph(d, link=lambda key: f"?step={key}&x=<")
    assert "<script>" not in picture and "&lt;script&gt;" in picture and "&amp;x=&lt;" in picture


def test_it_draws_an_empty_pipeline():
    assert "No steps yet" in svg.step_graph([], [])


def test_it_charts_runs_failures_and_records_per_day():
    days = [date(2026, 1, 1) + timedelta(n) for n in range(14)]
    chart = svg.daily_chart(days, [0] * 13 + [4], [0] * 13 + [1], [0] * 13 + [1500])
    assert chart.count('class="bar-ok"') == 1 and chart.count('class="bar-failed"') == 1
    assert "Wed 14 Jan: 4 runs, 1 failed, 1500 records" in chart and ">1.5k<" in chart
