"""What every pipeline page shares: the permission each needs, and what the templates are told of them."""

from __future__ import annotations

import re

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest

VIEW = "pipelines.view_pipeline"
CHANGE = "pipelines.change_pipeline"
ADD = "pipelines.add_pipeline"


def can_view(view):
    return login_required(permission_required(VIEW, raise_exception=True)(view))


def can_change(view):
    return login_required(permission_required([VIEW, CHANGE], raise_exception=True)(view))


def can_add(view):
    return login_required(permission_required([VIEW, ADD], raise_exception=True)(view))


def permissions_of(request: HttpRequest) -> dict:
    user = request.user
    return {
        "can_change": user.has_perm(CHANGE),
        "can_add": user.has_perm(ADD),
        "can_run": user.has_perm("pipelines.run_pipeline"),
    }


def slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", key)


def diff_lines(text: str) -> list[tuple[str, str]]:
    """A unified diff as (css class, line) pairs, for the diff templates."""
    out = []
    for line in text.splitlines():
        if line.startswith(("+++", "---")):
            cls = "file"
        elif line.startswith("@@"):
            cls = "hunk"
        elif line.startswith("+"):
            cls = "add"
        elif line.startswith("-"):
            cls = "del"
        else:
            cls = ""
        out.append((cls, line))
    return out
