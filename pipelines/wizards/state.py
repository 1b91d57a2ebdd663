"""A wizard's answers so far, kept server-side in the person's session until the pipeline is created.

Each wizard has a random id in its URL, so a person may have an import and an export going in two tabs;
at most :data:`MAX_OPEN` are kept (the oldest is dropped). State is JSON (the session serializer): plain
dicts and lists. ``done`` lists the pages answered, in order; answering a page again invalidates the
pages after it (they are shown again with their previous answers as defaults), so the review always
shows answers given after the ones they depend on.
"""

from __future__ import annotations

import secrets
import time

from django.http import Http404, HttpRequest

SESSION_KEY = "datahub_wizards"
MAX_OPEN = 5

STEPS: dict[str, tuple[tuple[str, str], ...]] = {
    "import": (("source", "Source"), ("preview", "Preview"), ("target", "Target"), ("mapping", "Mapping"),
               ("strategy", "Strategy"), ("schedule", "Schedule"), ("review", "Review")),
    "export": (("source", "Source"), ("fields", "Fields"), ("format", "Format"), ("destination", "Destination"),
               ("schedule", "Schedule"), ("review", "Review")),
}


def start(request: HttpRequest, kind: str, template: str = "") -> str:
    wizards = dict(request.session.get(SESSION_KEY) or {})
    while len(wizards) >= MAX_OPEN:
        oldest = min(wizards, key=lambda w: wizards[w].get("started", 0))
        del wizards[oldest]
    wid = secrets.token_urlsafe(9)
    wizards[wid] = {"kind": kind, "template": template, "done": [], "started": time.time()}
    request.session[SESSION_KEY] = wizards
    return wid


def load(request: HttpRequest, wid: str) -> dict:
    state = (request.session.get(SESSION_KEY) or {}).get(wid)
    if state is None:
        raise Http404("no such wizard: it was finished, or your session ended")
    return state


def save(request: HttpRequest, wid: str, state: dict) -> None:
    wizards = dict(request.session.get(SESSION_KEY) or {})
    wizards[wid] = state
    request.session[SESSION_KEY] = wizards


def finish(request: HttpRequest, wid: str) -> None:
    wizards = dict(request.session.get(SESSION_KEY) or {})
    wizards.pop(wid, None)
    request.session[SESSION_KEY] = wizards


def steps_of(state: dict) -> list[str]:
    return [name for name, _ in STEPS[state["kind"]]]


def first_open(state: dict) -> str:
    """The first page not answered yet (the review when all are)."""
    for name in steps_of(state):
        if name not in state["done"]:
            return name
    return steps_of(state)[-1]


def reachable(state: dict, step: str) -> bool:
    names = steps_of(state)
    return names.index(step) <= names.index(first_open(state))


def answered(state: dict, step: str) -> None:
    """Mark ``step`` answered and every later page unanswered."""
    names = steps_of(state)
    state["done"] = names[: names.index(step) + 1]


def next_step(state: dict, step: str) -> str:
    names = steps_of(state)
    return names[min(names.index(step) + 1, len(names) - 1)]
