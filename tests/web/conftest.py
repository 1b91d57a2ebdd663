"""Shared fixtures of the page tests: a logged-in client per persona and a saved pipeline."""

import pytest
from django.test import Client

from pipelines.services import save_definition
from tests.conftest import PASSWORD
from tests.fixtures import simple_definition


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """The personas' passwords are hashed and checked in every test; the production hasher is slow by design."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _client(user, **kwargs):
    client = Client(**kwargs)
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def as_alice(alice):
    return _client(alice)


@pytest.fixture
def as_bob(bob):
    return _client(bob)


@pytest.fixture
def as_charlie(charlie):
    return _client(charlie)


@pytest.fixture
def csrf_alice(alice):
    """alice with CSRF checks on, as a browser is."""
    return _client(alice, enforce_csrf_checks=True)


@pytest.fixture
def pipeline(db):
    return save_definition(simple_definition("simple"), message="created")


def htmx(**headers):
    """Request headers htmx sends (target without '#')."""
    out = {"HTTP_HX_REQUEST": "true"}
    if "target" in headers:
        out["HTTP_HX_TARGET"] = headers["target"]
    return out


def csrf_token(client, url):
    """The CSRF token a page hands out (the cookie the page sets)."""
    client.get(url)
    return client.cookies["csrftoken"].value


class _FormParser:
    """The fields a browser would submit for one form of a page (enough for these pages' forms)."""

    def __init__(self, html: str, form_id: str):
        from html.parser import HTMLParser

        self.data: list[tuple[str, str]] = []
        self.found = False
        outer = self

        class P(HTMLParser):
            depth = 0
            select = None
            select_value = None
            first_option = None
            textarea = None
            text = ""

            def handle_starttag(self, tag, attrs):
                a = dict(attrs)
                if tag == "form" and a.get("id") == form_id:
                    outer.found = True
                    self.depth = 1
                    return
                if not self.depth:
                    return
                if tag == "form":
                    self.depth += 1
                elif tag == "input" and a.get("name"):
                    kind = a.get("type", "text")
                    if kind in ("checkbox", "radio"):
                        if "checked" in a:
                            outer.data.append((a["name"], a.get("value", "on")))
                    elif kind not in ("submit", "button", "file"):
                        outer.data.append((a["name"], a.get("value", "")))
                elif tag == "select" and a.get("name"):
                    self.select, self.select_value, self.first_option = a["name"], None, None
                elif tag == "option" and self.select:
                    if self.first_option is None:
                        self.first_option = a.get("value", "")
                    if "selected" in a:
                        self.select_value = a.get("value", "")
                elif tag == "textarea" and a.get("name"):
                    self.textarea, self.text = a["name"], ""

            def handle_endtag(self, tag):
                if not self.depth:
                    return
                if tag == "form":
                    self.depth -= 1
                elif tag == "select" and self.select:
                    value = self.select_value if self.select_value is not None else self.first_option
                    if not self.select.startswith("_add_op"):
                        outer.data.append((self.select, value or ""))
                    else:
                        outer.data.append((self.select, value or ""))
                    self.select = None
                elif tag == "textarea" and self.textarea:
                    outer.data.append((self.textarea, self.text))
                    self.textarea = None

            def handle_data(self, data):
                if self.textarea:
                    self.text += data

        parser = P(convert_charrefs=True)
        parser.feed(html)


def form_data(html, form_id: str, **changes) -> dict:
    """The data of form ``form_id`` as a browser would post it, with ``changes`` applied (None removes)."""
    if isinstance(html, bytes):
        html = html.decode()
    parsed = _FormParser(html, form_id)
    assert parsed.found, f"no form #{form_id} on the page"
    data: dict = {}
    for name, value in parsed.data:
        if name in data:
            data[name] = [*data[name], value] if isinstance(data[name], list) else [data[name], value]
        else:
            data[name] = value
    for name, value in changes.items():
        name = name.replace("__", ".")
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


@pytest.fixture
def shaky(db):
    """A custom operator (registered as a plugin would) that fails records whose `fail` is true."""
    from pipelines import registry
    from pipelines.custom import register_operator

    snap = registry.snapshot_all()

    def apply(records, args, helpers):
        for r in records:
            if r.get("fail"):
                raise ValueError(args.get("message") or f"cannot take {r.get('sku')!r}")
        return [{**r, "checked": True} for r in records]

    register_operator(code="shaky", name="Shaky check", category="testing", apply=apply,
                      description="Fails records marked fail.",
                      schema={"type": "object", "properties": {"message": {"type": "string"}}})
    yield
    registry.restore_all(snap)


def working(code: str, username: str = "alice") -> dict:
    """The definition ``username`` sees in the editor: their draft, or the published one."""
    from django.contrib.auth import get_user_model

    from pipelines.drafts import working_definition
    from pipelines.models import Pipeline

    user = get_user_model().objects.get(username=username)
    return working_definition(Pipeline.objects.get(code=code), user)[0]
