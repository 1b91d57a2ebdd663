"""pipelines.editing: the pure one-change functions behind the editor's buttons."""

import copy

import pytest

from pipelines import editing
from tests.fixtures import simple_definition


@pytest.fixture
def d():
    return simple_definition("e")


def test_it_never_changes_its_input(d):
    before = copy.deepcopy(d)
    editing.add_step(d, {"key": "x", "type": "SINK", "adapterCode": "records", "config": {}})
    editing.remove_step(d, "clean")
    editing.move_step(d, "out", -1)
    editing.add_edge(d, "src", "out")
    editing.set_parallel(d, True, 2, "CONTINUE")
    assert d == before


def test_it_makes_unique_valid_keys(d):
    assert editing.unique_key(d, "src") == "src-2"
    assert editing.unique_key(d, "In Memory!") == "in-memory"
    assert editing.unique_key(d, "") == "step"
    assert editing.unique_key({}, "_x") == "x"


def test_it_updates_a_step_keeping_fields_the_form_does_not_own(d):
    d["steps"][1]["throughput"] = {"batchSize": 5}
    out = editing.update_step(d, "clean", {"key": "tidy", "type": "TRANSFORM", "config": {"operators": []},
                                           "retries": 2})
    assert out["steps"][1] == {"key": "tidy", "type": "TRANSFORM", "config": {"operators": []}, "retries": 2,
                               "throughput": {"batchSize": 5}}
    with pytest.raises(editing.EditError):
        editing.update_step(d, "missing", {})


def test_it_moves_within_bounds(d):
    assert editing.step_keys(editing.move_step(d, "src", -1)) == ["src", "clean", "out"]
    assert editing.step_keys(editing.move_step(d, "src", 5)) == ["clean", "out", "src"]


def test_it_bridges_a_removed_step(d):
    d["edges"] = [{"from": "src", "to": "clean", "branch": None}, {"from": "clean", "to": "out"}]
    d["edges"][0].pop("branch")
    out = editing.remove_step(d, "clean")
    assert out["edges"] == [{"from": "src", "to": "out"}]


def test_it_turns_list_order_into_edges_on_the_first_edge(d):
    out = editing.add_edge(d, "src", "out")
    assert out["edges"] == [{"from": "src", "to": "clean"}, {"from": "clean", "to": "out"},
                            {"from": "src", "to": "out"}]
    assert editing.add_edge(out, "src", "out")["edges"] == out["edges"]  # no duplicate


def test_it_replaces_an_unbranched_edge_by_a_branch(d):
    d["edges"] = [{"from": "src", "to": "clean"}, {"from": "clean", "to": "out"}]
    out = editing.add_edge(d, "src", "clean", branch="big")
    assert out["edges"] == [{"from": "clean", "to": "out"}, {"from": "src", "to": "clean", "branch": "big"}]


def test_it_sets_parallel_execution_and_settings(d):
    out = editing.set_parallel(d, True, 3, "BEST_EFFORT")
    assert out["context"]["parallelExecution"] == {"enabled": True, "maxConcurrentSteps": 3,
                                                   "errorPolicy": "BEST_EFFORT"}
    out = editing.set_settings(out, name="N", description="")
    assert out["name"] == "N" and "description" not in out


def test_it_edits_lists(d):
    assert editing.list_add([1], 2) == [1, 2]
    assert editing.list_move([1, 2, 3], 2, -1) == [1, 3, 2]
    assert editing.list_move([1, 2, 3], 0, -1) == [1, 2, 3]
    assert editing.list_remove([1, 2, 3], 1) == [1, 3]
    assert editing.list_remove([1], 4) == [1]


def test_it_duplicates_under_a_new_code(d):
    out = editing.duplicate(d, "e2")
    assert (out["code"], out["name"]) == ("e2", "Copy of Pipeline e")


def test_it_turns_a_pipeline_into_a_graph_for_a_route(d):
    route = {"key": "r", "type": "ROUTE", "config": {"branches": [{"name": "big"}]}}
    out = editing.add_step(d, route, connect_from="clean", connect_to="out")
    assert out["edges"] == [{"from": "src", "to": "clean"}, {"from": "clean", "to": "out"},
                            {"from": "clean", "to": "r"}, {"from": "r", "to": "out"}]
    plain = editing.add_step(d, {"key": "x", "type": "SINK", "adapterCode": "records", "config": {}},
                             connect_from="out")
    assert plain["edges"] == []  # list order stays list order
    with pytest.raises(editing.EditError):
        editing.add_step(d, route, connect_from="nope")
