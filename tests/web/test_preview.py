import pytest

from pipelines.services import save_definition
from runs.models import Run
from tests.fixtures import simple_definition
from tests.web.conftest import htmx

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_shows_each_steps_output_for_the_first_records(as_alice, db):
    save_definition(simple_definition("p", records=[{"sku": f" s{n} ", "n": n} for n in range(30)]))
    response = as_alice.post("/pipelines/p/preview/", {"limit": "5"})
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('<section class="panel" id="preview-') == 3
    clean = page.split('id="preview-clean"')[1].split("</section>")[0]
    assert "5 records out" in clean and 'title="s0">s0</td>' in clean and "s5" not in clean
    run = Run.objects.get()
    assert run.dry_run and run.record_limit == 5 and run.status == "COMPLETED" and run.trigger == "preview"


def test_it_shows_record_values_as_text(as_alice, db):
    save_definition(simple_definition("p", records=[{"sku": "<script>alert(1)</script>", "note": None}]))
    page = as_alice.post("/pipelines/p/preview/", {"limit": "10"}).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<td class="null" title="null">null</td>' in page


def test_it_answers_htmx_with_the_result_only(as_alice, pipeline):
    html = as_alice.post("/pipelines/simple/preview/", {"limit": "2"}, **htmx(target="preview-result")).content.decode()
    assert html.lstrip().startswith('<div id="preview-result">') and "dry run" in html


def test_it_answers_a_bad_limit_inline_keeping_it(as_alice, pipeline):
    response = as_alice.post("/pipelines/simple/preview/", {"limit": "ten"})
    page = response.content.decode()
    assert response.status_code == 400 and "Enter a whole number." in page and 'value="ten"' in page
    page = as_alice.post("/pipelines/simple/preview/", {"limit": "5000"}).content.decode()
    assert "less than or equal to 1000" in page
    assert not Run.objects.exists()


def test_it_shows_failed_records_of_a_step(as_alice, shaky, db):
    d = simple_definition("p", records=[{"sku": "a"}, {"sku": "b", "fail": True}])
    d["steps"][1]["config"]["operators"].append({"op": "shaky", "args": {}})
    save_definition(d)
    page = as_alice.post("/pipelines/p/preview/", {"limit": "10"}).content.decode()
    clean = page.split('id="preview-clean"')[1].split("</section>")[0]
    assert "1 failed" in clean and "cannot take &#x27;b&#x27;" in clean


def test_it_says_when_there_is_no_revision_to_preview(as_alice, db):
    from pipelines.models import Pipeline

    Pipeline.objects.create(code="bare", name="Bare")
    response = as_alice.post("/pipelines/bare/preview/", {"limit": "5"})
    assert response.status_code == 400 and "nothing to preview" in response.content.decode()
