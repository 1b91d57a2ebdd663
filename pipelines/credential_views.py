"""The pages for connections and secrets: list, create, edit, delete, test a connection.

Everything goes through :mod:`pipelines.credentials` (the REST API and GraphQL call the same functions),
so the rules are the same everywhere: a secret's value is written and never shown back (the secret form
has no initial value, and the page says only where the value comes from), a connection's config holds no
credential, and what is in use is not deleted. Django's model permissions decide: view_*, add_*,
change_* and delete_* of ``pipelines.connection`` and ``pipelines.secret``; testing a connection needs
change_connection (it opens a connection with the stored credentials). A refused form comes back with
200 and the problems at their fields (as the pipeline forms do; a 4xx page is a console error).
"""

from __future__ import annotations

import json
from functools import partial

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pipelines import access, credentials
from pipelines.connection_checks import CHECKS, check_connection
from pipelines.credentials import CredentialError, InUse, UsageIndex
from pipelines.models import Connection, Secret

# What each type's config holds (shown beside the config box).
CONFIG_HINTS = {
    "HTTP": '{"baseUrl": "https://api.example.com/v1", "headers": {"Accept": "application/json"}, '
            '"auth": {"type": "BEARER", "secretCode": "api-token"}}',
    "GRAPHQL": '{"baseUrl": "https://shop.example.com/graphql", "auth": {"type": "BEARER", "secretCode": "shop-token"}}',
    "POSTGRES": '{"host": "db.example.com", "port": 5432, "database": "shop", "user": "reader", '
                '"passwordSecretCode": "shop-db-password"}',
    "MYSQL": '{"host": "db.example.com", "port": 3306, "database": "shop", "user": "reader", '
             '"passwordSecretCode": "shop-db-password"}',
    "SQLITE": '{"path": "var/sqlite/shop.db"}',
    "REDIS": '{"host": "127.0.0.1", "port": 6379, "db": 0, "passwordSecretCode": "redis-password"}',
    "CUSTOM": '{"amqpUrl": "amqp://127.0.0.1:5672/%2F", "username": "datahub", "passwordSecretCode": "amqp-password"}',
}


def _perm(*perms: str):
    def wrap(view):
        return login_required(permission_required(perms, raise_exception=True)(view))
    return wrap


def _saved(request: HttpRequest, form: forms.Form, save, said) -> object | None:
    """``save(**form.cleaned_data)`` for a valid form, with ``said(saved, data)`` as the success message; None,
    with the problems put at their fields, when the form or the save refuses."""
    if not form.is_valid():
        return None
    try:
        saved = save(**form.cleaned_data)
    except CredentialError as exc:
        for problem in exc.problems:
            root = (problem.field or "").split(".", 1)[0]
            where = problem.field.split(".", 1)[1] + ": " if problem.field and "." in problem.field else ""
            form.add_error(root if root in form.fields else None, where + problem.message)
        return None
    messages.success(request, said(saved, form.cleaned_data))
    return saved


# --- connections --------------------------------------------------------------------------------------


class ConnectionForm(forms.Form):
    code = forms.CharField(max_length=100, help_text=credentials.CODE_HELP)
    name = forms.CharField(max_length=200, required=False)
    type = forms.ChoiceField(choices=Connection.TYPES)
    config = forms.CharField(widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}), required=False,
                             help_text="JSON: host, port, database, user, baseUrl, headers... Credentials are "
                             "never written here: name a secret with passwordSecretCode, secretCode, ...")

    def clean_config(self):
        text = self.cleaned_data.get("config") or "{}"
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("must be a JSON object: {\"key\": value, ...}")
        return value


@require_GET
@_perm("pipelines.view_connection")
def connection_list(request: HttpRequest) -> HttpResponse:
    usage = UsageIndex.build()
    rows = [credentials.connection_view(c, usage.of_connection(c.code)) for c in access.visible(request.user, Connection.objects.all())]
    return render(request, "connections/list.html", {
        "rows": rows, "can_add": request.user.has_perm("pipelines.add_connection"), "tab": "connections"})


@never_cache
@require_http_methods(["GET", "POST"])
@_perm("pipelines.view_connection", "pipelines.add_connection")
def connection_new(request: HttpRequest) -> HttpResponse:
    form = ConnectionForm(request.POST or None, initial={"type": "HTTP", "config": "{}"})
    if request.method == "POST" and (
        connection := _saved(request, form, credentials.save_connection, lambda c, _: f"Connection {c.code} created.")
    ):
        return redirect("connection-edit", code=connection.code)
    return render(request, "connections/form.html", {"form": form, "hints": CONFIG_HINTS, "tab": "connections"})


def _shown(connection: Connection) -> dict:
    return {"code": connection.code, "name": connection.name, "type": connection.type,
            "config": json.dumps(credentials.shown_config(connection.config), indent=2)}


def _connection_page(request, connection, form, result=None):
    usage = UsageIndex.build().of_connection(connection.code)
    return render(request, "connections/form.html", {
        "form": form, "connection": connection, "view": credentials.connection_view(connection, usage),
        "hints": CONFIG_HINTS, "result": result, "testable": connection.type in CHECKS, "tab": "connections",
        "can_change": request.user.has_perm("pipelines.change_connection"),
        "can_delete": request.user.has_perm("pipelines.delete_connection"),
    })


@never_cache
@require_http_methods(["GET", "POST"])
@_perm("pipelines.view_connection")
def connection_edit(request: HttpRequest, code: str) -> HttpResponse:
    connection = access.get_or_404(request.user, Connection.objects, code=code)
    if request.method == "GET":
        return _connection_page(request, connection, ConnectionForm(initial=_shown(connection)))
    if not request.user.has_perm("pipelines.change_connection"):
        raise PermissionDenied("you may look but not change this")
    form = ConnectionForm({**request.POST.dict(), "code": connection.code})
    if _saved(request, form, partial(credentials.save_connection, existing=connection),
              lambda c, _: f"Connection {c.code} saved."):
        return redirect("connection-edit", code=connection.code)
    return _connection_page(request, connection, form)


@require_POST
@_perm("pipelines.view_connection", "pipelines.change_connection")
def connection_test(request: HttpRequest, code: str) -> HttpResponse:
    connection = access.get_or_404(request.user, Connection.objects, code=code)
    return _connection_page(request, connection, ConnectionForm(initial=_shown(connection)),
                            result=check_connection(connection))


@require_POST
@_perm("pipelines.view_connection", "pipelines.delete_connection")
def connection_delete(request: HttpRequest, code: str) -> HttpResponse:
    return _delete(request, Connection, code, credentials.delete_connection, back="connection-edit",
                   then="connection-list")


def _delete(request: HttpRequest, model, code: str, delete, *, back: str, then: str) -> HttpResponse:
    """Delete it and go to ``then``; what is still in use stays, and its page (``back``) says where."""
    try:
        delete(access.get_or_404(request.user, model.objects, code=code))
    except InUse as exc:
        messages.error(request, str(exc))
        return redirect(back, code=code)
    messages.success(request, f"{model._meta.verbose_name.capitalize()} {code} deleted.")
    return redirect(then)


# --- secrets ------------------------------------------------------------------------------------------


class SecretForm(forms.Form):
    code = forms.CharField(max_length=100, help_text=credentials.CODE_HELP)
    description = forms.CharField(max_length=300, required=False)
    # render_value=False: a value typed into a refused form is not sent back to the browser either.
    value = forms.CharField(required=False, strip=False,
                            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                            help_text="Write-only: stored encrypted and never shown again. env:NAME reads the "
                            "environment variable NAME instead.")


@require_GET
@_perm("pipelines.view_secret")
def secret_list(request: HttpRequest) -> HttpResponse:
    usage = UsageIndex.build()
    rows = [credentials.secret_view(s, usage.of_secret(s.code)) for s in access.visible(request.user, Secret.objects.all())]
    return render(request, "secrets/list.html", {
        "rows": rows, "can_add": request.user.has_perm("pipelines.add_secret"), "tab": "secrets"})


@never_cache
@require_http_methods(["GET", "POST"])
@_perm("pipelines.view_secret", "pipelines.add_secret")
def secret_new(request: HttpRequest) -> HttpResponse:
    form = SecretForm(request.POST or None)
    if request.method == "POST" and (secret := _saved(
        request, form, credentials.save_secret, lambda s, _: f"Secret {s.code} saved. Its value will not be shown again."
    )):
        return redirect("secret-edit", code=secret.code)
    return render(request, "secrets/form.html", {"form": form, "tab": "secrets"})


@never_cache
@require_http_methods(["GET", "POST"])
@_perm("pipelines.view_secret")
def secret_edit(request: HttpRequest, code: str) -> HttpResponse:
    secret = access.get_or_404(request.user, Secret.objects, code=code)
    form = SecretForm(initial={"code": secret.code, "description": secret.description})
    if request.method == "POST":
        if not request.user.has_perm("pipelines.change_secret"):
            raise PermissionDenied("you may look but not change this")
        form = SecretForm({**request.POST.dict(), "code": secret.code})
        if _saved(request, form, partial(credentials.save_secret, existing=secret), lambda s, data: (
            f"Secret {s.code} saved{' and its new value stored' if data.get('value') else ''}."
        )):
            return redirect("secret-edit", code=secret.code)
    usage = UsageIndex.build().of_secret(secret.code)
    return render(request, "secrets/form.html", {
        "form": form, "secret": secret, "view": credentials.secret_view(secret, usage), "tab": "secrets",
        "can_change": request.user.has_perm("pipelines.change_secret"),
        "can_delete": request.user.has_perm("pipelines.delete_secret"),
    })


@require_POST
@_perm("pipelines.view_secret", "pipelines.delete_secret")
def secret_delete(request: HttpRequest, code: str) -> HttpResponse:
    return _delete(request, Secret, code, credentials.delete_secret, back="secret-edit", then="secret-list")
