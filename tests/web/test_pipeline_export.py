import json

import pytest

from pipelines.services import definition_of, save_definition
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


def test_it_downloads_the_definition(as_bob, pipeline):
    response = as_bob.get("/pipelines/simple/export/")
    assert response["Content-Disposition"] == 'attachment; filename="simple.json"'
    assert json.loads(response.content) == definition_of(pipeline)


def test_it_downloads_an_older_revision(as_alice, pipeline):
    save_definition(simple_definition("simple", records=[{"sku": "two"}]))
    old = json.loads(as_alice.get("/pipelines/simple/export/?revision=1").content)
    assert old["steps"][0]["config"]["data"] == [{"sku": " a "}, {"sku": "b"}]
    assert as_alice.get("/pipelines/simple/export/?revision=9").status_code == 404
