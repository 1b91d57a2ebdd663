"""Every page keeps to the Content-Security-Policy: no inline script or style, no eval.

The pages are found by walking the URL map (so a page added later is visited without touching this
test); parameters are filled from one pipeline with a gate, a paused run and a revision. The admin's pages
come from its registry. The ``page`` fixture fails the test on any CSP violation (console or
securitypolicyviolation event) and any JavaScript error.
"""

import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.browser.conftest import log_in

# Not pages: machine endpoints, POST-only actions, and logging out (which would end the walk).
SKIP = re.compile(r"^(hooks/|metrics|healthz|accounts/logout/|api/(?!docs/|tokens/)|graphql/)"
                  r"|/(run|toggle|export|cancel|rerun|replay|approve|reject|restore|remove|move|clear)/$"
                  r"|/(new-step|edges|settings)/$")


def _paths(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            if str(p.pattern) == "admin/":
                continue
            yield from _paths(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def _fill(path: str, values: dict) -> str | None:
    """The pattern with its parameters filled in, or None when one has no value here."""
    path = path.replace("^", "").replace("$", "").replace("/?", "/")

    def value(match):
        name = match.group("name")
        if name not in values:
            raise KeyError(name)
        return str(values[name])

    try:
        path = re.sub(r"<(?:\w+:)?(?P<name>\w+)>", value, path)
        path = re.sub(r"\(\?P<(?P<name>\w+)>[^)]*\)", value, path)
    except KeyError:
        return None
    return "/" + path


@pytest.fixture
def world(django_user_model):
    from gates.models import GateRequest
    from pipelines.models import PipelineReview
    from pipelines.services import save_definition
    from runs import services
    from tests.fixtures import simple_definition

    root = django_user_model.objects.create_superuser("root", password="correct-horse-battery")
    definition = simple_definition("csp-demo")
    definition["steps"].insert(2, {"key": "gate", "type": "GATE", "config": {"approvalType": "MANUAL"}})
    pipeline = save_definition(definition)
    save_definition({**definition, "name": "CSP demo, second revision"})
    run = services.run_now(services.create_run(pipeline)).run
    gate = GateRequest.objects.get(run=run)
    review = PipelineReview.objects.create(pipeline=pipeline, author=root, base_revision=pipeline.current_revision,
                                           definition={**definition, "name": "CSP demo, under review"})
    return {"code": "csp-demo", "pk": run.pk, "run_id": run.pk, "step_key": gate.step_key, "number": 1,
            "key": "clean", "uidb64": "MQ", "token": "set-password", "user": root, "review_id": review.pk}


def test_it_shows_every_page_without_a_csp_violation(page, live_server, world):
    paths = sorted({p for p in (_fill(raw, world) for raw in _paths(get_resolver().url_patterns))
                    if p and not SKIP.search(p.lstrip("/"))})
    for model in admin.site._registry:
        meta = model._meta
        paths.append(f"/admin/{meta.app_label}/{meta.model_name}/")
        paths.append(f"/admin/{meta.app_label}/{meta.model_name}/add/")
    paths += ["/admin/", f"/admin/auth/user/{world['user'].pk}/change/", "/no-such-page/"]
    # Pages only: what answers a GET with HTML (POST-only actions answer 405, APIs JSON).
    probe = Client()
    probe.force_login(world["user"])
    answers = {p: probe.get(p) for p in paths}
    paths = [p for p, r in answers.items() if r.status_code != 405 and "text/html" in r.get("Content-Type", "")]
    assert {"/", "/pipelines/", "/pipelines/csp-demo/", "/runs/", f"/runs/{world['pk']}/", "/gates/",
            "/api/docs/", "/api/tokens/"} <= set(paths)

    page.goto("/accounts/login/")  # before logging in: the login page itself
    log_in(page, "root")
    visited = []
    for path in paths:
        response = page.goto(path)
        assert response is not None and response.status < 500, f"{path} answered {response and response.status}"
        page.wait_for_load_state("load")
        visited.append(path)
    assert len(visited) >= 30, visited

