"""/settings/: the operating settings for admins (retention, run log level) and what comes only from the
environment (HTTP allow-list, process log level...). See :mod:`pipelines.hub_settings`.

Looking needs ``pipelines.view_hubsetting``, changing ``pipelines.change_hubsetting`` (superusers have
both). A setting whose environment variable is set is shown read-only: the environment wins.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from pipelines import hub_settings


@login_required
@permission_required("pipelines.view_hubsetting", raise_exception=True)
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    can_change = request.user.has_perm("pipelines.change_hubsetting")
    errors: dict[str, str] = {}
    typed: dict[str, str] = {}
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied("changing settings needs the 'pipelines.change_hubsetting' permission")
        typed = {e.key: request.POST[e.key] for e in hub_settings.EDITABLE
                 if e.key in request.POST and not hub_settings.from_environment(e)}
        problems = hub_settings.save(typed, request.user)
        if not problems:
            messages.success(request, "Settings saved.")
            return redirect("settings")
        errors = {p.field: p.message for p in problems}
    rows = hub_settings.rows()
    for row in rows:
        row["error"] = errors.get(row["key"])
        if row["key"] in typed:
            row["value"] = typed[row["key"]]
    return render(request, "settings.html", {
        "editable": [r for r in rows if r["key"] in hub_settings.BY_KEY],
        "shown": [r for r in rows if r["key"] not in hub_settings.BY_KEY],
        "levels": hub_settings.RUN_LOG_LEVELS, "can_change": can_change, "has_errors": bool(errors),
    })
