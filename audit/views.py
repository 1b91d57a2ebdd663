"""The audit trail page, /audit/: staff only; filter by action, person, target and dates; export the
filtered events as CSV or JSON (``?format=csv|json``, newest first, at most EXPORT_LIMIT rows)."""

from __future__ import annotations

import csv
import json
from datetime import datetime, time

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from audit.models import AuditEvent
from audit.trail import ACTIONS

PER_PAGE = 50
EXPORT_LIMIT = 100_000
FIELDS = ("at", "actor", "ip", "action", "target", "details")


def _day(value: str, *, end: bool) -> datetime | None:
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
    return timezone.make_aware(datetime.combine(day, time.max if end else time.min))


def filter_events(params) -> tuple[object, dict, list[str]]:
    """The events ``params`` ask for, the filters as understood, and what was wrong with them."""
    events = AuditEvent.objects.all()
    filters = {k: (params.get(k) or "").strip() for k in ("action", "actor", "target", "since", "until")}
    problems = []
    if filters["action"]:
        events = events.filter(action__startswith=filters["action"])
    if filters["actor"]:
        events = events.filter(actor_name__iexact=filters["actor"])
    if filters["target"]:
        events = events.filter(target__icontains=filters["target"])
    for name, lookup, end in (("since", "at__gte", False), ("until", "at__lte", True)):
        if filters[name]:
            when = _day(filters[name], end=end)
            if when is None:
                problems.append(f"{name}: '{filters[name]}' is not a date like 2026-01-31")
            else:
                events = events.filter(**{lookup: when})
    return events, filters, problems


def _row(event: AuditEvent) -> dict:
    return {"at": event.at.isoformat(), "actor": event.actor_name, "ip": event.ip, "action": event.action,
            "target": event.target, "details": event.details}


class _Echo:
    def write(self, value):
        return value


def _export(events, fmt: str) -> HttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    rows = events[:EXPORT_LIMIT].iterator(chunk_size=2000)
    if fmt == "csv":
        writer = csv.writer(_Echo())

        def lines():
            yield writer.writerow(FIELDS)
            for event in rows:
                row = _row(event)
                row["details"] = json.dumps(row["details"], sort_keys=True)
                # A cell starting with = + - @ would be a formula in a spreadsheet: quote it as text.
                yield writer.writerow(["'" + str(v) if str(v)[:1] in "=+-@" and v else v
                                       for v in (row[f] for f in FIELDS)])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    else:
        def chunks():
            yield "["
            for i, event in enumerate(rows):
                yield ("," if i else "") + json.dumps(_row(event), sort_keys=True)
            yield "]"

        response = StreamingHttpResponse(chunks(), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="datahub-audit-{stamp}.{fmt}"'
    return response


@require_GET
@login_required
def audit_list(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied("the audit trail is for staff only")
    events, filters, problems = filter_events(request.GET)
    fmt = request.GET.get("format", "")
    if fmt and fmt not in ("csv", "json"):
        problems.append(f"format: '{fmt}' is not csv or json")
    elif fmt and not problems:
        return _export(events, fmt)
    page = Paginator(events.select_related(None), PER_PAGE).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(request, "audit/list.html", {
        "page": page, "filters": filters, "problems": problems, "actions": ACTIONS, "query": query,
    }, status=400 if problems else 200)
