"""An attacker's inline script is refused by the browser: the policy every answer carries allows scripts
and styles from our own origin only, and no template relies on inline code (so none is ever allowed).

tests/browser/test_csp_every_page.py visits every page in chromium and fails on any violation.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings

from pipelines.services import save_definition
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db
TEMPLATES = Path(settings.BASE_DIR) / "templates"
# E-mails are not pages: mail clients need inline styles and never see the policy.
EMAILS = {"gates/email.html"}
INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "a style= attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"\bhx-on|javascript:", re.I), "code in an attribute"),
]


def test_it_keeps_inline_code_out_of_every_page_template():
    found = []
    for path in TEMPLATES.rglob("*.html"):
        name = path.relative_to(TEMPLATES).as_posix()
        if name in EMAILS:
            continue
        text = re.sub(r"\{#.*?#\}", "", path.read_text())  # template comments are not sent
        for n, line in enumerate(text.splitlines(), 1):
            found += [f"{name}:{n}: {what}" for pattern, what in INLINE if pattern.search(line)]
    assert found == []


@pytest.mark.parametrize("path", ["/", "/pipelines/", "/pipelines/injected/", "/runs/", "/gates/",
                                  "/api/docs/", "/accounts/login/", "/api/pipelines/", "/no-such-page/"])
def test_it_sends_a_policy_without_unsafe_inline(client, alice, path):
    client.force_login(alice)
    save_definition(simple_definition("injected"))
    policy = client.get(path)["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["script-src"].split()[0] == "'self'", policy
    assert directives["style-src"] == "'self'", policy
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'", policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_it_escapes_a_script_injected_in_a_pipeline_name(client, alice):
    definition = simple_definition("injected")
    definition["name"] = '<script>alert("owned")</script><img src=x onerror=alert(1)>'
    save_definition(definition)
    client.force_login(alice)
    html = client.get("/pipelines/").content.decode()
    assert '<script>alert("owned")' not in html and "<img src=x onerror" not in html
    assert "&lt;script&gt;alert(" in html
