from pathlib import Path

from pipelines import registry
from pipelines.catalogue import render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "catalogue.md"


def test_it_keeps_docs_catalogue_in_step_with_the_registries():
    assert DOC.read_text() == render_markdown(), "run: python manage.py catalogue > docs/catalogue.md"


def test_it_documents_every_argument_of_every_builtin_operator():
    undocumented = [
        f"{e.code}.{name}"
        for e in registry.operators
        if e.builtin
        for name, prop in e.schema.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undocumented == []
