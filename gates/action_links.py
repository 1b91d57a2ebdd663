"""One-click Approve and Reject links in gate emails.

A link is ``/gates/act/<token>/``; the token is signed with the secret key (Django's ``signing``, its own
salt) and holds the gate request's id, the run, the step, the action and the addressee. What is
guaranteed:

- **Signed and bound.** A token changed in any way, or made for another gate request, run, step or action,
  is refused. A gate that pauses again later is a new request: an old link does not decide it.
- **Expiring.** Older than ``DATAHUB_GATE_LINK_MAX_AGE`` seconds (default three days): refused.
- **Single-use.** A link decides through ``gates.services`` like the review page, and a gate is decided
  once (a conditional UPDATE): after the first use, the link (and every other link of the gate) only says
  who decided and when.
- **No state change on GET.** Opening the link shows a confirmation page; the POST (CSRF-checked) decides.
- **Bound to the addressee.** The decision is made as the Datahub user the email was sent to, who must hold
  ``gates.approve_gate``. Logged in as someone else: refused. Not logged in: the login page, unless
  ``DATAHUB_GATE_LINKS_WITHOUT_LOGIN`` is on; then the link itself is the credential and the decision is
  made as the one active user with that email address (none, or several: refused). That person must
  also be allowed the pipeline (``pipelines.access``: its owners and teams, when it has any).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.urls import reverse

from gates.models import GateRequest

SALT = "datahub.gates.action-link"
ACTIONS = ("approve", "reject")
DEFAULT_MAX_AGE = 3 * 24 * 3600


class LinkRefused(Exception):
    """The link cannot be used; the message says why, in words for the person who clicked it."""


@dataclass(frozen=True)
class Action:
    gate_id: int
    run_id: int
    step_key: str
    action: str
    addressee: str


def max_age() -> int:
    return int(getattr(settings, "DATAHUB_GATE_LINK_MAX_AGE", DEFAULT_MAX_AGE))


def make_token(gate: GateRequest, action: str, addressee: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    return signing.dumps({"g": gate.pk, "r": gate.run_id, "s": gate.step_key, "a": action, "to": addressee},
                         salt=SALT, compress=True)


def link(gate: GateRequest, action: str, addressee: str, base_url: str) -> str:
    return base_url.rstrip("/") + reverse("gates:act", args=[make_token(gate, action, addressee)])


def read_token(token: str) -> Action:
    """The action a token stands for, or LinkRefused (tampered with, expired, malformed)."""
    try:
        data = signing.loads(token, salt=SALT, max_age=max_age())
    except signing.SignatureExpired:
        raise LinkRefused("this link has expired: open the gate's review page instead") from None
    except signing.BadSignature:
        raise LinkRefused("this link is not valid (it was changed or cut short)") from None
    try:
        action = Action(int(data["g"]), int(data["r"]), str(data["s"]), str(data["a"]), str(data["to"]))
    except (KeyError, TypeError, ValueError):
        raise LinkRefused("this link is not valid") from None
    if action.action not in ACTIONS:
        raise LinkRefused("this link is not valid")
    return action


def gate_of(action: Action) -> GateRequest:
    """The gate request the link was made for, still the same run and step; LinkRefused otherwise."""
    gate = GateRequest.objects.select_related("run", "run__pipeline", "decided_by").filter(pk=action.gate_id).first()
    if gate is None or gate.run_id != action.run_id or gate.step_key != action.step_key:
        raise LinkRefused("the gate this link was sent for no longer exists")
    return gate


def may_skip_login() -> bool:
    return bool(getattr(settings, "DATAHUB_GATE_LINKS_WITHOUT_LOGIN", False))


def decider(action: Action, user) -> object:
    """Who decides through this link: the logged-in addressee, or (without login, when allowed) the one
    active user with the addressee's email. LinkRefused when there is no such person."""
    if user is not None and user.is_authenticated:
        if (user.email or "").strip().lower() != action.addressee.strip().lower():
            raise LinkRefused(f"this link was sent to {action.addressee}; you are logged in as {user.get_username()}"
                              " (log out, or decide on the review page)")
        return user
    matches = list(get_user_model().objects.filter(email__iexact=action.addressee, is_active=True)[:2])
    if len(matches) != 1:
        raise LinkRefused(f"no single Datahub user has the address {action.addressee}: log in and decide on "
                          "the review page")
    return matches[0]
