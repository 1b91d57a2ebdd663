import pytest

from pipelines.services import save_definition
from runs import services
from runs.models import RecordAttempt, RecordError, Run
from tests.fixtures import simple_definition
from tests.web.conftest import htmx

pytestmark = pytest.mark.django_db(transaction=True)


def failing_definition(code="f", records=None, retry=None):
    d = simple_definition(code, records=records or [
        {"sku": "a"}, {"sku": "b", "fail": True}, {"sku": "<b>c</b>", "fail": True}])
    d["steps"][1]["config"]["operators"].append({"op": "shaky", "args": {}})
    if retry:
        d["steps"][1]["config"]["retryPerRecord"] = retry
    return d


def finished_run(definition):
    run = services.create_run(save_definition(definition))
    return services.run_now(run).run


def test_it_shows_status_progress_counts_and_the_coloured_graph(as_bob, pipeline):
    run = finished_run(simple_definition("simple"))
    page = as_bob.get(f"/runs/{run.pk}/").content.decode()
    assert 'data-status="COMPLETED"' in page and "hx-trigger" not in page.split('id="run-progress"')[1][:200]
    assert 'aria-valuenow="100"' in page
    assert "node-completed" in page
    row = page.split('data-step="clean"')[2].split("</tr>")[0]
    assert ">2</td>" in row and "s-completed" in row
    assert "No failed records" in page


def test_it_polls_while_the_run_is_active_and_stops_when_it_ends(as_bob, pipeline):
    run = services.create_run(pipeline)
    page = as_bob.get(f"/runs/{run.pk}/").content.decode()
    assert 'hx-trigger="every 1s"' in page and "live" in page
    poll = as_bob.get(f"/runs/{run.pk}/", **htmx(target="run-progress"))
    assert poll.status_code == 200 and poll.content.decode().lstrip().startswith('<div id="run-progress"')
    assert 'hx-trigger="every 1s"' in poll.content.decode()
    services.run_now(run)
    poll = as_bob.get(f"/runs/{run.pk}/", **htmx(target="run-progress"))
    assert poll.status_code == 286  # htmx stops polling
    html = poll.content.decode()
    assert "hx-trigger" not in html and 'data-status="COMPLETED"' in html


def test_it_lists_failed_records_of_a_step_escaped_and_paged(as_bob, shaky):
    records = [{"sku": "ok"}] + [{"sku": f"<i>{n}</i>", "fail": True} for n in range(25)]
    run = finished_run(failing_definition(records=records))
    page = as_bob.get(f"/runs/{run.pk}/").content.decode()
    assert "25 failed" in page  # the link in the step table
    html = as_bob.get(f"/runs/{run.pk}/?step=clean", **htmx(target="errors")).content.decode()
    assert html.lstrip().startswith('<section class="panel errors-panel" id="errors">')
    assert "cannot take &#x27;&lt;i&gt;0&lt;/i&gt;&#x27;" in html and "<i>0</i>" not in html
    assert "Page 1 of 2" in html and html.count('name="error_ids"') == 0  # bob may not replay
    html = as_bob.get(f"/runs/{run.pk}/?step=clean&page=2", **htmx(target="errors")).content.decode()
    assert "Page 2 of 2" in html and "&lt;i&gt;24&lt;/i&gt;" in html


def test_it_shows_the_retry_audit(as_bob, shaky):
    run = finished_run(failing_definition(retry={"maxRetries": 2, "retryDelayMs": 0}))
    attempts = RecordAttempt.objects.filter(run=run)
    assert attempts.exists()
    html = as_bob.get(f"/runs/{run.pk}/?step=clean", **htmx(target="errors")).content.decode()
    audit = html.split('id="attempt-table"')[1]
    assert "Retry audit" in html and audit.count("<tr>") == attempts.count() + 1
    assert "cannot take &#x27;&lt;b&gt;c&lt;/b&gt;&#x27;" in audit
    tries = RecordError.objects.filter(run=run).first().attempts
    assert f'<td class="num">{tries}</td>' in html.split('id="error-table"')[1]


def test_it_shows_why_a_run_failed(as_bob, db):
    run = services.create_run(save_definition(simple_definition("x")))
    Run.objects.filter(pk=run.pk).update(status="FAILED", error="the worker stopped responding")
    page = as_bob.get(f"/runs/{run.pk}/").content.decode()
    assert "Why it failed" in page and "the worker stopped responding" in page


def test_it_offers_replay_to_those_who_may_run(as_alice, shaky):
    run = finished_run(failing_definition())
    html = as_alice.get(f"/runs/{run.pk}/?step=clean").content.decode()
    assert html.count('name="error_ids"') == 2 and "Replay all 2" in html
    assert RecordError.objects.filter(run=run).count() == 2
