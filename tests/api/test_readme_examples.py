"""The README's API examples work: the same curl commands, run through Django's test client.

``REST_EXAMPLE`` and ``GRAPHQL_EXAMPLE`` are the text the README shows; every ```sh block of README.md
that sends ``Authorization: Token`` is run too, so the README cannot drift from what works.
"""

import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.authtoken.models import Token

from pipelines.files import read_definition_file
from pipelines.services import save_definition

REST_EXAMPLE = """\
# a token for programs: create one at http://127.0.0.1:8000/api/tokens/
TOKEN=paste-your-token-here
curl -s -X POST http://127.0.0.1:8000/api/runs/ \\
  -H "Authorization: Token $TOKEN" -H "Content-Type: application/json" \\
  -d '{"pipeline": "demo-products", "dryRun": true}'
curl -s "http://127.0.0.1:8000/api/runs/?pipeline=demo-products&limit=5" -H "Authorization: Token $TOKEN"
"""

GRAPHQL_EXAMPLE = """\
curl -s -X POST http://127.0.0.1:8000/graphql/ \\
  -H "Authorization: Token $TOKEN" -H "Content-Type: application/json" \\
  -d '{"query": "{ pipeline(code: \\"demo-products\\") { name revision } runs(pipeline: \\"demo-products\\", limit: 5) { id status dryRun stepRuns { stepKey status recordsOut } } }"}'
"""


def run_curl(script: str, token: str) -> list:
    """Run the curl commands of a shell snippet (comments, TOKEN=... and `| jq` aside); the responses."""
    responses = []
    for command in script.replace("\\\n", " ").splitlines():
        command = command.split(" | ")[0].strip()
        if not command.startswith("curl "):
            continue
        args = shlex.split(command.replace("$TOKEN", token))[1:]
        method, headers, data, url = None, {}, None, None
        while args:
            arg = args.pop(0)
            if arg == "-X":
                method = args.pop(0)
            elif arg == "-H":
                name, _, value = args.pop(0).partition(":")
                headers[name.strip()] = value.strip()
            elif arg in ("-d", "--data", "--data-raw"):
                data = args.pop(0)
            elif arg.startswith("http"):
                url = arg
            else:
                assert arg in ("-s", "-sS", "--silent", "-i"), f"the test does not know curl's {arg}"
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        content_type = headers.pop("Content-Type", "application/octet-stream")
        meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
        responses.append(Client().generic(method or ("POST" if data else "GET"), path, data or "",
                                          content_type=content_type, **meta))
    return responses


@pytest.fixture
def token(alice):
    path = Path(settings.DATAHUB_DEMO_PIPELINES_DIR) / "demo-products.json"
    save_definition(read_definition_file(str(path)), message="demo")
    return Token.objects.create(user=alice).key


def test_the_rest_example_starts_a_dry_run_and_lists_it(token):
    started, listed = run_curl(REST_EXAMPLE, token)
    assert started.status_code == 201, started.content
    assert started.json()["pipeline"] == "demo-products" and started.json()["dryRun"] is True
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()["results"]] == [started.json()["id"]]


def test_the_graphql_example_reads_a_pipeline_and_its_runs(token):
    run_curl(REST_EXAMPLE, token)
    [response] = run_curl(GRAPHQL_EXAMPLE, token)
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["pipeline"] == {"name": "Demo: clean up a product list", "revision": 1}
    assert [(r["status"], r["dryRun"]) for r in data["runs"]] == [("PENDING", True)]


def readme_api_examples() -> list[str]:
    readme = (Path(settings.BASE_DIR) / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:sh|bash|shell)\n(.*?)```", readme, flags=re.S)
    return [b for b in blocks if "Authorization: Token" in b]


def test_the_readme_api_examples_work(token):
    blocks = readme_api_examples()
    if not blocks:
        pytest.skip("the README shows no API example yet")
    for block in blocks:
        for response in run_curl(block, token):
            assert response.status_code < 300, (block, response.content)
            assert "errors" not in response.json(), (block, response.content)
