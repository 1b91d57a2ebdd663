"""docs/files.md's examples are valid: every step and pipeline it shows passes the definition check, and
its connection example is a connection the credentials code accepts."""

import json
import re
from pathlib import Path

import pytest

from pipelines.definition import parse

DOC = Path(__file__).resolve().parents[2] / "docs" / "files.md"
BLOCKS = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", DOC.read_text(), re.S)]


def as_definition(block: dict) -> dict | None:
    if "steps" in block:
        return {"version": 1, **block}
    if "type" in block and "key" in block:  # one step
        return {"version": 1, "steps": [block]}
    return None


@pytest.mark.parametrize("block", [b for b in BLOCKS if as_definition(b)], ids=lambda b: str(b.get("key", "pipeline")))
def test_every_step_and_pipeline_shown_is_valid(block):
    parse(as_definition(block))


def test_the_connection_example_is_accepted(db):
    from pipelines.credentials import save_connection
    from pipelines.models import Secret

    [conn] = [b for b in BLOCKS if b.get("type") == "SFTP"]
    Secret.objects.create(code=conn["config"]["privateKeySecretCode"], env_name="SOME_KEY")
    save_connection(code=conn["code"], type=conn["type"], config=conn["config"])
